/**
 * Shadow mode (issue 8): a candidate version runs beside the live one on a share of the
 * live requests, after their answer was produced, so that its agreement and latency are
 * measured on real traffic before it serves anybody.
 *
 * INVARIANTS:
 * - A live request never waits on the candidate: `onInference` only samples and schedules
 *   (setImmediate, after the live caller's continuation), and never throws.
 * - Mirrors run one at a time, in the order sampled; at most `maxInFlight` are queued or
 *   running, and a sampled request over the cap is dropped and counted, so a slow
 *   candidate costs bounded memory and CPU.
 * - The candidate session is released exactly once, by `close`, after every mirror settled,
 *   unless `handOver` gave it away first (then whoever took it releases it).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { toEdgevolveError } from '../../errors/index.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import type { Session } from '../session.ts';
import type { InferenceEvent, InferenceObserver } from './hooks.ts';
import { scoreAgreement, type AgreementMetric } from './shadow-compare.ts';
import { InferenceStats, type LatencyPercentiles } from './stats.ts';
import { warmupFeeds } from './warmup.ts';

export interface ShadowMirrorOptions {
  /** Share of live requests mirrored, 0..1. */
  readonly share: number;
  /** Mirrors scheduled or running at once; more are dropped. */
  readonly maxInFlight: number;
  /** Uniform in [0, 1); injected for tests. Default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Epoch milliseconds; injected for tests. */
  readonly now?: () => number;
}

/** What a shadow measured so far. */
export interface ShadowStats {
  readonly version: string;
  /** Successful live inferences seen since the shadow started. */
  readonly seen: number;
  /** Candidate runs that finished (compared or failed). */
  readonly mirrored: number;
  /** Candidate runs that threw. */
  readonly failed: number;
  /** Sampled live requests not mirrored because `maxInFlight` mirrors were busy. */
  readonly dropped: number;
  readonly inFlight: number;
  /** Candidate runs whose outputs were compared with the live ones. */
  readonly compared: number;
  /** Mean agreement score over compared runs (see shadow-compare.ts); undefined before the first. */
  readonly agreement: number | undefined;
  /** The rule that scored the last compared run. */
  readonly metric: AgreementMetric | undefined;
  /** Latency of the live version on the mirrored requests. */
  readonly liveLatencyMs: LatencyPercentiles | undefined;
  /** Latency of the candidate on the same requests. */
  readonly candidateLatencyMs: LatencyPercentiles | undefined;
}

/** The candidate as the mirror needs it: a warmed session and its version label. */
export interface ShadowCandidate<S extends Pick<Session, 'run' | 'release'> = Pick<Session, 'run' | 'release'>> {
  readonly version: string;
  readonly session: S;
}

export class ShadowMirror<S extends Pick<Session, 'run' | 'release'> = Pick<Session, 'run' | 'release'>> implements InferenceObserver {
  readonly #candidate: ShadowCandidate<S>;
  readonly #options: ShadowMirrorOptions;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #live = new InferenceStats();
  readonly #shadow = new InferenceStats();
  #seen = 0;
  #failed = 0;
  #dropped = 0;
  #inFlight = 0;
  #compared = 0;
  #scoreSum = 0;
  #metric: AgreementMetric | undefined;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Settles when the last scheduled mirror has run; `#mirror` never rejects. */
  #queue: Promise<void> = Promise.resolve();

  constructor(candidate: ShadowCandidate<S>, options: ShadowMirrorOptions) {
    this.#candidate = candidate;
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** The observer hook: samples successful live inferences of the model this mirror shadows. */
  onInference(event: InferenceEvent): void {
    if (this.#closed || event.error !== undefined || event.localOutputs === undefined) return;
    this.#seen++;
    if (this.#random() >= this.#options.share) return;
    if (this.#inFlight >= this.#options.maxInFlight) {
      this.#dropped++;
      return;
    }
    this.#inFlight++;
    const { inputs, localOutputs, latencyMs } = event;
    // One candidate run at a time: each is timed alone (not queued behind the others inside
    // a worker session), and the candidate takes at most one core from the live version.
    this.#queue = this.#queue.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(() => this.#mirror(inputs, localOutputs, latencyMs));
  }

  async #mirror(inputs: Readonly<Record<string, TensorValue>>, live: Readonly<Record<string, TensorValue>>, liveLatencyMs: number): Promise<void> {
    const started = performance.now();
    try {
      if (this.#closed) return;
      const outputs = await this.#candidate.session.run(inputs, Object.keys(live));
      const latencyMs = performance.now() - started;
      const at = this.#now();
      this.#shadow.record(latencyMs, true, at);
      this.#live.record(liveLatencyMs, true, at);
      const { score, metric } = scoreAgreement(live, outputs);
      this.#compared++;
      this.#scoreSum += score;
      this.#metric = metric;
    } catch (err) {
      this.#failed++;
      this.#shadow.record(performance.now() - started, false, this.#now());
      if (this.#failed === 1) {
        this.#options.logger?.warn({ version: this.#candidate.version, err: toEdgevolveError(err).message }, 'shadow candidate failed an inference (live answer unaffected)');
      }
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  stats(): ShadowStats {
    const shadow = this.#shadow.snapshot();
    return {
      version: this.#candidate.version,
      seen: this.#seen,
      mirrored: this.#compared + this.#failed,
      failed: this.#failed,
      dropped: this.#dropped,
      inFlight: this.#inFlight,
      compared: this.#compared,
      agreement: this.#compared === 0 ? undefined : this.#scoreSum / this.#compared,
      metric: this.#metric,
      liveLatencyMs: this.#live.snapshot().latencyMs,
      candidateLatencyMs: shadow.latencyMs,
    };
  }

  /** Resolves when no mirror is scheduled or running. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Stops sampling, waits for running mirrors, releases the candidate session. A mirror
   * still running after `waitMs` (a hung candidate) keeps its session: releasing a session
   * under a running inference is not safe, so it is left to the process and logged.
   */
  async close(waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!(await this.#settled(waitMs))) {
      this.#options.logger?.warn({ version: this.#candidate.version, inFlight: this.#inFlight, waitMs }, 'shadow candidate still running at close; its session is not released');
      return;
    }
    await this.#candidate.session.release();
  }

  /**
   * Promotion: stops sampling, waits for running mirrors, and gives the warm candidate
   * session to the caller, who then owns (and releases) it; a later `close` does nothing.
   * Undefined when the mirror was closed already, or a mirror is still running after
   * `waitMs` (a hung candidate is not handed to live traffic; its session is left as
   * `close` leaves it).
   */
  async handOver(waitMs = Number.POSITIVE_INFINITY): Promise<S | undefined> {
    if (this.#closed) return undefined;
    this.#closed = true;
    if (!(await this.#settled(waitMs))) {
      this.#options.logger?.warn({ version: this.#candidate.version, inFlight: this.#inFlight, waitMs }, 'shadow candidate still running at promotion; its session is not reused');
      return undefined;
    }
    return this.#candidate.session;
  }

  async #settled(waitMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      this.idle().then(() => true),
      ...(Number.isFinite(waitMs) ? [new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))] : []),
    ]);
    clearTimeout(timer);
    return settled;
  }
}

/** A candidate to shadow: its version and how to create its session. */
export interface ShadowSpec {
  readonly version: string;
  readonly createSession: () => Promise<Session>;
}

/**
 * Creates and warms the candidate's session (as a swap would, so the first mirrors do not
 * measure onnxruntime's first-run allocations), then returns its mirror. A session that
 * fails to load or warm is released and the error rethrown.
 */
export async function startShadowMirror(spec: ShadowSpec, options: ShadowMirrorOptions & { readonly warmupRuns?: number }): Promise<ShadowMirror<Session>> {
  const session = await spec.createSession();
  try {
    const feeds = warmupFeeds(session.inputs);
    for (let i = 0; i < (options.warmupRuns ?? 3); i++) await session.run(feeds);
  } catch (err) {
    await session.release().catch(() => undefined);
    throw err;
  }
  return new ShadowMirror({ version: spec.version, session }, options);
}
