/**
 * A fixed-bucket histogram: Float64Array bounds, Uint32Array counts, no allocation per
 * observation (the inference path calls observe()). Percentiles are estimated by linear
 * interpolation inside the bucket that holds the rank, clamped to the observed min/max.
 */
export class Histogram {
  readonly bounds: Float64Array;
  private readonly counts: Uint32Array;
  private n = 0;
  private sum = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!((bounds[i] ?? 0) > (bounds[i - 1] ?? 0))) throw new RangeError('histogram bounds must be strictly ascending');
    }
    this.bounds = Float64Array.from(bounds);
    this.counts = new Uint32Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let lo = 0;
    let hi = bounds.length;
    // First bucket whose upper bound is >= value (binary search).
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((bounds[mid] ?? 0) < value) lo = mid + 1;
      else hi = mid;
    }
    this.counts[lo] = (this.counts[lo] ?? 0) + 1;
    this.n += 1;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  get count(): number {
    return this.n;
  }

  mean(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }

  maximum(): number | null {
    return this.n === 0 ? null : this.max;
  }

  /** The q-quantile (0..1) estimate, or null when empty. */
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    const rank = q * this.n;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i] ?? 0;
      if (c === 0) continue;
      if (seen + c >= rank) {
        const lower = i === 0 ? this.min : Math.max(this.bounds[i - 1] ?? this.min, this.min);
        const upper = i === this.bounds.length ? this.max : Math.min(this.bounds[i] ?? this.max, this.max);
        const within = c === 0 ? 0 : (rank - seen) / c;
        return lower + (upper - lower) * Math.min(1, Math.max(0, within));
      }
      seen += c;
    }
    return this.max;
  }

  toJSON(): { bounds: number[]; counts: number[] } {
    return { bounds: Array.from(this.bounds), counts: Array.from(this.counts) };
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
  }
}
