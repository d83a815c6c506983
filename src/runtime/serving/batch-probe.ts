/**
 * The batch probe: does this model answer each row of a batch exactly as it answers
 * that row alone? Input and output shapes cannot tell (a `Softmax(axis=0)`, a
 * `ReduceMean` over the batch, a transpose that mixes rows, a detector listing the
 * boxes of the whole batch all keep an `[N, ...]` signature), so the probe runs the
 * model: a few distinct generated rows one at a time, then together in batches of two
 * sizes, the second in another order. It passes when every output of every batched run
 * has the batch's rows as its first dimension, the same trailing dimensions as the
 * single-row run, and each row's values equal that row's single run within `tolerance`.
 *
 * A probe is evidence, not proof: a model whose rows interact only for inputs unlike
 * the generated ones (integers are generated as zeros, see bench/inputs.ts) can pass.
 * What it reliably catches is every graph that mixes rows for all inputs — reductions,
 * normalisations, reshapes or matrix products across the batch axis, position- or
 * batch-size-dependent outputs — and models that fail at more than one row.
 *
 * Float results differ slightly between batch sizes (GEMM and convolution kernels block
 * the rows differently), so values are compared as |batched − alone| ≤ tolerance ×
 * max(1, |alone|); the default comes from measuring the fixture and PaddleOCR models
 * (README "Inference API", batch probe). Integer and boolean outputs must be equal.
 */
import { performance } from 'node:perf_hooks';
import { toEdgevolveError } from '../../errors/index.ts';
import type { TensorData, TensorValue } from '../../onnx/tensor.ts';
import { DataType } from '../../onnx/types.ts';
import { generateInput, resolveInputShapes } from '../bench/inputs.ts';
import type { Session, SessionValueInfo } from '../session.ts';

/** Distinct rows the probe generates; batches of all of them and of the last and first. */
const PROBE_ROWS = 3;
const PROBE_SEED = 0xba7c4;
/**
 * Largest accepted |batched − alone| / max(1, |alone|). The fixture and PaddleOCR models
 * differ by at most 3.1e-6 across batch sizes (float) and 0 (int8 static); models that mix
 * rows differ by 1e-2 and more (README "Inference API", batch probe).
 */
export const DEFAULT_PROBE_TOLERANCE = 1e-4;

export interface BatchProbeOptions {
  /** See DEFAULT_PROBE_TOLERANCE. */
  readonly tolerance?: number;
}

/** What the probe found; `reason` is one sentence for logs and metadata. */
export interface BatchProbeVerdict {
  readonly batchable: boolean;
  readonly reason: string;
  /** Largest |batched − alone| / max(1, |alone|) seen over every compared float value (0 when nothing was compared). */
  readonly worstDifference: number;
  /** Session runs the probe made (0 when the shapes alone ruled batching out). */
  readonly runs: number;
  /** Runs that succeeded: they warmed the session as warm-up runs do (arenas allocated, kernels chosen). */
  readonly succeededRuns: number;
  /** Wall time of the probe, ms. */
  readonly ms: number;
}

/** True when the value is a tensor whose first dimension is free (symbolic or negative). */
export function freeFirstDim(info: SessionValueInfo): boolean {
  const first = info.shape[0];
  return info.isTensor && info.shape.length > 0 && (typeof first === 'string' || (typeof first === 'number' && first < 0));
}

/** The reason the declared shapes rule batching out, or undefined when every input and output has a free first dimension. */
export function shapeObstacle(session: Pick<Session, 'inputs' | 'outputs'>): string | undefined {
  for (const [kind, values] of [
    ['input', session.inputs],
    ['output', session.outputs],
  ] as const) {
    for (const v of values) {
      if (!freeFirstDim(v)) return `${kind} '${v.name}' has no free first dimension (shape [${v.shape.join(', ')}])`;
      if (kind === 'input' && v.dataType === DataType.STRING) return `input '${v.name}' is a string tensor`;
    }
  }
  if (session.inputs.length === 0) return 'the model has no inputs';
  return undefined;
}

/** Runs the probe on `session` (an unbatched session; it is left open). Never throws: a failing run is a verdict. */
export async function probeBatching(session: Session, options: BatchProbeOptions = {}): Promise<BatchProbeVerdict> {
  const started = performance.now();
  const tolerance = options.tolerance ?? DEFAULT_PROBE_TOLERANCE;
  const obstacle = shapeObstacle(session);
  if (obstacle !== undefined) return { batchable: false, reason: obstacle, worstDifference: 0, runs: 0, succeededRuns: 0, ms: performance.now() - started };
  const state = { runs: 0, succeeded: 0, worst: 0 };
  const done = (batchable: boolean, reason: string): BatchProbeVerdict => ({
    batchable,
    reason,
    worstDifference: state.worst,
    runs: state.runs,
    succeededRuns: state.succeeded,
    ms: performance.now() - started,
  });
  try {
    const [batchable, reason] = await probeRows(session, tolerance, state);
    return done(batchable, reason);
  } catch (err) {
    // Generating inputs for an unusual input type, say: no verdict, so no batching.
    return done(false, `the probe could not run: ${toEdgevolveError(err).message}`);
  }
}

async function probeRows(session: Session, tolerance: number, state: { runs: number; succeeded: number; worst: number }): Promise<[boolean, string]> {
  const refuse = (reason: string): [boolean, string] => [false, reason];
  const run = async (feeds: Record<string, TensorValue>, what: string): Promise<Record<string, TensorValue> | string> => {
    state.runs++;
    try {
      const outputs = await session.run(feeds);
      state.succeeded++;
      return outputs;
    } catch (err) {
      return `the run of ${what} failed: ${toEdgevolveError(err).message}`;
    }
  };

  const resolved = resolveInputShapes(session.inputs, { shapes: {}, batch: 1 });
  const rows = Array.from({ length: PROBE_ROWS }, (_, r) => {
    const feeds: Record<string, TensorValue> = {};
    for (const input of resolved) feeds[input.name] = generateInput(input, PROBE_SEED + r * 7919);
    return feeds;
  });

  const alone: Record<string, TensorValue>[] = [];
  for (const feeds of rows) {
    const outputs = await run(feeds, '1 row');
    if (typeof outputs === 'string') return refuse(outputs);
    for (const [name, value] of Object.entries(outputs)) {
      if (value.dims[0] !== 1) return refuse(`output '${name}' has ${value.dims[0] ?? 'no'} entries in its first dimension for a 1-row run (shape [${value.dims.join(', ')}])`);
    }
    alone.push(outputs);
  }

  const orders = [Array.from({ length: PROBE_ROWS }, (_, i) => i), [PROBE_ROWS - 1, 0]];
  for (const order of orders) {
    const what = `${order.length} rows`;
    const outputs = await run(concatRows(order.map((i) => rows[i]!)), what);
    if (typeof outputs === 'string') return refuse(outputs);
    for (const [name, value] of Object.entries(outputs)) {
      const single = alone[0]![name]!;
      if (value.dims[0] !== order.length || value.dims.length !== single.dims.length || value.dims.some((d, axis) => axis > 0 && d !== single.dims[axis])) {
        return refuse(`output '${name}' has shape [${value.dims.join(', ')}] for ${what}, [${single.dims.join(', ')}] for 1 row: its first dimension does not count rows`);
      }
      for (let position = 0; position < order.length; position++) {
        const expected = alone[order[position]!]![name]!;
        const difference = rowDifference(value, position, expected);
        if (difference > state.worst) state.worst = difference;
        if (difference > tolerance) {
          const by = Number.isFinite(difference) ? `by ${difference.toExponential(2)} (tolerance ${tolerance})` : '(values that must be equal are not)';
          return refuse(`output '${name}' of row ${position + 1} in a batch of ${what} differs from that row run alone ${by}: rows affect each other`);
        }
      }
    }
  }
  return [true, `each row of batches of ${orders.map((o) => o.length).join(' and ')} rows equals its run alone (largest relative difference ${state.worst.toExponential(2)})`];
}

/** The rows concatenated along the first dimension, input by input. */
function concatRows(rows: readonly Record<string, TensorValue>[]): Record<string, TensorValue> {
  const first = rows[0]!;
  const feeds: Record<string, TensorValue> = {};
  for (const name of Object.keys(first)) {
    const template = first[name]!;
    const parts = rows.map((r) => r[name]!.data as Exclude<TensorData, string[]>);
    const data = new (parts[0]!.constructor as new (length: number) => Float32Array)(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      data.set(part as Float32Array, offset);
      offset += part.length;
    }
    feeds[name] = { dataType: template.dataType, dims: [rows.length, ...template.dims.slice(1)], data };
  }
  return feeds;
}

/**
 * Largest |batched − alone| / max(1, |alone|) over row `position` of `batched`; Infinity
 * when integer values differ or a NaN appears on one side only.
 */
function rowDifference(batched: TensorValue, position: number, alone: TensorValue): number {
  const a = alone.data;
  const b = batched.data;
  if (Array.isArray(a) || Array.isArray(b)) {
    const rowSize = a.length;
    for (let i = 0; i < rowSize; i++) if (a[i] !== b[position * rowSize + i]) return Infinity;
    return 0;
  }
  const rowSize = a.length;
  const offset = position * rowSize;
  const isFloat = a instanceof Float32Array || a instanceof Float64Array;
  if (!isFloat) {
    // Integers, booleans, and float16 as raw bits: exact.
    for (let i = 0; i < rowSize; i++) if (a[i] !== b[offset + i]) return Infinity;
    return 0;
  }
  let worst = 0;
  for (let i = 0; i < rowSize; i++) {
    const expected = a[i] as number;
    const got = b[offset + i] as number;
    if (Number.isNaN(expected) || Number.isNaN(got)) {
      if (Number.isNaN(expected) !== Number.isNaN(got)) return Infinity;
      continue;
    }
    if (expected === got) continue;
    if (!Number.isFinite(expected) || !Number.isFinite(got)) return Infinity;
    const difference = Math.abs(got - expected) / Math.max(1, Math.abs(expected));
    if (difference > worst) worst = difference;
  }
  return worst;
}
