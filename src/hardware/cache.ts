/**
 * The micro-benchmark cache in the state database (table hardware_benchmarks,
 * migration 3): one row per hardware fingerprint and benchmark version, so a new
 * CPU, more memory, another board or an onnxruntime upgrade re-measures, and nothing
 * else does. Statements are prepared once per instance.
 */
import type { Statement } from 'better-sqlite3';
import type { StateDatabase } from '../store/index.ts';
import { MICRO_BENCH_VERSION, type MicroBenchmarks } from './micro-bench.ts';

export class MicroBenchCache {
  readonly #get: Statement<[string, number], { result: string }>;
  readonly #put: Statement<[string, number, number, string]>;

  constructor(db: StateDatabase) {
    this.#get = db.prepare('SELECT result FROM hardware_benchmarks WHERE fingerprint = ? AND version = ?');
    this.#put = db.prepare(
      'INSERT INTO hardware_benchmarks (fingerprint, version, measured_at, result) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (fingerprint, version) DO UPDATE SET measured_at = excluded.measured_at, result = excluded.result',
    );
  }

  /** The cached measurement for this fingerprint, or undefined (also when the row is unreadable: it is re-measured). */
  get(fingerprint: string): MicroBenchmarks | undefined {
    const row = this.#get.get(fingerprint, MICRO_BENCH_VERSION);
    if (row === undefined) return undefined;
    try {
      const parsed = JSON.parse(row.result) as MicroBenchmarks;
      return parsed.version === MICRO_BENCH_VERSION ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  put(fingerprint: string, result: MicroBenchmarks, measuredAtMs: number): void {
    this.#put.run(fingerprint, MICRO_BENCH_VERSION, measuredAtMs, JSON.stringify(result));
  }
}
