/**
 * A ModelSlot serves one model name: it holds the active onnxruntime session with its
 * version metadata, swaps in a new version without failing a request, and counts what
 * it serves.
 *
 * INVARIANTS:
 * - `#active` changes only inside `#switchTo`, synchronously, after the new session was
 *   created and warmed; so a request sees either the old or the new version, never none.
 * - Every inference holds a lease on the loaded version it started with (`leases` > 0)
 *   until its run settles; a retired version's session is released exactly once, when
 *   its last lease ends (or at once when it had none).
 * - Swaps run one at a time (`#swapChain`); a failed swap releases its own new session
 *   and leaves `#active` untouched.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { EdgevolveError, toEdgevolveError } from '../../errors/index.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import type { Session, SessionValueInfo } from '../session.ts';
import { probeBatching, shapeObstacle } from './batch-probe.ts';
import { batchingSession, type BatchingOptions } from './batching.ts';
import { checkFeeds, checkOutputNames } from './check-feeds.ts';
import type { AnsweredBy, InferenceInterceptor, InferenceObserver } from './hooks.ts';
import { InferenceStats, type InferenceStatsSnapshot } from './stats.ts';
import { warmupFeeds } from './warmup.ts';

/** A version to load into a slot. */
export interface ModelVersionSpec {
  readonly version: string;
  /** The variant chosen for this device (precision, sparsity...), for metadata and telemetry. */
  readonly variant?: string;
  /** Free-form facts shown in metadata (digest, source...). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Creates the session, e.g. `() => createSession(verifiedBytes, options)`. Called once per load. */
  readonly createSession: () => Promise<Session>;
}

/** What is known of the version a slot serves. */
export interface LoadedVersionInfo {
  readonly name: string;
  readonly version: string;
  readonly variant: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly inputs: readonly SessionValueInfo[];
  readonly outputs: readonly SessionValueInfo[];
  /** Epoch milliseconds when it started serving. */
  readonly loadedAt: number;
  /** Whether concurrent requests are batched, and why (also in `labels` as `batching`, `batching_reason`). */
  readonly batching: BatchingState;
}

/** The batching decision for a loaded version. */
export interface BatchingState {
  readonly enabled: boolean;
  /** Most rows per batch when enabled. */
  readonly maxRows: number | undefined;
  /** One sentence: the probe's verdict, the shape obstacle, or that batching is off or forced. */
  readonly reason: string;
}

export interface ModelSlotOptions {
  /** Warm-up runs on generated inputs before a new version serves. Default 3. */
  readonly warmupRuns?: number;
  readonly observers?: readonly InferenceObserver[];
  readonly interceptor?: InferenceInterceptor;
  readonly logger?: Logger;
  /** Dynamic batching of concurrent requests (batching.ts); off when absent or `maxRows` < 2. */
  readonly batching?: BatchingOptions;
  /** Epoch milliseconds; injected for tests. */
  readonly now?: () => number;
}

export interface InferOptions {
  /** Only these outputs; all when absent. */
  readonly outputNames?: readonly string[];
  /** Serve only if this version is the active one. */
  readonly version?: string;
  /** The caller's request id, passed to observers and the interceptor. */
  readonly requestId?: string;
}

export interface InferResult {
  readonly outputs: Readonly<Record<string, TensorValue>>;
  readonly version: string;
  readonly variant: string | undefined;
  readonly answeredBy: AnsweredBy;
  /** Local model run time, in milliseconds. */
  readonly latencyMs: number;
}

export interface SwapResult {
  readonly version: string;
  readonly previousVersion: string | undefined;
  /** Time to create and warm the new session, in milliseconds. */
  readonly loadMs: number;
  /** Resolves when the previous version's in-flight requests finished and its session was released. */
  readonly previousDrained: Promise<void>;
}

export interface SlotMetrics {
  readonly name: string;
  readonly loaded: boolean;
  readonly version: string | undefined;
  readonly variant: string | undefined;
  /** Inferences running now, on any version. */
  readonly inFlight: number;
  readonly swaps: number;
  readonly failedSwaps: number;
  /** Inference worker threads of the active version that died and were replaced (0 when inference runs in-process). */
  readonly workerRestarts: number;
  /** Since the slot was created, across versions. */
  readonly total: InferenceStatsSnapshot;
  /** Since the active version started serving (what a post-swap health gate watches). */
  readonly active: InferenceStatsSnapshot | undefined;
}

interface Loaded {
  readonly info: LoadedVersionInfo;
  readonly session: Session;
  readonly stats: InferenceStats;
  leases: number;
  retired: boolean;
  released: boolean;
  drained: () => void;
  readonly drainedPromise: Promise<void>;
}

export class ModelSlot {
  readonly name: string;
  readonly #options: ModelSlotOptions;
  readonly #now: () => number;
  readonly #total = new InferenceStats();
  #active: Loaded | undefined;
  #swapChain: Promise<unknown> = Promise.resolve();
  #inFlight = 0;
  #swaps = 0;
  #failedSwaps = 0;
  #closed = false;

  constructor(name: string, options: ModelSlotOptions = {}) {
    this.name = name;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** True once a version serves (and until close). */
  get loaded(): boolean {
    return this.#active !== undefined;
  }

  /** The version serving now, or undefined. */
  get active(): LoadedVersionInfo | undefined {
    return this.#active?.info;
  }

  /**
   * Creates and warms the new version, then switches to it; in-flight requests finish
   * on the version they started on. On failure the previous version keeps serving and
   * this rejects with E_SERVING_SWAP_FAILED. The first load is a swap from nothing.
   */
  swap(spec: ModelVersionSpec): Promise<SwapResult> {
    const run = this.#swapChain.then(() => this.#swapNow(spec));
    this.#swapChain = run.catch(() => undefined);
    return run;
  }

  async #swapNow(spec: ModelVersionSpec): Promise<SwapResult> {
    if (this.#closed) throw new EdgevolveError('E_SERVING_CLOSED', `model '${this.name}' is closed`, { context: { model: this.name } });
    const started = performance.now();
    let session: Session | undefined;
    let batching: BatchingState | undefined;
    try {
      session = await spec.createSession();
      const decided = await this.#decideBatching(session, spec.version);
      batching = decided.state;
      if (batching.enabled && this.#options.batching !== undefined) session = batchingSession(session, this.#options.batching);
      const feeds = warmupFeeds(session.inputs);
      // The probe's successful runs did what warm-up runs do (arenas allocated, kernels chosen).
      const runs = Math.max(0, (this.#options.warmupRuns ?? 3) - decided.warmedRuns);
      for (let i = 0; i < runs; i++) await session.run(feeds);
    } catch (err) {
      this.#failedSwaps++;
      if (session !== undefined) await session.release().catch(() => undefined);
      const cause = toEdgevolveError(err);
      this.#options.logger?.warn({ model: this.name, version: spec.version, code: cause.code, err: cause.message }, 'new model version failed to load; the previous one keeps serving');
      throw new EdgevolveError('E_SERVING_SWAP_FAILED', `model '${this.name}' version ${spec.version} failed to load: ${cause.message}`, {
        cause,
        context: { model: this.name, version: spec.version, previousVersion: this.#active?.info.version, reason: cause.code },
      });
    }
    if (this.#closed) {
      await session.release();
      throw new EdgevolveError('E_SERVING_CLOSED', `model '${this.name}' was closed during the swap`, { context: { model: this.name } });
    }
    const loadMs = performance.now() - started;
    const previous = this.#switchTo(spec, session, batching ?? { enabled: false, maxRows: undefined, reason: 'batching is off' });
    this.#swaps++;
    this.#options.logger?.info({ model: this.name, version: spec.version, previousVersion: previous?.info.version, loadMs: Math.round(loadMs) }, 'model version serving');
    return {
      version: spec.version,
      previousVersion: previous?.info.version,
      loadMs,
      previousDrained: previous === undefined ? Promise.resolve() : this.#retire(previous),
    };
  }

  /**
   * Batch this version? Off without batching options; with `probe` (batchMaxRows 'auto')
   * only when the batch probe passes; else (an explicit row count) when the shapes allow.
   */
  async #decideBatching(session: Session, version: string): Promise<{ state: BatchingState; warmedRuns: number }> {
    const options = this.#options.batching;
    if (options === undefined || options.maxRows < 2) return { state: { enabled: false, maxRows: undefined, reason: 'batching is off' }, warmedRuns: 0 };
    if (options.probe === true) {
      const verdict = await probeBatching(session);
      const state = { enabled: verdict.batchable, maxRows: verdict.batchable ? options.maxRows : undefined, reason: verdict.reason };
      this.#options.logger?.info(
        { model: this.name, version, batched: verdict.batchable, reason: verdict.reason, probeMs: Math.round(verdict.ms * 10) / 10, probeRuns: verdict.runs },
        verdict.batchable ? `dynamic batching on (up to ${options.maxRows} rows): the batch probe passed` : `model not batched: ${verdict.reason}`,
      );
      return { state, warmedRuns: verdict.succeededRuns };
    }
    const obstacle = shapeObstacle(session);
    const state: BatchingState = obstacle === undefined ? { enabled: true, maxRows: options.maxRows, reason: 'batching forced by a row count (shapes checked, batch probe not run)' } : { enabled: false, maxRows: undefined, reason: obstacle };
    if (obstacle !== undefined) this.#options.logger?.info({ model: this.name, version, batched: false, reason: obstacle }, `model not batched: ${obstacle}`);
    return { state, warmedRuns: 0 };
  }

  #switchTo(spec: ModelVersionSpec, session: Session, batching: BatchingState): Loaded | undefined {
    let drained!: () => void;
    const drainedPromise = new Promise<void>((resolve) => (drained = resolve));
    const previous = this.#active;
    this.#active = {
      info: {
        name: this.name,
        version: spec.version,
        variant: spec.variant,
        labels: { ...spec.labels, batching: batching.enabled ? 'on' : 'off', batching_reason: batching.reason },
        inputs: session.inputs,
        outputs: session.outputs,
        loadedAt: this.#now(),
        batching,
      },
      session,
      stats: new InferenceStats(),
      leases: 0,
      retired: false,
      released: false,
      drained,
      drainedPromise,
    };
    return previous;
  }

  /** Marks a version retired; its session is released when its last lease ends. */
  #retire(loaded: Loaded): Promise<void> {
    loaded.retired = true;
    if (loaded.leases === 0) void this.#release(loaded);
    return loaded.drainedPromise;
  }

  async #release(loaded: Loaded): Promise<void> {
    if (loaded.released) return;
    loaded.released = true;
    try {
      await loaded.session.release();
    } catch (err) {
      this.#options.logger?.warn({ model: this.name, version: loaded.info.version, err: toEdgevolveError(err).message }, 'releasing a retired session failed');
    }
    loaded.drained();
  }

  /**
   * Runs one inference on the active version (checked against its inputs first), then
   * lets the interceptor replace the answer and tells the observers.
   */
  async infer(feeds: Readonly<Record<string, TensorValue>>, options: InferOptions = {}): Promise<InferResult> {
    const loaded = this.#acquire(options.version);
    const started = performance.now();
    let outputs: Record<string, TensorValue>;
    try {
      checkFeeds(loaded.info.inputs, feeds);
      checkOutputNames(loaded.info.outputs, options.outputNames);
      outputs = await loaded.session.run(feeds, options.outputNames);
    } catch (err) {
      const latencyMs = performance.now() - started;
      this.#endLease(loaded);
      const error = toEdgevolveError(err);
      // A caller's malformed input is not the model failing: it is not counted against the version.
      if (error.code !== 'E_SERVING_INPUT_INVALID') {
        const at = this.#now();
        loaded.stats.record(latencyMs, false, at);
        this.#total.record(latencyMs, false, at);
      }
      this.#notify(loaded, options, feeds, undefined, undefined, latencyMs, 'local', error);
      throw error;
    }
    const latencyMs = performance.now() - started;
    this.#endLease(loaded);
    const at = this.#now();
    loaded.stats.record(latencyMs, true, at);
    this.#total.record(latencyMs, true, at);

    let answer: Readonly<Record<string, TensorValue>> = outputs;
    let answeredBy: AnsweredBy = 'local';
    const interceptor = this.#options.interceptor;
    if (interceptor !== undefined) {
      try {
        const replaced = await interceptor.intercept({
          model: this.name,
          version: loaded.info.version,
          requestId: options.requestId,
          inputs: feeds,
          localOutputs: outputs,
          latencyMs,
        });
        if (replaced !== undefined) {
          answer = replaced.outputs;
          answeredBy = replaced.answeredBy;
        }
      } catch (err) {
        this.#options.logger?.warn({ model: this.name, err: toEdgevolveError(err).message }, 'inference interceptor failed; answering with the local result');
      }
    }
    this.#notify(loaded, options, feeds, answer, outputs, latencyMs, answeredBy, undefined);
    return { outputs: answer, version: loaded.info.version, variant: loaded.info.variant, answeredBy, latencyMs };
  }

  #acquire(version: string | undefined): Loaded {
    if (this.#closed) throw new EdgevolveError('E_SERVING_CLOSED', `model '${this.name}' is closed`, { context: { model: this.name } });
    const loaded = this.#active;
    if (loaded === undefined) {
      throw new EdgevolveError('E_SERVING_NOT_LOADED', `model '${this.name}' is not loaded yet`, { context: { model: this.name } });
    }
    if (version !== undefined && version !== loaded.info.version) {
      throw new EdgevolveError('E_SERVING_NOT_LOADED', `model '${this.name}' version ${version} is not loaded (serving ${loaded.info.version})`, {
        context: { model: this.name, requestedVersion: version, version: loaded.info.version },
      });
    }
    loaded.leases++;
    this.#inFlight++;
    return loaded;
  }

  #endLease(loaded: Loaded): void {
    loaded.leases--;
    this.#inFlight--;
    if (loaded.retired && loaded.leases === 0) void this.#release(loaded);
  }

  #notify(
    loaded: Loaded,
    options: InferOptions,
    inputs: Readonly<Record<string, TensorValue>>,
    outputs: Readonly<Record<string, TensorValue>> | undefined,
    localOutputs: Readonly<Record<string, TensorValue>> | undefined,
    latencyMs: number,
    answeredBy: AnsweredBy,
    error: EdgevolveError | undefined,
  ): void {
    const observers = this.#options.observers;
    if (observers === undefined || observers.length === 0) return;
    const event = {
      model: this.name,
      version: loaded.info.version,
      variant: loaded.info.variant,
      requestId: options.requestId,
      inputs,
      outputs,
      localOutputs,
      latencyMs,
      answeredBy,
      error,
    };
    for (const observer of observers) {
      try {
        observer.onInference(event);
      } catch (err) {
        this.#options.logger?.warn({ model: this.name, err: toEdgevolveError(err).message }, 'inference observer threw; ignored');
      }
    }
  }

  metrics(): SlotMetrics {
    const active = this.#active;
    return {
      name: this.name,
      loaded: active !== undefined,
      version: active?.info.version,
      variant: active?.info.variant,
      inFlight: this.#inFlight,
      swaps: this.#swaps,
      failedSwaps: this.#failedSwaps,
      workerRestarts: active?.session.workerRestarts ?? 0,
      total: this.#total.snapshot(),
      active: active?.stats.snapshot(),
    };
  }

  /** Stops accepting inferences, waits for in-flight ones, releases the session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#swapChain;
    const active = this.#active;
    this.#active = undefined;
    if (active !== undefined) await this.#retire(active);
  }
}
