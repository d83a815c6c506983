/** The planner's benchmark: runtime/bench's isolated child, sized to a time budget. */
import { ERROR_CODES, EdgevolveError, type ErrorCode } from '../errors/index.ts';
import { runIsolatedBenchmark } from '../runtime/bench/parent.ts';
import type { BenchNumbers, OptimizeDeps } from './search.ts';

/** Runs each candidate in a child for about `benchMs` of timed runs (20 to 500 runs), batch 1. */
export function isolatedBench(threads: number, benchMs: number): OptimizeDeps['bench'] {
  return async (bytes, shapes, expectedMs, signal): Promise<BenchNumbers> => {
    const iterations = Math.max(20, Math.min(500, Math.round(benchMs / Math.max(expectedMs, 1e-3))));
    const outcome = await runIsolatedBenchmark({
      request: { model: bytes, iterations, warmup: Math.max(5, Math.round(iterations / 10)), threads, shapes, seed: 1 },
      // Generous: a slow candidate is a measurement, not a hang; 20x its expected time plus start-up.
      timeoutMs: Math.max(60_000, expectedMs * iterations * 20),
      // A cancelled search kills its benchmark child at once instead of waiting for its runs.
      ...(signal === undefined ? {} : { signal }),
    });
    if (!outcome.ok) {
      const code: ErrorCode = outcome.failure.error.code in ERROR_CODES ? (outcome.failure.error.code as ErrorCode) : 'E_BENCH_CRASHED';
      throw new EdgevolveError(code, outcome.failure.error.message, { context: { kind: outcome.failure.kind } });
    }
    const l = outcome.result.latency;
    return { p50Ms: l.p50Ms, p95Ms: l.p95Ms, p99Ms: l.p99Ms, peakBytes: outcome.result.memory.peakDeltaBytes };
  };
}
