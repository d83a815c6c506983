/**
 * Inference statistics of one model slot: counters, Prometheus-style cumulative
 * latency buckets, and a ring of the most recent latencies for percentiles. Recording
 * is O(buckets) with no allocation; percentiles sort a copy of the ring on demand.
 */

/** Upper bounds of the latency buckets, in milliseconds (Prometheus `le`). */
export const LATENCY_BUCKETS_MS: readonly number[] = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** How many recent latencies the percentiles are computed over. */
export const LATENCY_WINDOW = 2048;

export interface LatencyPercentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** A snapshot of one version's or one slot's inference statistics. */
export interface InferenceStatsSnapshot {
  readonly inferences: number;
  readonly errors: number;
  /** Sum of all latencies, in milliseconds (Prometheus `_sum`). */
  readonly latencySumMs: number;
  /** Counts per bucket of LATENCY_BUCKETS_MS, not cumulative; the last entry counts latencies above every bound. */
  readonly bucketCounts: readonly number[];
  /** Over the last LATENCY_WINDOW inferences; undefined before the first. */
  readonly latencyMs: LatencyPercentiles | undefined;
  /** Epoch milliseconds of the last successful inference, or undefined. */
  readonly lastSuccessAt: number | undefined;
}

export class InferenceStats {
  #inferences = 0;
  #errors = 0;
  #latencySumMs = 0;
  #lastSuccessAt: number | undefined;
  readonly #buckets = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  readonly #ring = new Float64Array(LATENCY_WINDOW);
  #ringNext = 0;
  #ringFilled = 0;

  /** Records one inference; `ok` false counts it as an error too. */
  record(latencyMs: number, ok: boolean, at: number): void {
    this.#inferences++;
    if (!ok) this.#errors++;
    else this.#lastSuccessAt = at;
    this.#latencySumMs += latencyMs;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[bucket]!) bucket++;
    this.#buckets[bucket]!++;
    this.#ring[this.#ringNext] = latencyMs;
    this.#ringNext = (this.#ringNext + 1) % LATENCY_WINDOW;
    if (this.#ringFilled < LATENCY_WINDOW) this.#ringFilled++;
  }

  snapshot(): InferenceStatsSnapshot {
    return {
      inferences: this.#inferences,
      errors: this.#errors,
      latencySumMs: this.#latencySumMs,
      bucketCounts: Array.from(this.#buckets),
      latencyMs: this.#ringFilled === 0 ? undefined : percentiles(this.#ring.subarray(0, this.#ringFilled)),
      lastSuccessAt: this.#lastSuccessAt,
    };
  }
}

/** Nearest-rank percentiles of the samples (copied, then sorted). */
export function percentiles(samples: Float64Array): LatencyPercentiles {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}
