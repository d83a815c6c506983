/**
 * The IPC messages between the benchmark parent (parent.ts) and its child
 * (child.ts). Structured clone ('advanced' serialization), so model bytes and
 * Float64Arrays cross without JSON.
 */
import type { LatencySummary } from './stats.ts';

export interface BenchRequest {
  /** A path (onnxruntime resolves external data beside it) or the model's bytes. */
  readonly model: string | Uint8Array;
  readonly warmup: number;
  readonly iterations: number;
  /** Intra-op threads; onnxruntime's default (one per core) when absent. */
  readonly threads?: number;
  /** In preference order; CPU when absent. */
  readonly executionProviders?: readonly string[];
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  readonly batch?: number;
  /** Feed the first batch of this data set instead of generated data. */
  readonly dataDir?: string;
  /** Seed of the generated data. */
  readonly seed: number;
}

export interface BenchInputReport {
  readonly name: string;
  readonly dataType: number;
  readonly dims: readonly number[];
  readonly source: 'generated' | 'data';
  /** Free dimensions that took a default, e.g. ["height=224"]. */
  readonly defaulted: readonly string[];
}

export interface BenchMemory {
  /** Resident size just before the session was created. */
  readonly baselineBytes: number;
  /** Highest resident size from session creation to the last run (VmHWM). */
  readonly peakBytes: number;
  /** peakBytes - baselineBytes: what the model costs in memory, weights, arena and inputs included. */
  readonly peakDeltaBytes: number;
  /** True when the kernel reset the high-water mark before the session, so the peak is the model's, not Node's start-up. */
  readonly peakReset: boolean;
  readonly source: 'proc-status' | 'getrusage';
}

export interface BenchResult {
  readonly sessionCreateMs: number;
  readonly executionProviders: readonly string[];
  readonly inputs: readonly BenchInputReport[];
  readonly warmup: { readonly runs: number; readonly ms: number };
  readonly latency: LatencySummary;
  readonly throughput: {
    /** Runs per second over the timed runs. */
    readonly inferencesPerSecond: number;
    /** inferencesPerSecond times the batch (first dimension of the first input). */
    readonly samplesPerSecond: number;
  };
  readonly memory: BenchMemory;
  /** Every timed run's latency in ms, in order. */
  readonly samplesMs: Float64Array;
}

export type BenchPhase = 'load' | 'session' | 'inputs' | 'warmup' | 'measure';

export interface SerializedError {
  readonly code: string;
  readonly message: string;
  readonly context: Readonly<Record<string, unknown>>;
}

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'phase'; readonly phase: BenchPhase }
  | { readonly type: 'result'; readonly result: BenchResult }
  | { readonly type: 'error'; readonly error: SerializedError };

export type ParentMessage = { readonly type: 'run'; readonly request: BenchRequest };
