/**
 * Safe deployment (reliability.md P1–P3): a new version becomes active in one store
 * transaction, bracketed by a persisted trial marker; it stays on trial until its health
 * gate passes within the deadline; a failing version is rolled back (again one
 * transaction) with an event saying why; every daemon start that finds the marker counts
 * as a re-entry, and after `maxTrialEntries` the deployment is aborted (Mender's
 * "state loop detected"). A kill at any point leaves the store pointing at the old or the
 * new version, and the next start finishes or undoes what the marker says was under way.
 *
 * With `deploy.shadow.enabled`, a candidate first runs as a shadow beside the serving
 * version (a share of live requests mirrored to it, its answers and latency compared) and
 * goes on to the trial only when the shadow gate passes; a rejected candidate never serves,
 * the store's active pointer is not touched, and it is remembered as failed. The shadow has
 * its own persisted marker, counted and bounded across restarts like the trial's. A promoted
 * candidate's warm shadow session is what the trial serves (no second copy is loaded). A
 * deploy of another version or a rollback arriving during a shadow cancels it instead of
 * waiting for the gate (up to `maxDurationMs`): the candidate is abandoned with an event
 * (`preemptShadow` does it for a command still queued behind the deploy that started the
 * shadow). Where no live request can reach the serving, the shadow is skipped and
 * onNoTraffic decides at once. A rollback returns to a version the trust policy lets serve
 * now (rechecked; else the newest trusted one, else the failing candidate stays).
 *
 * INVARIANTS: one deployment per model at a time (callers serialise per name through
 * `exclusive`); the marker is written before the store changes and removed after; a
 * promoted shadow's marker is replaced by the trial marker in one state write, so every
 * restart from shadow start to trial end finds a marker and is counted; a shadow is
 * cancelled only through `#shadows`, before the canceller queues on `exclusive`.
 */
import type { Config } from '../config/index.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { ModelRepository, VersionRecord } from '../store/index.ts';
import type { DeployStateStore, ModelDeployState, ShadowMarker, TrialMarker } from './deploy-state.ts';
import type { EventLog, ShadowMeasurement } from './events.ts';
import { judgeShadow, judgeTrial, type ShadowMeasured } from './health-gate.ts';
import { LatencyWindow } from './latency-window.ts';
import type { ModelServing, ServedModel } from './ports.ts';

export type DeployConfig = Config['deploy'];
export type ModelBudgets = Config['daemon']['models'][number]['budgets'];

export interface DeployDeps {
  readonly repository: Pick<ModelRepository, 'active' | 'activate' | 'versions' | 'history'>;
  readonly modelPath: (modelDigest: string) => string;
  readonly serving: ModelServing;
  readonly state: DeployStateStore;
  readonly clock: Clock;
  readonly events: EventLog;
  readonly logger: Logger;
  /** Read on every use: SIGHUP may change them. */
  readonly config: () => DeployConfig;
  readonly budgets: (name: string) => ModelBudgets;
  /**
   * The trust policy for a version about to serve (local-provenance.ts localTrustCheck):
   * throws E_LOCAL_VARIANT_UNTRUSTED for a local variant it refuses. Checked at start, on
   * every deploy and on an operator's rollback target; absent, every version is trusted.
   */
  readonly trust?: (record: VersionRecord) => void;
}

/** What the deployment reads of a running shadow (runtime/serving ShadowMirror statistics). */
export interface ShadowRun {
  stats(): ShadowMeasured & { readonly dropped: number };
  /** Stops mirroring and releases the candidate's session. */
  stop(): Promise<void>;
  /**
   * Promotion: stops mirroring and makes the candidate's warm session serve its name (the
   * serving version drains), so the trial does not create and warm a second copy. When the
   * session cannot serve as it is (made unlike the live sessions, or a mirror still running)
   * it is released and this resolves `{ reused: false }`: the caller loads the candidate.
   * After it, `stop` does nothing.
   */
  promote(): Promise<{ readonly reused: boolean }>;
}

/** Serving that can run a candidate beside the active version of the same name (SlotServing). */
export interface ShadowServing {
  startShadow(model: ServedModel, options: { readonly share: number; readonly maxInFlight: number; readonly worker: boolean }): Promise<ShadowRun>;
  /**
   * Why no live request can reach this serving to be mirrored (in-process serving inside a
   * daemon without the KServe API), or undefined when some can. A shadow there would wait
   * out `maxDurationMs` for nothing, so the deployment skips it and onNoTraffic decides at once.
   */
  withoutLiveTraffic?(): string | undefined;
}

/** A running shadow as `edgevolve status` shows it: what was measured so far against what the gate needs. */
export interface ShadowProgress extends Omit<ShadowMeasurement, 'reason'> {
  readonly candidateManifest: string;
  readonly startedAt: number;
  readonly elapsedMs: number;
  readonly maxDurationMs: number;
  readonly minRequests: number;
}

function canShadow(serving: ModelServing): serving is ModelServing & ShadowServing {
  return typeof (serving as Partial<ShadowServing>).startShadow === 'function';
}

export type DeployOutcome =
  | { readonly outcome: 'unchanged'; readonly version: VersionRecord }
  /** Shadow mode turned the candidate down; `kept` serves on, untouched. */
  | { readonly outcome: 'rejected'; readonly version: VersionRecord; readonly kept: VersionRecord; readonly reason: string }
  | { readonly outcome: 'committed'; readonly version: VersionRecord; readonly gate: string }
  | { readonly outcome: 'rolled-back'; readonly to: VersionRecord | null; readonly reason: string }
  /** `cancelled`: a newer deploy or a rollback cancelled the candidate's shadow (it never served); otherwise a state loop ended it. */
  | { readonly outcome: 'aborted'; readonly reason: string; readonly cancelled?: true };

/** What start-up recovery found for a model. */
export type Recovery = 'none' | 'resume-trial' | 'rolled-back' | 'aborted' | 'resume-shadow';

export function servedModel(v: VersionRecord, modelPath: (digest: string) => string): ServedModel {
  return { name: v.name, version: v.version, variant: v.variant, versionId: v.id, manifestDigest: v.manifestDigest, modelPath: modelPath(v.modelDigest) };
}

function label(v: VersionRecord | undefined | null): string {
  return v === undefined || v === null ? 'none' : `${v.version}/${v.variant}`;
}

function measurement(candidate: VersionRecord, active: VersionRecord, reason: string, stats: (ShadowMeasured & { readonly dropped: number }) | undefined): ShadowMeasurement {
  return {
    model: candidate.name,
    version: candidate.version,
    variant: candidate.variant,
    live: label(active),
    reason,
    mirrored: stats?.mirrored ?? 0,
    dropped: stats?.dropped ?? 0,
    failed: stats?.failed ?? 0,
    agreement: stats?.agreement ?? null,
    metric: stats?.metric ?? null,
    candidateP95Ms: stats?.candidateLatencyMs?.p95 ?? null,
    liveP95Ms: stats?.liveLatencyMs?.p95 ?? null,
  };
}

/** A shadow cancelled ahead of the command that asked for it (`preemptShadow`); the command passes it back when it runs. */
export interface PreemptedShadow {
  /** Set when the shadow acted on the cancellation (it may have been decided already). */
  readonly abandoned?: true;
}

/** A running shadow that a newer deploy or a rollback may cancel. */
interface CancellableShadow extends PreemptedShadow {
  readonly manifestDigest: string;
  readonly cancel: AbortController;
  /** Set once the candidate's session mirrors traffic: what status shows. */
  progress?: () => ShadowProgress;
  /** Set by the canceller: why, and whether the candidate is remembered as failed (an operator's rollback). */
  why?: { readonly reason: string; readonly failed: boolean };
  /** Set when the shadow acted on the cancellation (it may have been decided already). */
  abandoned?: true;
}

export class DeploymentManager {
  readonly #deps: DeployDeps;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #shadows = new Map<string, CancellableShadow>();
  readonly #windows = new Map<string, LatencyWindow>();
  readonly #unsubscribe: () => void;

  constructor(deps: DeployDeps) {
    this.#deps = deps;
    this.#unsubscribe = deps.serving.onInference((o) => this.#windows.get(o.name)?.record(deps.clock.now(), o.latencyMs, o.ok));
  }

  /** Runs `work` after every earlier deployment step of `name` has finished. */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#locks.set(name, settled);
    void settled.then(() => {
      if (this.#locks.get(name) === settled) this.#locks.delete(name);
    });
    return next;
  }

  async isFailed(name: string, manifestDigest: string): Promise<boolean> {
    return (await this.#deps.state.get(name)).failed.some((f) => f.manifestDigest === manifestDigest);
  }

  /**
   * Start-up: finishes or undoes what a persisted marker says was under way, before the
   * active version is loaded. Counts this start as a re-entry of the trial.
   */
  async recover(name: string): Promise<Recovery> {
    const { state, repository, events, clock } = this.#deps;
    const current = await state.get(name);
    const marker = current.trial;
    if (marker === null) return current.shadow === null ? 'none' : this.#recoverShadow(name, current, current.shadow);
    const entries = marker.entries + 1;
    await state.put(name, { ...current, trial: { ...marker, entries } });
    const max = this.#deps.config().maxTrialEntries;
    if (marker.phase === 'rolling-back') {
      await this.#rollBack(name, { ...marker, entries }, marker.failReason ?? 'interrupted rollback', 'rolled-back');
      return 'rolled-back';
    }
    if (entries > max) {
      const reason = `state loop detected: the daemon restarted ${entries - 1} times with this version on trial (limit ${max})`;
      const candidate = repository.versions(name).find((v) => v.id === marker.candidateId);
      events.record('deploy-aborted', { model: name, version: label(candidate), reason }, clock.now());
      await this.#rollBack(name, { ...marker, entries }, reason, 'aborted');
      return 'aborted';
    }
    if (repository.active(name)?.id !== marker.candidateId) {
      // Killed between writing the marker and the activation transaction: activate now.
      repository.activate(marker.candidateId, `trial: ${marker.reason}`);
    }
    await state.put(name, { ...(await state.get(name)), trial: { ...marker, entries, phase: 'trial' } });
    return 'resume-trial';
  }

  /**
   * A restart during a shadow: the serving version never changed, so there is nothing to
   * undo. The re-entry is counted; reconcile shadows the candidate again when it deploys it,
   * unless this start went over `maxTrialEntries` (the candidate may be what crashed the
   * process), when it is abandoned and remembered as failed.
   */
  async #recoverShadow(name: string, current: ModelDeployState, shadow: ShadowMarker): Promise<Recovery> {
    const { state, repository, events, clock } = this.#deps;
    const entries = shadow.entries + 1;
    const max = this.#deps.config().maxTrialEntries;
    if (entries <= max) {
      await state.put(name, { ...current, shadow: { ...shadow, entries } });
      return 'resume-shadow';
    }
    const reason = `state loop detected: the daemon restarted ${entries - 1} times with this version in shadow (limit ${max})`;
    await state.put(name, { ...current, shadow: null, failed: [...current.failed, { manifestDigest: shadow.candidateManifest, reason, at: clock.now() }] });
    events.record('deploy-aborted', { model: name, version: label(repository.versions(name).find((v) => v.id === shadow.candidateId)), reason }, clock.now());
    return 'aborted';
  }

  /**
   * Loads the active version of `name` into serving; a version that cannot load is rolled
   * back, and one the trust policy refuses is replaced by the newest trusted version.
   */
  async loadActive(name: string): Promise<ServedModel | undefined> {
    const active = this.#deps.repository.active(name);
    if (active === undefined) return undefined;
    const distrust = this.#distrust(active);
    if (distrust !== undefined) return this.#serveTrustedInstead(active, distrust);
    const model = servedModel(active, this.#deps.modelPath);
    try {
      await this.#deps.serving.load(model);
      return model;
    } catch (err) {
      const error = toEdgevolveError(err);
      const marker = (await this.#deps.state.get(name)).trial ?? this.#syntheticMarker(active);
      const outcome = await this.#rollBack(name, marker, `cannot load ${label(active)}: ${error.code}: ${error.message}`, 'rolled-back');
      if (outcome.outcome === 'rolled-back' && outcome.to !== null) return servedModel(outcome.to, this.#deps.modelPath);
      throw error;
    }
  }

  /** Why the trust policy refuses `record` to serve, or undefined when it may. */
  #distrust(record: VersionRecord): EdgevolveError | undefined {
    try {
      this.#deps.trust?.(record);
      return undefined;
    } catch (err) {
      return toEdgevolveError(err);
    }
  }

  /**
   * Start-up found an active version the trust policy refuses (the policy turned strict, its
   * provenance row gone): it never serves. The newest trusted version that has not failed
   * (else the newest trusted one) is activated and loaded as a rollback, which clears any
   * trial marker and remembers the refused version as failed; the event names the code.
   */
  async #serveTrustedInstead(active: VersionRecord, distrust: EdgevolveError): Promise<ServedModel> {
    const name = active.name;
    const current = await this.#deps.state.get(name);
    const fallback = this.#newestTrusted(name, new Set([active.id]), current);
    if (fallback === undefined) throw distrust;
    const marker: TrialMarker = { ...(current.trial ?? this.#syntheticMarker(active)), candidateId: active.id, candidateManifest: active.manifestDigest, previousId: fallback.id };
    const outcome = await this.#rollBack(name, marker, `not trusted at start: ${distrust.code}: ${distrust.message}`, 'rolled-back');
    if (outcome.outcome === 'rolled-back' && outcome.to !== null) return servedModel(outcome.to, this.#deps.modelPath);
    throw distrust;
  }

  /** The newest stored version the trust policy lets serve, not in `exclude`: one not remembered as failed first. */
  #newestTrusted(name: string, exclude: ReadonlySet<number>, state: ModelDeployState): VersionRecord | undefined {
    const failed = new Set(state.failed.map((f) => f.manifestDigest));
    const trusted = this.#deps.repository.versions(name).filter((v) => !exclude.has(v.id) && this.#distrust(v) === undefined);
    return trusted.filter((v) => !failed.has(v.manifestDigest)).at(-1) ?? trusted.at(-1);
  }

  /**
   * Where a rollback returns to. The marker's previous version served just before, but the
   * trust policy may refuse it since (its provenance row gone, the policy turned strict) or
   * retention may have dropped it: then the newest trusted version (not remembered as failed
   * first), as at start-up; with none, `previousId` null: the failing candidate keeps
   * serving (trusted when it was deployed), because serving nothing is worse than serving
   * a version that failed its gate. `note` says why the target changed.
   */
  async #rollbackTarget(name: string, marker: TrialMarker): Promise<{ readonly previousId: number | null; readonly note?: string }> {
    if (marker.previousId === null) return { previousId: null };
    const previous = this.#deps.repository.versions(name).find((v) => v.id === marker.previousId);
    const distrust = previous === undefined ? undefined : this.#distrust(previous);
    if (previous !== undefined && distrust === undefined) return { previousId: previous.id };
    const why = previous === undefined ? `version id ${marker.previousId} is no longer in the store` : `${label(previous)} is not trusted now (${distrust?.code ?? ''}: ${distrust?.message ?? ''})`;
    const fallback = this.#newestTrusted(name, new Set([marker.candidateId, marker.previousId]), await this.#deps.state.get(name));
    if (fallback === undefined) return { previousId: null, note: `${why}, and no other trusted version is stored` };
    return { previousId: fallback.id, note: `${why}: rolled back to the newest trusted version ${label(fallback)} instead` };
  }

  /**
   * A marker for a version that failed outside a trial: roll back to the version that served
   * before it (activation history: the exact variant, not the newest stored one, which may
   * be another variant of the same version), else the newest other stored version.
   */
  #syntheticMarker(active: VersionRecord): TrialMarker {
    const others = this.#deps.repository.versions(active.name).filter((v) => v.id !== active.id);
    const servedBefore = this.#deps.repository.history(active.name, 1000).find((h) => h.versionId !== active.id && others.some((v) => v.id === h.versionId));
    const previous = others.find((v) => v.id === servedBefore?.versionId) ?? others.at(-1);
    return { candidateId: active.id, candidateManifest: active.manifestDigest, previousId: previous?.id ?? null, reason: 'load', startedAt: this.#deps.clock.now(), entries: 1, phase: 'trial' };
  }

  /**
   * Makes `candidate` active on trial, judges it, and commits or rolls back; in shadow mode
   * the candidate is shadowed first. `shadow: false` skips the shadow (an operator's
   * rollback to a version that served before is not a new version to be judged).
   */
  async deploy(candidate: VersionRecord, reason: string, signal?: AbortSignal, options: { readonly shadow?: boolean } = {}): Promise<DeployOutcome> {
    // Refused before it cancels anything: an untrusted version neither serves nor supersedes.
    const distrust = this.#distrust(candidate);
    if (distrust !== undefined) throw distrust;
    // Another version's shadow is not waited for: this deploy supersedes it (an operator's rollback abandons it as failed).
    this.#cancelShadow(candidate.name, candidate.manifestDigest, `superseded by a deploy of ${label(candidate)} (${reason})`, options.shadow === false);
    return this.exclusive(candidate.name, async () => {
      const { repository, state, events, clock } = this.#deps;
      const active = repository.active(candidate.name);
      const current = await state.get(candidate.name);
      if (active?.id === candidate.id && current.trial === null) return { outcome: 'unchanged', version: active };
      let warm: ShadowRun | undefined;
      if (active !== undefined && current.trial === null && options.shadow !== false) {
        const shadowed = await this.#shadow(candidate, active, current, reason, signal);
        if ('outcome' in shadowed) return shadowed;
        warm = shadowed.warm;
      }
      try {
        const marker: TrialMarker = {
          candidateId: candidate.id,
          candidateManifest: candidate.manifestDigest,
          previousId: active?.id ?? null,
          reason,
          startedAt: clock.now(),
          entries: 1,
          phase: 'activating',
        };
        // One atomic write replaces a promoted shadow's marker with the trial marker (no window without either).
        const before = { ...(await state.get(candidate.name)), shadow: null };
        await state.put(candidate.name, { ...before, trial: marker });
        repository.activate(candidate.id, `trial: ${reason}`);
        await state.put(candidate.name, { ...before, trial: { ...marker, phase: 'trial' } });
        events.record('deploy-started', { model: candidate.name, version: candidate.version, variant: candidate.variant, reason, entries: 1 }, clock.now());
        return await this.#trial(candidate.name, { ...marker, phase: 'trial' }, signal, false, warm);
      } finally {
        // A no-op once the trial promoted it; otherwise (a failure before that) the shadow session is released.
        await warm?.stop();
      }
    });
  }

  /**
   * Cancels the running shadow of `name` now, for a command that cannot act yet: the command
   * channel runs one state-changing command at a time, and the deploy command that started
   * the shadow holds that slot until the shadow ends. `failed` (a rollback): the candidate is
   * abandoned as failed; otherwise it is superseded. The rollback passes the result back to
   * `rollback` when its turn comes, which then answers that the candidate was abandoned.
   */
  preemptShadow(name: string, reason: string, failed: boolean): PreemptedShadow | undefined {
    return this.#cancelShadow(name, undefined, reason, failed);
  }

  /** Cancels the running shadow of `name` unless it shadows `keep` (the same candidate deployed again waits for its verdict). */
  #cancelShadow(name: string, keep: string | undefined, reason: string, failed: boolean): CancellableShadow | undefined {
    const running = this.#shadows.get(name);
    if (running === undefined || running.manifestDigest === keep || running.cancel.signal.aborted) return undefined;
    running.why = { reason, failed };
    running.cancel.abort();
    return running;
  }

  /**
   * Shadow mode: runs `candidate` beside `active` until the shadow gate decides, a newer
   * deploy or a rollback cancels it, or the daemon stops. Resolves `{ warm }` when the
   * candidate may go on to its trial (with its warm shadow, which the caller then owns, or
   * none when shadow mode is off or cannot run here), or with the rejection or abandonment.
   * A shutdown leaves the marker for the next start.
   */
  async #shadow(candidate: VersionRecord, active: VersionRecord, current: ModelDeployState, reason: string, signal?: AbortSignal): Promise<DeployOutcome | { readonly warm: ShadowRun | undefined }> {
    const { serving, logger } = this.#deps;
    const config = this.#deps.config().shadow;
    if (!config.enabled) return { warm: undefined };
    const name = candidate.name;
    if (!canShadow(serving) || !serving.loaded().some((m) => m.name === name && m.versionId === active.id)) {
      logger.warn({ model: name, version: label(candidate) }, 'shadow mode needs a serving that can shadow, serving the active version; deploying without a shadow');
      return { warm: undefined };
    }
    // A deploy queued behind the shadow that rejected this very candidate must not shadow it again.
    const failed = current.failed.find((f) => f.manifestDigest === candidate.manifestDigest);
    if (failed !== undefined) return { outcome: 'rejected', version: candidate, kept: active, reason: `failed before: ${failed.reason}` };
    const noTraffic = serving.withoutLiveTraffic?.();
    if (noTraffic !== undefined) return this.#skipShadow(candidate, active, noTraffic);
    const cancellable: CancellableShadow = { manifestDigest: candidate.manifestDigest, cancel: new AbortController() };
    this.#shadows.set(name, cancellable);
    try {
      return await this.#runShadow(serving, candidate, active, current, reason, cancellable, signal);
    } finally {
      if (this.#shadows.get(name) === cancellable) this.#shadows.delete(name);
    }
  }

  /**
   * No live request can be mirrored here: waiting `maxDurationMs` would only delay what
   * onNoTraffic decides anyway, so it decides now — `promote` goes straight to the trial
   * gate (which still judges the version on probes), `reject` turns the candidate down.
   */
  async #skipShadow(candidate: VersionRecord, active: VersionRecord, why: string): Promise<DeployOutcome | { readonly warm: undefined }> {
    const { events, clock } = this.#deps;
    const onNoTraffic = this.#deps.config().shadow.onNoTraffic;
    const reason = `no shadow: ${why}`;
    events.record('shadow-skipped', { model: candidate.name, version: candidate.version, variant: candidate.variant, live: label(active), reason, action: onNoTraffic === 'promote' ? 'trial' : 'reject' }, clock.now());
    if (onNoTraffic === 'promote') return { warm: undefined };
    return this.#rejectShadow(candidate, active, `${reason}; rejected without shadow evidence (onNoTraffic: reject)`, undefined, false);
  }

  async #runShadow(
    serving: ShadowServing,
    candidate: VersionRecord,
    active: VersionRecord,
    current: ModelDeployState,
    reason: string,
    cancellable: CancellableShadow,
    signal?: AbortSignal,
  ): Promise<DeployOutcome | { readonly warm: ShadowRun }> {
    const { state, events, clock } = this.#deps;
    const config = this.#deps.config().shadow;
    const name = candidate.name;
    const wake = signal === undefined ? cancellable.cancel.signal : AbortSignal.any([signal, cancellable.cancel.signal]);
    // The same candidate again after a restart keeps its re-entry count (recover raised it).
    const entries = current.shadow?.candidateManifest === candidate.manifestDigest ? current.shadow.entries : 1;
    const marker: ShadowMarker = { candidateId: candidate.id, candidateManifest: candidate.manifestDigest, liveId: active.id, reason, startedAt: clock.now(), entries };
    await state.put(name, { ...current, shadow: marker });
    events.record('shadow-started', { model: name, version: candidate.version, variant: candidate.variant, live: label(active), share: config.share, entries }, clock.now());
    let run: ShadowRun;
    try {
      run = await serving.startShadow(servedModel(candidate, this.#deps.modelPath), { share: config.share, maxInFlight: config.maxInFlight, worker: config.worker });
    } catch (err) {
      const error = toEdgevolveError(err);
      return this.#rejectShadow(candidate, active, `cannot load ${label(candidate)} as a shadow: ${error.code}: ${error.message}`, undefined, true);
    }
    const started = clock.now();
    cancellable.progress = () => {
      const { reason: _pending, ...measured } = measurement(candidate, active, '', run.stats());
      const rules = this.#deps.config().shadow;
      return { ...measured, candidateManifest: candidate.manifestDigest, startedAt: started, elapsedMs: clock.now() - started, maxDurationMs: rules.maxDurationMs, minRequests: rules.minRequests };
    };
    let promoted = false;
    try {
      for (;;) {
        if (signal?.aborted === true) {
          // The marker stays: the next start counts the re-entry and reconcile shadows again.
          throw new EdgevolveError('E_DAEMON_STOPPING', `shadow of ${name} ${label(candidate)} interrupted by shutdown`);
        }
        if (cancellable.why !== undefined) return await this.#abandonShadow(candidate, run.stats(), cancellable, cancellable.why);
        const rules = this.#deps.config();
        const stats = run.stats();
        const verdict = judgeShadow(stats, clock.now() - started, {
          ...rules.shadow,
          maxErrorRate: rules.maxErrorRate,
          latencyTolerance: rules.latencyTolerance,
          latencyP95BudgetMs: this.#deps.budgets(name).latencyP95Ms,
        });
        if (verdict.verdict !== 'pending' && !verdict.evidence) {
          events.record(
            'shadow-timeout',
            { model: name, version: candidate.version, mirrored: stats.mirrored, minRequests: rules.shadow.minRequests, maxDurationMs: rules.shadow.maxDurationMs, action: verdict.verdict === 'pass' ? 'promote' : 'reject' },
            clock.now(),
          );
        }
        if (verdict.verdict === 'pass') {
          // The shadow marker stays until the trial marker replaces it in one write (deploy):
          // a kill between promotion and trial is then a counted shadow re-entry, not an uncounted one.
          events.record('shadow-promoted', { ...measurement(candidate, active, verdict.reason, stats), evidence: verdict.evidence }, clock.now());
          promoted = true;
          return { warm: run };
        }
        if (verdict.verdict === 'fail') return await this.#rejectShadow(candidate, active, `shadow gate failed: ${verdict.reason}`, stats, verdict.evidence);
        await clock.sleep(rules.shadow.checkIntervalMs, wake).catch(() => undefined);
      }
    } finally {
      // A promoted shadow's warm session goes on to serve the trial; any other ending releases it.
      if (!promoted) await run.stop();
    }
  }

  /** A newer deploy or a rollback cancelled the shadow: the candidate never served and is dropped, with an event naming why. */
  async #abandonShadow(candidate: VersionRecord, stats: ShadowMeasured, cancellable: CancellableShadow, why: { readonly reason: string; readonly failed: boolean }): Promise<DeployOutcome> {
    const { state, events, clock } = this.#deps;
    cancellable.abandoned = true;
    const reason = `shadow cancelled after ${stats.mirrored} mirrored requests: ${why.reason}`;
    await state.update(candidate.name, (s) => ({
      ...s,
      shadow: null,
      failed: why.failed ? [...s.failed.filter((f) => f.manifestDigest !== candidate.manifestDigest), { manifestDigest: candidate.manifestDigest, reason, at: clock.now() }] : s.failed,
    }));
    events.record('deploy-aborted', { model: candidate.name, version: label(candidate), reason }, clock.now());
    return { outcome: 'aborted', reason, cancelled: true };
  }

  async #rejectShadow(candidate: VersionRecord, active: VersionRecord, reason: string, stats: (ShadowMeasured & { readonly dropped: number }) | undefined, evidence: boolean): Promise<DeployOutcome> {
    const { state, events, clock } = this.#deps;
    await state.update(candidate.name, (s) => ({
      ...s,
      shadow: null,
      failed: [...s.failed.filter((f) => f.manifestDigest !== candidate.manifestDigest), { manifestDigest: candidate.manifestDigest, reason, at: clock.now() }],
    }));
    events.record('shadow-rejected', { ...measurement(candidate, active, reason, stats), evidence }, clock.now());
    return { outcome: 'rejected', version: candidate, kept: active, reason };
  }

  /** The shadows running now, with what they measured so far (`edgevolve status`). */
  shadowProgress(): ShadowProgress[] {
    return [...this.#shadows.values()].flatMap((s) => (s.progress === undefined || s.abandoned === true ? [] : [s.progress()]));
  }

  /** Resumes a trial that a restart interrupted (after `recover` said so and the version was loaded). */
  resumeTrial(name: string, signal?: AbortSignal): Promise<DeployOutcome> {
    return this.exclusive(name, async () => {
      const marker = (await this.#deps.state.get(name)).trial;
      if (marker === null) {
        const active = this.#deps.repository.active(name);
        if (active === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `no active version of ${name}`);
        return { outcome: 'unchanged', version: active } as const;
      }
      const candidate = this.#deps.repository.versions(name).find((v) => v.id === marker.candidateId);
      this.#deps.events.record(
        'deploy-started',
        { model: name, version: candidate?.version ?? '?', variant: candidate?.variant ?? '?', reason: `resumed after restart: ${marker.reason}`, entries: marker.entries },
        this.#deps.clock.now(),
      );
      return this.#trial(name, { ...marker, startedAt: this.#deps.clock.now() }, signal, true);
    });
  }

  /** `warm`: the candidate's promoted shadow, whose session serves instead of a newly loaded one. */
  async #trial(name: string, marker: TrialMarker, signal?: AbortSignal, alreadyLoaded = false, warm?: ShadowRun): Promise<DeployOutcome> {
    const { repository, serving, clock, events, logger } = this.#deps;
    const candidate = repository.versions(name).find((v) => v.id === marker.candidateId);
    if (candidate === undefined) return this.#rollBack(name, marker, `version id ${marker.candidateId} is no longer in the store`, 'rolled-back');
    const model = servedModel(candidate, this.#deps.modelPath);
    if (!alreadyLoaded || !serving.loaded().some((m) => m.name === name && m.versionId === candidate.id)) {
      try {
        const promoted = warm === undefined ? { reused: false } : await warm.promote();
        if (warm !== undefined) logger.info({ model: name, version: label(candidate), reused: promoted.reused }, promoted.reused ? 'the warm shadow session serves the trial' : 'the shadow session cannot serve as it is; loading the candidate');
        if (!promoted.reused) await serving.load(model);
      } catch (err) {
        const error = toEdgevolveError(err);
        return this.#rollBack(name, marker, `cannot load ${label(candidate)}: ${error.code}: ${error.message}`, 'rolled-back');
      }
    }
    const window = new LatencyWindow();
    this.#windows.set(name, window);
    const started = clock.now();
    try {
      for (;;) {
        if (signal?.aborted === true) {
          // Stopping mid-trial: the marker stays, the next start resumes (and counts) the trial.
          throw new EdgevolveError('E_DAEMON_STOPPING', `trial of ${name} ${label(candidate)} interrupted by shutdown`);
        }
        const config = this.#deps.config();
        const t0 = performance.now();
        let ok = true;
        try {
          await serving.probe(name);
        } catch {
          ok = false;
        }
        window.record(clock.now(), performance.now() - t0, ok);
        const verdict = judgeTrial(window.summary(), clock.now() - started, {
          ...config,
          latencyP95BudgetMs: this.#deps.budgets(name).latencyP95Ms,
        });
        if (verdict.verdict === 'pass') {
          await this.#deps.state.update(name, (s) => ({ ...s, trial: null }));
          events.record('deploy-committed', { model: name, version: candidate.version, variant: candidate.variant, gate: verdict.reason }, clock.now());
          return { outcome: 'committed', version: candidate, gate: verdict.reason };
        }
        if (verdict.verdict === 'fail') return await this.#rollBack(name, marker, `health gate failed: ${verdict.reason}`, 'rolled-back');
        await clock.sleep(config.trialProbeIntervalMs, signal).catch(() => undefined);
      }
    } finally {
      if (this.#windows.get(name) === window) this.#windows.delete(name);
    }
  }

  /**
   * Operator rollback (command channel, CLI): to the version before the active one. During
   * a shadow the candidate never served: the rollback abandons it (remembered as failed) and
   * the serving version stays.
   */
  async rollback(name: string, reason: string, preempted?: PreemptedShadow): Promise<DeployOutcome> {
    const cancelled = this.#cancelShadow(name, undefined, reason, true) ?? preempted;
    return this.exclusive(name, async () => {
      const active = this.#deps.repository.active(name);
      if (active === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `no active version of ${name} to roll back from`);
      if (cancelled?.abandoned === true) return { outcome: 'rolled-back', to: active, reason: `${reason}: the candidate in shadow was abandoned; ${label(active)} kept serving` };
      const marker = (await this.#deps.state.get(name)).trial ?? this.#syntheticMarker(active);
      if (marker.previousId === null) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} has no earlier version to roll back to`);
      const target = this.#deps.repository.versions(name).find((v) => v.id === marker.previousId);
      const distrust = target === undefined ? undefined : this.#distrust(target);
      if (distrust !== undefined) throw distrust;
      return this.#rollBack(name, marker, reason, 'rolled-back');
    });
  }

  async #rollBack(name: string, failing: TrialMarker, failReason: string, outcome: 'rolled-back' | 'aborted'): Promise<DeployOutcome> {
    const { repository, state, serving, events, clock } = this.#deps;
    // The target is resolved (trust rechecked) before the marker says rolling-back, and the marker keeps it:
    // a restart mid-rollback finishes the same rollback.
    const target = await this.#rollbackTarget(name, failing);
    const marker: TrialMarker = { ...failing, previousId: target.previousId };
    const reason = target.note === undefined ? failReason : `${failReason}; ${target.note}`;
    await state.update(name, (s) => ({ ...s, trial: { ...marker, phase: 'rolling-back', failReason: reason } }));
    const from = repository.versions(name).find((v) => v.id === marker.candidateId);
    let to: VersionRecord | null = null;
    if (marker.previousId !== null) {
      const current = repository.active(name);
      // Already pointing at the previous version: a rollback interrupted after its transaction.
      const target = current?.id === marker.previousId ? current : repository.activate(marker.previousId, `rollback: ${reason}`, { updateTrust: false });
      to = target;
      try {
        await serving.load(servedModel(target, this.#deps.modelPath));
      } catch (err) {
        const error = toEdgevolveError(err);
        events.record('runtime-error', { where: `rollback of ${name} to ${label(to)}`, code: error.code, message: error.message }, clock.now());
      }
    }
    await state.update(name, (s) => ({
      ...s,
      trial: null,
      failed: [...s.failed.filter((f) => f.manifestDigest !== marker.candidateManifest), { manifestDigest: marker.candidateManifest, reason, at: clock.now() }],
    }));
    events.record(
      'deploy-rolled-back',
      {
        model: name,
        from: label(from),
        fromManifest: from?.manifestDigest ?? null,
        to: to === null ? null : label(to),
        toManifest: to?.manifestDigest ?? null,
        reason: to === null ? `${reason}; nothing to roll back to, ${label(from)} kept serving` : reason,
      },
      clock.now(),
    );
    return outcome === 'aborted' ? { outcome, reason } : { outcome, to, reason };
  }

  close(): void {
    this.#unsubscribe();
  }
}
