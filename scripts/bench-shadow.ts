/**
 * What shadow mode costs the live requests, measured on a real ModelSlot serving
 * mnist-teacher (a 784-1024-512-10 MLP) with its int8-dynamic build as the candidate:
 *
 *   npx tsx scripts/bench-shadow.ts [--rounds 3] [--requests 400] [--batch 8] [--threads 1]
 *
 * Modes, alternated round by round (this VM is shared: a load spike hits them all), each
 * figure the median over rounds:
 * - off: no shadow (the baseline of the same run).
 * - in-process, share S: the candidate session runs on the event loop, like the live one.
 * - worker, share S: the candidate session runs in one worker thread (createSession
 *   `workers: 1`), so a mirror does not hold the event loop.
 * Columns: live p50/p95 of one request at concurrency 1 (closed loop, the wall time of
 * `slot.infer` as a caller sees it), live requests/s with 4 in flight, and the mirrors
 * that ran or were dropped (maxInFlight 2) in the last round. A second table times the
 * candidate's `session.run` alone, in-process and through a worker thread: the latency the
 * shadow gate compares with the live version's.
 */
import { readFile, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { quantizeDynamic } from '../src/compress/index.ts';
import { readNpy } from '../src/data/index.ts';
import { DataType, decodeModel, encodeModel, type TensorValue } from '../src/onnx/index.ts';
import { createSession } from '../src/runtime/index.ts';
import { ModelSlot, startShadowMirror, type ShadowMirror } from '../src/runtime/serving/index.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '400' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
  },
});
const rounds = Number(args.rounds);
const requests = Number(args.requests);
const batch = Number(args.batch);
const threads = Number(args.threads);

const root = path.resolve(import.meta.dirname, '..');
const MODEL = path.join(root, 'test/fixtures/models/mnist-teacher.onnx');

interface Mode {
  readonly label: string;
  readonly share: number;
  readonly workers: number;
}
const MODES: readonly Mode[] = [
  { label: 'off', share: 0, workers: 0 },
  { label: 'in-process, share 0.1', share: 0.1, workers: 0 },
  { label: 'in-process, share 1', share: 1, workers: 0 },
  { label: 'worker, share 0.1', share: 0.1, workers: 1 },
  { label: 'worker, share 1', share: 1, workers: 1 },
];

interface Row {
  p50: number[];
  p95: number[];
  rps: number[];
  mirrored: number;
  dropped: number;
}

const percentile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
};
const median = (values: number[]): number => percentile(values, 0.5);

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-shadow-'));
  const candidatePath = path.join(dir, 'teacher-int8.onnx');
  const { model } = quantizeDynamic(decodeModel(await readFile(MODEL)), { perChannel: false, reduceRange: true, opTypes: ['MatMul', 'Gemm'], exclude: [] });
  await writeFile(candidatePath, encodeModel(model));
  const npy = await readNpy(path.join(root, 'test/fixtures/data/mnist-test/input.npy'));
  const feeds: Record<string, TensorValue> = { input: { dataType: DataType.FLOAT, dims: [batch, 1, 28, 28], data: (npy.data as Float32Array).slice(0, batch * 784) } };

  const hub: { mirror?: ShadowMirror } = {};
  const slot = new ModelSlot('teacher', { warmupRuns: 3, observers: [{ onInference: (e) => hub.mirror?.onInference(e) }] });
  await slot.swap({ version: 'live', createSession: () => createSession(MODEL, { threads }) });

  const rows = new Map<string, Row>(MODES.map((m) => [m.label, { p50: [], p95: [], rps: [], mirrored: 0, dropped: 0 }]));
  for (let round = 0; round < rounds; round++) {
    for (const mode of MODES) {
      const mirror =
        mode.share === 0
          ? undefined
          : await startShadowMirror({ version: 'int8', createSession: () => createSession(candidatePath, { threads, workers: mode.workers }) }, { share: mode.share, maxInFlight: 2 });
      hub.mirror = mirror;
      const times: number[] = [];
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await slot.infer(feeds);
        times.push(performance.now() - t0);
      }
      let done = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (done < requests) {
            done++;
            await slot.infer(feeds);
          }
        }),
      );
      const rps = requests / ((performance.now() - t0) / 1000);
      await mirror?.idle();
      const stats = mirror?.stats();
      await mirror?.close();
      hub.mirror = undefined;
      const row = rows.get(mode.label)!;
      row.p50.push(median(times));
      row.p95.push(percentile(times, 0.95));
      row.rps.push(rps);
      row.mirrored = stats?.mirrored ?? 0;
      row.dropped = stats?.dropped ?? 0;
    }
  }
  await slot.close();

  // What the gate compares: the candidate's run time as the mirror times it, in-process and through a worker thread.
  const placements = [
    { label: 'in-process', session: await createSession(candidatePath, { threads }) },
    { label: 'worker thread', session: await createSession(candidatePath, { threads, workers: 1 }) },
  ];
  const timing = new Map<string, { p50: number[]; p95: number[] }>(placements.map((p) => [p.label, { p50: [], p95: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const placement of placements) {
      const times: number[] = [];
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await placement.session.run(feeds);
        times.push(performance.now() - t0);
      }
      timing.get(placement.label)!.p50.push(median(times));
      timing.get(placement.label)!.p95.push(percentile(times, 0.95));
    }
  }
  for (const placement of placements) await placement.session.release();
  await rm(dir, { recursive: true, force: true });

  const base = rows.get('off')!;
  const b50 = median(base.p50);
  const b95 = median(base.p95);
  const brps = median(base.rps);
  console.log(`mnist-teacher, batch ${batch}, threads ${threads}, ${rounds} rounds x ${requests} requests per mode; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| shadow | live p50 ms (x off) | live p95 ms (x off) | live req/s at 4 in flight (x off) | mirrored / dropped (last round) |');
  console.log('|---|---|---|---|---|');
  for (const mode of MODES) {
    const r = rows.get(mode.label)!;
    const p50 = median(r.p50);
    const p95 = median(r.p95);
    const rps = median(r.rps);
    console.log(`| ${mode.label} | ${p50.toFixed(3)} (${(p50 / b50).toFixed(2)}) | ${p95.toFixed(3)} (${(p95 / b95).toFixed(2)}) | ${rps.toFixed(0)} (${(rps / brps).toFixed(2)}) | ${mode.share === 0 ? '-' : `${r.mirrored} / ${r.dropped}`} |`);
  }
  const inProcess = timing.get('in-process')!;
  console.log('\n| candidate session | run p50 ms | run p95 ms |');
  console.log('|---|---|---|');
  for (const [label, t] of timing) {
    console.log(`| ${label} | ${median(t.p50).toFixed(3)} (${(median(t.p50) / median(inProcess.p50)).toFixed(2)}x) | ${median(t.p95).toFixed(3)} (${(median(t.p95) / median(inProcess.p95)).toFixed(2)}x) |`);
  }
}

await main();
