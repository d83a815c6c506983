/**
 * How promptly a planner search stops when it is cancelled (OptimizeDeps.signal; the daemon
 * aborts it on SIGTERM, a deploy or a rollback of the model). mnist-mlp over every method,
 * mixed plans included; first one search to the end (the baseline: what the machine would
 * keep computing after a stop without cancellation), then `--runs` searches each aborted
 * at a seeded random point of that duration. Prints, per run, the step under way (the last
 * progress line) and the time from abort() to the rejection.
 *
 *   npx tsx scripts/bench-cancel.ts [--runs 6] [--seed 1]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { openDataset } from '../src/data/index.ts';
import { isEdgevolveError } from '../src/errors/index.ts';
import { readModelFile } from '../src/onnx/index.ts';
import { isolatedBench, optimize, type OptimizeDeps, type OptimizeOptions } from '../src/planner/index.ts';
import { numericFlag } from './lib/timing.ts';

const MODEL = 'test/fixtures/models/mnist-mlp.onnx';
const DATA = 'test/fixtures/data/mnist-test';
const runs = numericFlag('runs', 6);
let seed = numericFlag('seed', 1);

const OPTIONS: OptimizeOptions = {
  budgets: { maxAccuracyDrop: 0.5 },
  objective: 'latency',
  timeLimitS: 120,
  threads: 1,
  subsetSamples: 200,
  sensitivitySamples: 200,
  calibrationSamples: 128,
  evalSamples: 1000,
  quickMs: 400,
  maxFullCandidates: 6,
  maxSensitivityLayers: 16,
};

/** mulberry32: the abort points are the same for the same seed. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

async function search(abortAtMs: number | null): Promise<{ totalMs: number; cancelMs: number | null; step: string }> {
  const { model } = await readModelFile(MODEL);
  const dataset = await openDataset(DATA);
  const controller = new AbortController();
  let step = 'start';
  let abortedAt = 0;
  const deps: OptimizeDeps = {
    bench: isolatedBench(1, 300),
    now: () => performance.now(),
    progress: (line) => {
      step = line.length > 70 ? `${line.slice(0, 67)}...` : line;
    },
    measured: null,
    signal: controller.signal,
  };
  const timer =
    abortAtMs === null
      ? undefined
      : setTimeout(() => {
          abortedAt = performance.now();
          controller.abort(new Error('bench-cancel'));
        }, abortAtMs);
  const t0 = performance.now();
  try {
    await optimize(model, dataset, OPTIONS, deps);
    return { totalMs: performance.now() - t0, cancelMs: null, step };
  } catch (err) {
    if (!isEdgevolveError(err, 'E_PLAN_CANCELLED')) throw err;
    return { totalMs: performance.now() - t0, cancelMs: performance.now() - abortedAt, step };
  } finally {
    clearTimeout(timer);
    await dataset.close();
  }
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`mnist-mlp, every method, mixed plans; load average before: ${load()}`);
const baseline = await search(null);
console.log(`baseline: the whole search ${(baseline.totalMs / 1000).toFixed(1)} s (not cancelled); load ${load()}\n`);
console.log('| run | abort at | step under way (last progress line) | abort -> rejected | search left without cancellation | load (1/5/15 min) |');
console.log('|---:|---:|---|---:|---:|---|');
const latencies: number[] = [];
for (let i = 1; i <= runs; i++) {
  const at = Math.round((0.05 + 0.9 * random()) * baseline.totalMs);
  const r = await search(at);
  if (r.cancelMs === null) {
    console.log(`| ${i} | ${(at / 1000).toFixed(1)} s | finished before the abort | - | - | ${load()} |`);
    continue;
  }
  latencies.push(r.cancelMs);
  console.log(`| ${i} | ${(at / 1000).toFixed(1)} s | ${r.step.replaceAll('|', '/')} | ${r.cancelMs.toFixed(0)} ms | ${((baseline.totalMs - at) / 1000).toFixed(1)} s | ${load()} |`);
}
latencies.sort((a, b) => a - b);
if (latencies.length > 0) {
  console.log(`\nabort -> rejected over ${latencies.length} runs: median ${latencies[Math.floor(latencies.length / 2)]!.toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms`);
}
