/**
 * Conformance of the IR against ONNX's own backend test corpus (Debian
 * `libonnx-testdata`): for each model, onnxruntime runs the original and our
 * decode → encode round trip on the shipped inputs, and both are compared with the
 * shipped expected outputs. Shared by `scripts/conformance.ts` and the integration
 * test so that both judge by the same rules.
 *
 * Outcomes:
 * - passed: the original matches the expected outputs and so does the round trip.
 * - failed: the original runs, the round trip does not give the same result
 *   (our decode, encode or tensor reading is wrong), or our validator reports an
 *   error for a model onnxruntime loads (a false positive).
 * - skipped: onnxruntime-node cannot load or run the original, or the model passes
 *   values it cannot hold (sequences, optionals, BFLOAT16/FLOAT8 tensors).
 * - ort-mismatch: onnxruntime runs the original but disagrees with the expected
 *   outputs (not ours to fix); the round trip must then equal the original's outputs
 *   exactly, or the case fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import { dataTypeName, decodeModel, encodeModel, validateModel } from '../onnx/index.ts';
import type { ModelProto, TensorValue } from '../onnx/index.ts';
import { isEdgevolveError } from '../errors/index.ts';
import { compareTensors, EXACT, ONNX_BACKEND_TOLERANCE, type Tolerance } from './compare.ts';
import { createSession, type Session } from './session.ts';
import { isPassableDataType } from './ort-tensor.ts';
import { listDataSetDirs, readTestDataSets, type NamedTensor, type TestDataSet } from './onnx-test-data.ts';

/** Where Debian's libonnx-testdata puts the corpus. */
export const DEFAULT_CORPUS_ROOT = '/usr/share/libonnx-testdata/data';

/** The corpus folders that hold models with test data (`real/` only names downloads). */
export const CORPUS_FOLDERS = ['node', 'simple', 'pytorch-converted', 'pytorch-operator', 'real'] as const;

export type CaseStatus = 'passed' | 'failed' | 'skipped' | 'ort-mismatch';

export interface ConformanceCase {
  /** `node/test_abs`. */
  readonly name: string;
  readonly dir: string;
}

export interface CaseResult {
  readonly name: string;
  readonly status: CaseStatus;
  /** Why it failed, was skipped or mismatched; absent for passes. */
  readonly reason?: string;
  /** Whether encode(decode(bytes)) reproduced the file byte for byte; undefined when not reached. */
  readonly byteIdentical?: boolean;
  readonly dataSets: number;
  readonly ms: number;
}

export interface ConformanceSummary {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly ortMismatch: number;
  /** Models our codec decoded and re-encoded (whatever onnxruntime made of them). */
  readonly reencoded: number;
  /** Of those, re-encoded byte for byte. */
  readonly byteIdentical: number;
}

export interface ConformanceOptions {
  readonly tolerance?: Tolerance;
  /**
   * Applied to the decoded model before it is encoded again; the plain round trip
   * without it. A pass that must preserve semantics (dead-node elimination, BN
   * folding) can be checked against the whole corpus by passing it here. It must keep
   * the graph's inputs and outputs, and may change the model in place.
   */
  readonly transform?: (model: ModelProto) => ModelProto;
  /** onnxruntime intra-op threads per session; 1 keeps runs comparable and leaves cores to other workers. */
  readonly threads?: number;
}

/**
 * The model directories under `root` (`<folder>/<case>/model.onnx` with at least one
 * test_data_set_*), sorted by name; `ignored` counts directories without both.
 */
export function listCases(root: string = DEFAULT_CORPUS_ROOT, filter?: string): { cases: ConformanceCase[]; ignored: number } {
  const cases: ConformanceCase[] = [];
  let ignored = 0;
  for (const folder of CORPUS_FOLDERS) {
    const folderDir = path.join(root, folder);
    if (!fs.existsSync(folderDir)) continue;
    for (const entry of fs.readdirSync(folderDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const name = `${folder}/${entry.name}`;
      if (filter !== undefined && !name.includes(filter)) continue;
      const dir = path.join(folderDir, entry.name);
      if (fs.existsSync(path.join(dir, 'model.onnx')) && listDataSetDirs(dir).length > 0) cases.push({ name, dir });
      else ignored++;
    }
  }
  cases.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { cases, ignored };
}

/** Runs the cases one after another; `onResult` sees each result as it completes. */
export async function runConformance(
  cases: readonly ConformanceCase[],
  options: ConformanceOptions = {},
  onResult?: (result: CaseResult) => void,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const result = await runCase(c, options);
    results.push(result);
    onResult?.(result);
  }
  return results;
}

export function summarize(results: readonly CaseResult[]): ConformanceSummary {
  const count = (status: CaseStatus): number => results.filter((r) => r.status === status).length;
  return {
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    ortMismatch: count('ort-mismatch'),
    reencoded: results.filter((r) => r.byteIdentical !== undefined).length,
    byteIdentical: results.filter((r) => r.byteIdentical === true).length,
  };
}

/** Signals a case outcome from deep inside runCase. */
class Outcome extends Error {
  constructor(
    readonly status: Exclude<CaseStatus, 'passed'>,
    reason: string,
  ) {
    super(reason);
  }
}


export async function runCase(c: ConformanceCase, options: ConformanceOptions = {}): Promise<CaseResult> {
  const started = performance.now();
  const sessions: Session[] = [];
  let codec: CodecResult | undefined;
  const progress = { dataSets: 0 };
  const finish = (status: CaseStatus, reason?: string): CaseResult => ({
    name: c.name,
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(codec?.byteIdentical === undefined ? {} : { byteIdentical: codec.byteIdentical }),
    dataSets: progress.dataSets,
    ms: Math.round(performance.now() - started),
  });
  try {
    const bytes = fs.readFileSync(path.join(c.dir, 'model.onnx'));
    // The codec runs before onnxruntime so byte identity is known even for models
    // onnxruntime cannot load; its errors only count once the original has loaded.
    codec = roundTrip(bytes, c.dir, options.transform);
    const ortMismatch = await judge(c, bytes, codec, options, sessions, progress);
    return ortMismatch === undefined ? finish('passed') : finish('ort-mismatch', ortMismatch);
  } catch (err) {
    if (err instanceof Outcome) return finish(err.status, err.message);
    return finish('failed', `unexpected error: ${messageOf(err)}`);
  } finally {
    for (const s of sessions) await s.release();
  }
}

type CodecResult =
  | { readonly model: ModelProto; readonly bytes: Uint8Array; readonly byteIdentical: boolean; readonly error?: undefined }
  | { readonly error: Outcome; readonly byteIdentical?: undefined };

/** decode → validate → (transform) → encode, with our code's failures captured as a failed outcome. */
function roundTrip(bytes: Uint8Array, dir: string, transform: ((model: ModelProto) => ModelProto) | undefined): CodecResult {
  try {
    const model = guard(() => decodeModel(bytes), 'our decode failed');
    const invalid = validateModel(model, { baseDir: dir }).find((f) => f.severity === 'error');
    if (invalid !== undefined) throw new Outcome('failed', `our validator rejects the model: ${invalid.code}: ${invalid.message}`);
    // Test data is read against the untransformed graph: a transform must keep the graph's inputs and outputs.
    const changed = transform === undefined ? model : guard(() => transform(model), 'the transform failed');
    const encoded = guard(() => encodeModel(changed), 'our encode failed');
    return { model, bytes: encoded, byteIdentical: sameBytes(encoded, bytes) };
  } catch (err) {
    if (err instanceof Outcome) return { error: err };
    throw err;
  }
}

/**
 * Runs the original and the round trip on every data set. Returns undefined when both
 * match the expected outputs, the ort-mismatch reason when the original does not but
 * the round trip equals it; throws an Outcome otherwise.
 */
async function judge(
  c: ConformanceCase,
  bytes: Uint8Array,
  codec: CodecResult,
  options: ConformanceOptions,
  sessions: Session[],
  progress: { dataSets: number },
): Promise<string | undefined> {
  const tolerance = options.tolerance ?? ONNX_BACKEND_TOLERANCE;
  const threads = options.threads ?? 1;

  const original = await open(bytes, threads, 'skipped', 'onnxruntime cannot load the original');
  sessions.push(original);
  const nonTensor = [...original.inputs, ...original.outputs].find((v) => !v.isTensor);
  if (nonTensor !== undefined) {
    throw new Outcome('skipped', `value '${nonTensor.name}' is not a tensor (sequence, map or optional): onnxruntime-node passes tensors only`);
  }
  if (codec.error !== undefined) throw codec.error;
  const dataSets = readDataSets(c.dir, codec.model);
  progress.dataSets = dataSets.length;

  const originalOutputs: Record<string, TensorValue>[] = [];
  let ortMismatch: string | undefined;
  for (const ds of dataSets) {
    const outputs = await runOrOutcome(original, ds, 'skipped', 'onnxruntime cannot run the original');
    originalOutputs.push(outputs);
    ortMismatch ??= firstMismatch(outputs, ds.outputs, ds.name, tolerance);
  }

  const roundTripped = await open(codec.bytes, threads, 'failed', 'onnxruntime cannot load the round trip');
  sessions.push(roundTripped);
  for (const [i, ds] of dataSets.entries()) {
    const outputs = await runOrOutcome(roundTripped, ds, 'failed', 'onnxruntime cannot run the round trip');
    if (ortMismatch === undefined) {
      const problem = firstMismatch(outputs, ds.outputs, ds.name, tolerance);
      if (problem !== undefined) throw new Outcome('failed', `round trip: ${problem}`);
      continue;
    }
    const reference = ds.outputs.map((e) => ({ name: e.name, value: originalOutputs[i]![e.name]! }));
    const problem = firstMismatch(outputs, reference, ds.name, EXACT);
    if (problem === undefined) continue;
    // Random operators (Bernoulli, RandomUniform, ...) may differ from run to run: only a
    // deterministic original can convict the round trip.
    const again = await runOrOutcome(original, ds, 'skipped', 'onnxruntime cannot run the original');
    if (firstMismatch(again, reference, ds.name, EXACT) === undefined) {
      throw new Outcome('failed', `round trip differs from the original: ${problem}`);
    }
    ortMismatch += ' (nondeterministic: round trip not comparable)';
  }
  return ortMismatch;
}

async function open(bytes: Uint8Array, threads: number, status: 'skipped' | 'failed', what: string): Promise<Session> {
  try {
    // Fatal only: load failures are expected here and reported in the result instead.
    return await createSession(bytes, { threads, logSeverityLevel: 4 });
  } catch (err) {
    throw new Outcome(status, `${what}: ${messageOf(causeOf(err))}`);
  }
}

async function runOrOutcome(session: Session, ds: TestDataSet, status: 'skipped' | 'failed', what: string): Promise<Record<string, TensorValue>> {
  try {
    return await session.run(ds.inputs, ds.outputs.map((e) => e.name));
  } catch (err) {
    if (isEdgevolveError(err, 'E_RUNTIME_UNSUPPORTED_TYPE')) throw new Outcome('skipped', `${ds.name}: ${err.message}`);
    throw new Outcome(status, `${what}: ${ds.name}: ${messageOf(causeOf(err))}`);
  }
}

/** Our own code under test: any throw is a failure of the case. */
function guard<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Outcome) throw err;
    throw new Outcome('failed', `${what}: ${messageOf(err)}`);
  }
}

function firstMismatch(
  outputs: Record<string, TensorValue>,
  expected: readonly NamedTensor[],
  dataSet: string,
  tolerance: Tolerance,
): string | undefined {
  for (const { name, value } of expected) {
    const actual = outputs[name];
    if (actual === undefined) return `${dataSet}: output '${name}' missing`;
    const problem = compareTensors(actual, value, tolerance);
    if (problem !== undefined) return `${dataSet}: output '${name}': ${problem.reason}`;
  }
  return undefined;
}

/** The test data, with values onnxruntime-node cannot pass turned into a skip and any other problem into a failure. */
function readDataSets(dir: string, model: ModelProto): TestDataSet[] {
  let dataSets: TestDataSet[];
  try {
    dataSets = readTestDataSets(dir, model);
  } catch (err) {
    if (isEdgevolveError(err, 'E_RUNTIME_UNSUPPORTED_TYPE')) throw new Outcome('skipped', messageOf(err));
    throw new Outcome('failed', `reading the test data failed: ${messageOf(err)}`);
  }
  for (const ds of dataSets) {
    const values = [...Object.entries(ds.inputs), ...ds.outputs.map((o) => [o.name, o.value] as const)];
    const unpassable = values.find(([, v]) => !isPassableDataType(v.dataType));
    if (unpassable !== undefined) {
      throw new Outcome('skipped', `${ds.name}: '${unpassable[0]}' is ${dataTypeName(unpassable[1].dataType)}, which onnxruntime-node cannot pass`);
    }
  }
  return dataSets;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** onnxruntime's own words, without our wrapper's prefix. */
function causeOf(err: unknown): unknown {
  return err instanceof Error && err.cause !== undefined ? err.cause : err;
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0] ?? message;
}
