/**
 * What loading a weight-only int8 variant through sessionModelBytes (materializeWeightOnly
 * at load, src/daemon/session-bytes.ts) does to its run time: mnist-cnn's int8-static
 * weight-only build (every Conv/Gemm weight int8 behind DequantizeLinear, float compute),
 * run as stored and as the daemon now loads it, against fp32, one onnxruntime thread,
 * batch 1 and 32, the three sessions taking turns round by round.
 *
 *   npx tsx scripts/bench-weight-only.ts [--rounds 5] [--ms 1500]
 */
import { loadavg } from 'node:os';
import { compressModel } from '../src/compress/index.ts';
import { sessionModelBytes } from '../src/daemon/session-bytes.ts';
import { openDataset } from '../src/data/index.ts';
import { readModelFile, type TensorValue } from '../src/onnx/index.ts';
import { calibrationFrom } from '../src/planner/index.ts';
import { measureLatencies } from '../src/runtime/bench/measure.ts';
import { percentileOfSorted } from '../src/runtime/bench/stats.ts';
import { createSession, type Session } from '../src/runtime/index.ts';
import { numericFlag } from './lib/timing.ts';

const rounds = numericFlag('rounds', 5);
const sliceMs = numericFlag('ms', 1500);
const { model, bytes: fp32 } = await readModelFile('test/fixtures/models/mnist-cnn.onnx');
const dataset = await openDataset('test/fixtures/data/mnist-test');
const probe = await createSession(fp32, { threads: 1 });
const built = await compressModel(model, 'int8-static', { minFanIn: 1_000_000, lowFanIn: 'weight-only' }, { calibration: calibrationFrom(dataset, probe.inputs, 64) }, fp32.byteLength);
await probe.release();
const materialized = sessionModelBytes(built.bytes);
console.log(`mnist-cnn: fp32 ${fp32.byteLength} B, weight-only ${built.bytes.byteLength} B (${(built.bytes.byteLength / fp32.byteLength).toFixed(3)}x), as loaded ${materialized.byteLength} B in memory`);

const variants: [string, Uint8Array][] = [
  ['fp32', fp32],
  ['weight-only as stored', built.bytes],
  ['weight-only via sessionModelBytes (the daemon)', materialized],
];
for (const batch of [1, 32]) {
  let feeds: Record<string, TensorValue> = {};
  for await (const b of dataset.batches(batch)) {
    feeds = b.feeds;
    break;
  }
  const sessions: Session[] = [];
  for (const [, bytes] of variants) sessions.push(await createSession(bytes, { threads: 1 }));
  const samples: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, session] of sessions.entries()) {
      const m = await measureLatencies(() => session.run(feeds), { warmup: 5, iterations: 100_000, maxMs: sliceMs / variants.length });
      samples[i]!.push(...m.samplesMs);
    }
  }
  const p50 = samples.map((xs) => percentileOfSorted(Float64Array.from(xs).sort(), 50));
  console.log(`\nbatch ${batch}, ${rounds} rounds, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| session | runs | p50 ms | x fp32 |');
  console.log('|---|---:|---:|---:|');
  for (const [i, [name]] of variants.entries()) console.log(`| ${name} | ${samples[i]!.length} | ${p50[i]!.toFixed(4)} | ${(p50[i]! / p50[0]!).toFixed(2)} |`);
  for (const s of sessions) await s.release();
}
await dataset.close();
