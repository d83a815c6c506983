import { describe, expect, it } from 'vitest';
import { measureLatencies } from '../../../src/runtime/bench/measure.ts';
import { percentileOfSorted, summarizeLatencies } from '../../../src/runtime/bench/stats.ts';

describe('summarizeLatencies', () => {
  it('matches numpy.percentile (linear) and the sample standard deviation', () => {
    // Expected values from NumPy 1.24: np.percentile(a, [50, 90, 95, 99]), a.mean(), a.std(ddof=1).
    const summary = summarizeLatencies(new Float64Array([5, 1, 4, 2, 3, 10, 7.5, 6.25]));
    expect(summary.p50Ms).toBeCloseTo(4.5, 12);
    expect(summary.p90Ms).toBeCloseTo(8.25, 12);
    expect(summary.p95Ms).toBeCloseTo(9.125, 12);
    expect(summary.p99Ms).toBeCloseTo(9.825, 12);
    expect(summary.meanMs).toBeCloseTo(4.84375, 12);
    expect(summary.stddevMs).toBeCloseTo(2.9908715285013496, 12);
    expect(summary).toMatchObject({ count: 8, minMs: 1, maxMs: 10 });
  });

  it('handles one sample (stddev 0) and refuses none', () => {
    expect(summarizeLatencies(new Float64Array([3]))).toMatchObject({ p50Ms: 3, p99Ms: 3, stddevMs: 0 });
    expect(() => summarizeLatencies(new Float64Array(0))).toThrow(RangeError);
  });

  it('does not reorder the caller\'s samples', () => {
    const samples = new Float64Array([3, 1, 2]);
    summarizeLatencies(samples);
    expect(Array.from(samples)).toEqual([3, 1, 2]);
    expect(percentileOfSorted(new Float64Array([1, 2, 3, 4]), 50)).toBe(2.5);
  });
});

describe('measureLatencies', () => {
  it('discards warm-up runs and times each run with the injected clock', async () => {
    let t = 0;
    let runs = 0;
    const m = await measureLatencies(
      () => {
        runs++;
        t += runs; // run k takes k ms
        return Promise.resolve();
      },
      { warmup: 2, iterations: 3, now: () => t },
    );
    expect(runs).toBe(5);
    expect(m.warmupMs).toBe(3);
    expect(Array.from(m.samplesMs)).toEqual([3, 4, 5]);
    expect(m.totalMs).toBe(12);
  });

  it('stops at maxMs but keeps at least one run', async () => {
    let t = 0;
    const m = await measureLatencies(() => ((t += 10), Promise.resolve()), { warmup: 0, iterations: 1000, maxMs: 25, now: () => t });
    expect(Array.from(m.samplesMs)).toEqual([10, 10, 10]);
    const one = await measureLatencies(() => ((t += 100), Promise.resolve()), { warmup: 0, iterations: 1000, maxMs: 1, now: () => t });
    expect(one.samplesMs.length).toBe(1);
  });
});
