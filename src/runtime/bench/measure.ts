/**
 * The timing loop shared by the isolated benchmark child, the in-process comparison
 * in scripts/bench-bench.ts and the hardware micro-benchmarks, so all three measure
 * the same thing: warm-up runs discarded, then one timestamp pair per run into a
 * preallocated Float64Array.
 */
import { performance } from 'node:perf_hooks';

export interface MeasureOptions {
  readonly warmup: number;
  readonly iterations: number;
  /** Stop early once this much time has been spent in timed runs (at least one run is kept). */
  readonly maxMs?: number;
  /** Milliseconds with sub-millisecond resolution; performance.now by default. */
  readonly now?: () => number;
}

export interface Measurement {
  /** Per-run latencies in ms; shorter than `iterations` when maxMs stopped the loop. */
  readonly samplesMs: Float64Array;
  readonly warmupMs: number;
  /** Wall time of the timed runs together. */
  readonly totalMs: number;
}

export async function measureLatencies(run: () => Promise<unknown>, options: MeasureOptions): Promise<Measurement> {
  const now = options.now ?? (() => performance.now());
  const warmupStart = now();
  for (let i = 0; i < options.warmup; i++) await run();
  const warmupMs = now() - warmupStart;
  const samples = new Float64Array(Math.max(1, options.iterations));
  const maxMs = options.maxMs ?? Number.POSITIVE_INFINITY;
  const start = now();
  let count = 0;
  while (count < samples.length) {
    const t0 = now();
    await run();
    const t1 = now();
    samples[count++] = t1 - t0;
    if (t1 - start >= maxMs) break;
  }
  return { samplesMs: samples.subarray(0, count), warmupMs, totalMs: now() - start };
}
