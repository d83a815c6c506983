/**
 * The ONNX fuzzer shared by test/unit/onnx/fuzz.test.ts (short, in the suite) and
 * scripts/fuzz-onnx.ts (long): seeded mutations of real models through decode,
 * validation and tensor reads. An outcome is success or an EdgevolveError with an
 * E_ONNX_* code; anything else (another exception type, another code, a case slower
 * than the time bound) is a failure, reported with the seed and mutation to replay it.
 */
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import Long from 'long';
import { isEdgevolveError } from '../../src/errors/index.ts';
import { decodeModel, encodeModel, onnxSchema, readTensor, validateModel, type ModelProto, type OnnxLimits } from '../../src/onnx/index.ts';
import fs from 'node:fs';
import path from 'node:path';
import { PADDLE_MODELS, corpusModels, nestedIfModelBytes, tinyMlp, varint } from './onnx-builders.ts';
import protobuf from 'protobufjs';
import { uniform01 } from '../../src/data/prng.ts';

/** Uniform [0, 1) values from a seed (mulberry32). */
export function prng(seed: number): () => number {
  return uniform01(seed);
}

export const MUTATION_KINDS = [
  'bit-flip',
  'byte-overwrite',
  'truncate-at-boundary',
  'truncate-in-varint',
  'corrupt-length',
  'huge-raw-data-length',
  'huge-dims',
  'deep-nesting',
  'duplicate-field',
  'splice-out',
  'structural-edit',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

/** One field seen while walking the wire format: where its tag, length and payload are. */
interface FieldSpan {
  tagStart: number;
  lengthStart: number; // -1 for non-length-delimited
  payloadStart: number;
  end: number;
  name: string;
  /** 0 for fields of ModelProto itself. */
  depth: number;
}

const spanCache = new WeakMap<Uint8Array, FieldSpan[]>();

/** Walks a well-formed message, schema-aware, recording every field at every depth (iteratively). */
function fieldSpans(bytes: Uint8Array): FieldSpan[] {
  const cached = spanCache.get(bytes);
  if (cached !== undefined) return cached;
  const spans: FieldSpan[] = [];
  spanCache.set(bytes, spans);
  const root = onnxSchema().lookupType('onnx.ModelProto');
  const stack: { end: number; type: protobuf.Type }[] = [{ end: bytes.length, type: root }];
  let pos = 0;
  const readVarint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[pos++]!;
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 128;
    }
  };
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (pos >= frame.end) {
      stack.pop();
      continue;
    }
    const tagStart = pos;
    const tag = readVarint();
    const wire = tag % 8;
    const field = frame.type.fieldsById[Math.floor(tag / 8)];
    const name = field?.name ?? '?';
    if (wire === 0) {
      readVarint();
      spans.push({ tagStart, lengthStart: -1, payloadStart: tagStart, end: pos, name, depth: stack.length - 1 });
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      spans.push({ tagStart, lengthStart: -1, payloadStart: tagStart, end: pos, name, depth: stack.length - 1 });
    } else {
      const lengthStart = pos;
      const length = readVarint();
      const payloadStart = pos;
      spans.push({ tagStart, lengthStart, payloadStart, end: payloadStart + length, name, depth: stack.length - 1 });
      const resolved = field?.resolvedType;
      if (resolved instanceof protobuf.Type) stack.push({ end: payloadStart + length, type: resolved });
      else pos += length;
    }
  }
  return spans;
}

function splice(bytes: Uint8Array, start: number, deleteCount: number, insert: ArrayLike<number> = []): Uint8Array {
  const out = new Uint8Array(bytes.length - deleteCount + insert.length);
  out.set(bytes.subarray(0, start), 0);
  out.set(insert, start);
  out.set(bytes.subarray(start + deleteCount), start + insert.length);
  return out;
}

const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const int = (rand: () => number, n: number): number => Math.floor(rand() * n);

/** A model-level edit applied to the decoded seed, re-encoded: hostile content with valid framing. */
function structuralEdit(model: ModelProto, rand: () => number): string {
  const g = model.graph;
  const nodes = g?.node ?? [];
  const inits = g?.initializer ?? [];
  const options: (() => string)[] = [
    () => {
      if (nodes.length === 0) return 'noop';
      pick(rand, nodes).input = ['does_not_exist'];
      return 'dangling input';
    },
    () => {
      if (nodes.length < 2) return 'noop';
      nodes[0]!.input = [...(nodes[0]!.input ?? []), nodes[nodes.length - 1]!.output?.[0] ?? ''];
      return 'cycle';
    },
    () => {
      if (nodes.length === 0) return 'noop';
      pick(rand, nodes).opType = '';
      return 'empty op_type';
    },
    () => {
      if (nodes.length === 0) return 'noop';
      pick(rand, nodes).domain = 'evil.domain';
      return 'unknown domain';
    },
    () => {
      if (inits.length === 0) return 'noop';
      const t = pick(rand, inits);
      t.dataType = int(rand, 40);
      return 'data type changed';
    },
    () => {
      if (inits.length === 0) return 'noop';
      const t = pick(rand, inits);
      t.dataLocation = 1;
      t.externalData = [{ key: 'location', value: pick(rand, ['../../etc/passwd', '/etc/shadow', 'sub/../../x', 'missing.bin']) }];
      return 'external data traversal';
    },
    () => {
      model.opsetImport = [];
      return 'no opset';
    },
    () => {
      if (inits.length === 0) return 'noop';
      inits.push({ ...pick(rand, inits) });
      return 'duplicate initializer';
    },
    () => {
      if (nodes.length === 0) return 'noop';
      nodes.push({ ...pick(rand, nodes) });
      return 'duplicate node';
    },
    () => {
      model.opsetImport = [{ domain: '', version: Long.MAX_VALUE }];
      return 'absurd opset version';
    },
  ];
  return pick(rand, options)();
}

/** Nested models are costly to build and never modified: one per depth. */
const nestedCache = new Map<number, Uint8Array>();

export interface FuzzCase {
  kind: MutationKind;
  seedModel: string;
  detail: string;
  bytes: Uint8Array;
}

/** Makes one mutated model from one of the seeds. */
export function mutate(seeds: readonly { name: string; bytes: Uint8Array }[], rand: () => number): FuzzCase {
  const kind = pick(rand, MUTATION_KINDS);
  const seed = pick(rand, seeds);
  const src = seed.bytes;
  const base = { kind, seedModel: seed.name };
  switch (kind) {
    case 'bit-flip': {
      const out = src.slice();
      const flips = 1 + int(rand, 8);
      for (let i = 0; i < flips; i++) out[int(rand, out.length)]! ^= 1 << int(rand, 8);
      return { ...base, detail: `${flips} bits`, bytes: out };
    }
    case 'byte-overwrite': {
      const out = src.slice();
      const n = 1 + int(rand, 16);
      const at = int(rand, out.length);
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = pick(rand, [0x00, 0xff, 0x80, 0x7f, int(rand, 256)]);
      return { ...base, detail: `${n} bytes at ${at}`, bytes: out };
    }
    case 'truncate-at-boundary': {
      const span = pick(rand, fieldSpans(src));
      const cut = pick(rand, [span.tagStart, span.payloadStart, span.end, span.lengthStart < 0 ? span.end - 1 : span.lengthStart]) + pick(rand, [-1, 0, 0, 1]);
      const at = Math.max(0, Math.min(src.length - 1, cut));
      return { ...base, detail: `at ${at} (${span.name})`, bytes: src.slice(0, at) };
    }
    case 'truncate-in-varint': {
      const spans = fieldSpans(src).filter((s) => s.lengthStart >= 0 && s.payloadStart - s.lengthStart > 1);
      const span = spans.length > 0 ? pick(rand, spans) : pick(rand, fieldSpans(src));
      const at = Math.max(0, span.lengthStart >= 0 ? span.lengthStart + 1 : span.tagStart);
      return { ...base, detail: `at ${at} (${span.name})`, bytes: src.slice(0, at) };
    }
    case 'corrupt-length':
    case 'huge-raw-data-length': {
      let spans = fieldSpans(src).filter((s) => s.lengthStart >= 0);
      if (kind === 'huge-raw-data-length') {
        const raw = spans.filter((s) => s.name === 'rawData' || s.name === 'floatData' || s.name === 'int64Data');
        if (raw.length > 0) spans = raw;
      }
      if (spans.length === 0) return { ...base, detail: 'no length field', bytes: src.slice() };
      const span = pick(rand, spans);
      const length = span.end - span.payloadStart;
      const value =
        kind === 'huge-raw-data-length'
          ? pick(rand, [2 ** 31 - 1, 2 ** 32 + 5, 2 ** 53, length + 1, length * 1000 + 7])
          : pick(rand, [0, Math.max(0, length - 1), length + 1, length + int(rand, 100), 2 ** 28, 2 ** 35]);
      const encoded = varint(value);
      const bytes = splice(src, span.lengthStart, span.payloadStart - span.lengthStart, encoded);
      return { ...base, detail: `${span.name} length ${length} -> ${value}`, bytes };
    }
    case 'huge-dims': {
      const model = decodeModel(src);
      const targets = [...(model.graph?.initializer ?? [])];
      const dims = pick(rand, [
        [2 ** 31, 2 ** 31],
        [Long.MAX_VALUE],
        [Long.fromString('-9223372036854775808')],
        [-1],
        new Array<number>(100).fill(2),
        [2 ** 53, 2 ** 53, 0],
        [65536, 65536, 65536],
      ]);
      if (targets.length > 0 && rand() < 0.6) {
        pick(rand, targets).dims = dims;
      } else {
        const vi = [...(model.graph?.input ?? []), ...(model.graph?.output ?? [])];
        const v = vi.length > 0 ? pick(rand, vi) : undefined;
        if (v?.type?.tensorType) v.type.tensorType.shape = { dim: dims.map((d) => ({ dimValue: d })) };
      }
      return { ...base, detail: `dims ${dims.length > 4 ? `rank ${dims.length}` : dims.map(String).join('x')}`, bytes: encodeModel(model) };
    }
    case 'deep-nesting': {
      const depth = pick(rand, [31, 32, 33, 100, 1000, 10_000]);
      let bytes = nestedCache.get(depth);
      if (bytes === undefined) nestedCache.set(depth, (bytes = nestedIfModelBytes(depth)));
      return { ...base, seedModel: 'nested-if', detail: `If nested ${depth} deep`, bytes };
    }
    case 'duplicate-field': {
      const spans = fieldSpans(src);
      const topLevel = spans.filter((s) => s.depth === 0);
      const span = pick(rand, topLevel.length > 0 ? topLevel : spans);
      const copy = src.slice(span.tagStart, span.end);
      // Repeated at the top level, where no enclosing length needs fixing.
      return { ...base, detail: `${span.name} x${2 + int(rand, 3)}`, bytes: splice(src, span.end, 0, [...copy, ...copy]) };
    }
    case 'splice-out': {
      const at = int(rand, src.length);
      const n = 1 + int(rand, 64);
      return { ...base, detail: `${n} bytes at ${at}`, bytes: splice(src, at, Math.min(n, src.length - at)) };
    }
    case 'structural-edit': {
      const model = decodeModel(src);
      const detail = structuralEdit(model, rand);
      return { ...base, detail, bytes: encodeModel(model) };
    }
  }
}

export interface FuzzFailure {
  index: number;
  kind: MutationKind;
  seedModel: string;
  detail: string;
  problem: string;
}

export interface FuzzSummary {
  count: number;
  seed: number;
  byKind: Record<string, number>;
  byOutcome: Record<string, number>;
  /** Milliseconds spent per mutation kind: making the mutation, and exercising it. */
  mutateMsByKind: Record<string, number>;
  exerciseMsByKind: Record<string, number>;
  failures: FuzzFailure[];
  /** The case with the most wall-clock time, and the one with the most CPU time (what the time limit checks). */
  slowest: { ms: number; kind: MutationKind; seedModel: string; detail: string };
  slowestCpu: { ms: number; kind: MutationKind; seedModel: string; detail: string };
  maxHeapGrowthBytes: number;
  totalMs: number;
}

/** The outcome of one model: 'decoded+valid', 'decoded+findings', or the error code. Throws for failures. */
export function exercise(bytes: Uint8Array, limits?: Partial<OnnxLimits>): string {
  let model: ModelProto;
  try {
    model = decodeModel(bytes, limits ? { limits } : {});
  } catch (err) {
    return classify(err);
  }
  const findings = validateModel(model, limits ? { limits } : {});
  let tensorErrors = 0;
  for (const t of model.graph?.initializer ?? []) {
    try {
      readTensor(t, limits ? { limits } : {});
    } catch (err) {
      classify(err);
      tensorErrors += 1;
    }
  }
  encodeModel(model);
  const errors = findings.filter((f) => f.severity === 'error').length;
  return errors > 0 || tensorErrors > 0 ? 'decoded+findings' : 'decoded+valid';
}

function classify(err: unknown): string {
  if (isEdgevolveError(err) && err.code.startsWith('E_ONNX_')) return err.code;
  throw err;
}

/** The collector of V8, exposed without a command-line flag so heap growth can be measured after a collection. */
export function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Runs `count` mutations from `seed` and summarises. `timeLimitMs` bounds one case. */
export function runFuzz(opts: { count: number; seed: number; seeds: readonly { name: string; bytes: Uint8Array }[]; timeLimitMs?: number; onProgress?: (done: number) => void }): FuzzSummary {
  const rand = prng(opts.seed);
  const gc = exposeGc();
  const timeLimit = opts.timeLimitMs ?? 1000;
  const byKind: Record<string, number> = {};
  const byOutcome: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  const mutateMsByKind: Record<string, number> = {};
  const exerciseMsByKind: Record<string, number> = {};
  let slowest: FuzzSummary['slowest'] = { ms: 0, kind: 'bit-flip', seedModel: '', detail: '' };
  let slowestCpu: FuzzSummary['slowestCpu'] = { ms: 0, kind: 'bit-flip', seedModel: '', detail: '' };
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let maxHeapGrowth = 0;
  const started = performance.now();
  for (let i = 0; i < opts.count; i++) {
    const m0 = performance.now();
    const c = mutate(opts.seeds, rand);
    byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    mutateMsByKind[c.kind] = (mutateMsByKind[c.kind] ?? 0) + (t0 - m0);
    let outcome: string;
    try {
      outcome = exercise(c.bytes);
    } catch (err) {
      outcome = 'FAILURE';
      const problem = isEdgevolveError(err) ? `${err.code}: ${err.message}` : `${(err as Error)?.constructor?.name ?? typeof err}: ${String((err as Error)?.message ?? err)}`;
      failures.push({ index: i, kind: c.kind, seedModel: c.seedModel, detail: c.detail, problem });
    }
    const ms = performance.now() - t0;
    const cpuUsed = process.cpuUsage(cpu0);
    const cpuMs = (cpuUsed.user + cpuUsed.system) / 1000;
    exerciseMsByKind[c.kind] = (exerciseMsByKind[c.kind] ?? 0) + ms;
    if (ms > slowest.ms) slowest = { ms, kind: c.kind, seedModel: c.seedModel, detail: c.detail };
    if (cpuMs > slowestCpu.ms) slowestCpu = { ms: cpuMs, kind: c.kind, seedModel: c.seedModel, detail: c.detail };
    // The bound is on CPU time: wall time on a shared, loaded machine measures the neighbours;
    // a hang or a pathological input burns CPU and is caught all the same.
    if (cpuMs > timeLimit) failures.push({ index: i, kind: c.kind, seedModel: c.seedModel, detail: c.detail, problem: `used ${cpuMs.toFixed(0)} ms of CPU (${ms.toFixed(0)} ms wall)` });
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
    if (i % 250 === 249) {
      gc();
      maxHeapGrowth = Math.max(maxHeapGrowth, process.memoryUsage().heapUsed - baseline);
      opts.onProgress?.(i + 1);
    }
  }
  gc();
  maxHeapGrowth = Math.max(maxHeapGrowth, process.memoryUsage().heapUsed - baseline);
  return { count: opts.count, seed: opts.seed, byKind, byOutcome, mutateMsByKind, exerciseMsByKind, failures, slowest, slowestCpu, maxHeapGrowthBytes: maxHeapGrowth, totalMs: performance.now() - started };
}

/** The seed models: every corpus model with a subgraph, a seeded sample of the rest, a built MLP, and the PaddleOCR classifier. */
export function loadFuzzSeeds(opts: { corpusSample: number; seed: number; includeLarge: boolean }): { name: string; bytes: Uint8Array }[] {
  const rand = prng(opts.seed ^ 0x5eed);
  const seeds: { name: string; bytes: Uint8Array }[] = [{ name: 'tiny-mlp', bytes: encodeModel(tinyMlp()) }];
  const corpus = corpusModels();
  const withSubgraphs: string[] = [];
  const others: string[] = [];
  for (const file of corpus) {
    const bytes = fs.readFileSync(file);
    (bytes.includes('then_branch') || bytes.includes('body') ? withSubgraphs : others).push(file);
  }
  const sample = [...others];
  for (let i = sample.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [sample[i], sample[j]] = [sample[j]!, sample[i]!];
  }
  for (const file of [...withSubgraphs, ...sample.slice(0, opts.corpusSample)]) {
    seeds.push({ name: path.basename(path.dirname(file)), bytes: new Uint8Array(fs.readFileSync(file)) });
  }
  if (opts.includeLarge && fs.existsSync(PADDLE_MODELS.cls)) seeds.push({ name: 'paddle-cls', bytes: new Uint8Array(fs.readFileSync(PADDLE_MODELS.cls)) });
  return seeds;
}
