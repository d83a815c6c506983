import { describe, expect, it } from 'vitest';
import { InferenceStats, LATENCY_BUCKETS_MS, LATENCY_WINDOW, percentiles } from '../../../../src/runtime/serving/index.ts';

describe('InferenceStats', () => {
  it('counts inferences and errors, fills the bucket of each latency, and keeps the last success time', () => {
    const stats = new InferenceStats();
    stats.record(0.1, true, 1000);
    stats.record(0.9, true, 2000);
    stats.record(50_000, false, 3000);
    const s = stats.snapshot();
    expect(s.inferences).toBe(3);
    expect(s.errors).toBe(1);
    expect(s.lastSuccessAt).toBe(2000);
    expect(s.latencySumMs).toBeCloseTo(50_001);
    expect(s.bucketCounts).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(s.bucketCounts[0]).toBe(1); // <= 0.25 ms
    expect(s.bucketCounts[LATENCY_BUCKETS_MS.indexOf(1)]).toBe(1); // (0.5, 1] ms
    expect(s.bucketCounts.at(-1)).toBe(1); // above every bound
  });

  it('computes nearest-rank percentiles over the most recent window only', () => {
    const stats = new InferenceStats();
    for (let i = 0; i < LATENCY_WINDOW; i++) stats.record(1000, true, 0);
    for (let i = 1; i <= LATENCY_WINDOW; i++) stats.record(i, true, 0);
    expect(stats.snapshot().latencyMs).toEqual({ p50: LATENCY_WINDOW / 2, p95: Math.ceil(0.95 * LATENCY_WINDOW), p99: Math.ceil(0.99 * LATENCY_WINDOW) });
    expect(percentiles(new Float64Array([5, 1, 3]))).toEqual({ p50: 3, p95: 5, p99: 5 });
    expect(new InferenceStats().snapshot().latencyMs).toBeUndefined();
  });
});
