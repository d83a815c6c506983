/** Summary statistics of latency samples; pure and allocation-light (one sorted copy). */

export interface LatencySummary {
  readonly count: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** Sample standard deviation (n - 1); 0 for a single sample. */
  readonly stddevMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

/**
 * Percentiles by linear interpolation between closest ranks (NumPy's default
 * `linear` method), so p50 of [1, 2, 3, 4] is 2.5 and results match numpy.percentile.
 */
export function summarizeLatencies(samplesMs: Float64Array): LatencySummary {
  const n = samplesMs.length;
  if (n === 0) throw new RangeError('no latency samples to summarize');
  const sorted = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = sorted[i]! - mean;
    squares += d * d;
  }
  return {
    count: n,
    minMs: sorted[0]!,
    maxMs: sorted[n - 1]!,
    meanMs: mean,
    stddevMs: n > 1 ? Math.sqrt(squares / (n - 1)) : 0,
    p50Ms: percentileOfSorted(sorted, 50),
    p90Ms: percentileOfSorted(sorted, 90),
    p95Ms: percentileOfSorted(sorted, 95),
    p99Ms: percentileOfSorted(sorted, 99),
  };
}

/** The q-th percentile (0..100) of ascending samples, NumPy `linear` interpolation. */
export function percentileOfSorted(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of no samples');
  const rank = (q / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, n - 1);
  const frac = rank - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}
