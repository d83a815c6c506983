/**
 * Inference outcomes over a sliding time window: a ring of (time, latency, ok) in
 * TypedArrays, so recording costs no allocation. Percentiles copy the in-window
 * latencies into a scratch array once per query (queries are seconds apart).
 */
export interface WindowSummary {
  readonly samples: number;
  readonly errors: number;
  /** Share of failed inferences, 0 when there were none. */
  readonly errorRate: number;
  /** p95 latency of the successful inferences, ms; undefined without any. */
  readonly p95Ms: number | undefined;
}

export class LatencyWindow {
  readonly #at: Float64Array;
  readonly #latency: Float64Array;
  readonly #ok: Uint8Array;
  readonly #scratch: Float64Array;
  #next = 0;
  #count = 0;

  constructor(capacity = 4096) {
    this.#at = new Float64Array(capacity);
    this.#latency = new Float64Array(capacity);
    this.#ok = new Uint8Array(capacity);
    this.#scratch = new Float64Array(capacity);
  }

  record(at: number, latencyMs: number, ok: boolean): void {
    const i = this.#next;
    this.#at[i] = at;
    this.#latency[i] = latencyMs;
    this.#ok[i] = ok ? 1 : 0;
    this.#next = (i + 1) % this.#at.length;
    if (this.#count < this.#at.length) this.#count++;
  }

  clear(): void {
    this.#next = 0;
    this.#count = 0;
  }

  /** Outcomes recorded at or after `since` (ms, same clock as `record`). */
  summary(since = Number.NEGATIVE_INFINITY): WindowSummary {
    let samples = 0;
    let errors = 0;
    let okCount = 0;
    const capacity = this.#at.length;
    for (let k = 0; k < this.#count; k++) {
      const i = (this.#next - 1 - k + capacity) % capacity;
      if ((this.#at[i] as number) < since) continue;
      samples++;
      if (this.#ok[i] === 1) this.#scratch[okCount++] = this.#latency[i] as number;
      else errors++;
    }
    return { samples, errors, errorRate: samples === 0 ? 0 : errors / samples, p95Ms: okCount === 0 ? undefined : percentile(this.#scratch.subarray(0, okCount), 0.95) };
  }
}

/** Nearest-rank percentile; sorts `values` in place. */
export function percentile(values: Float64Array, p: number): number {
  values.sort();
  const rank = Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1));
  return values[rank] as number;
}
