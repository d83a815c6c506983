/**
 * Safe deployment (reliability.md P1–P3): a new version becomes active in one store
 * transaction, bracketed by a persisted trial marker; it stays on trial until its health
 * gate passes within the deadline; a failing version is rolled back (again one
 * transaction) with an event saying why; every daemon start that finds the marker counts
 * as a re-entry, and after `maxTrialEntries` the deployment is aborted (Mender's
 * "state loop detected"). A kill at any point leaves the store pointing at the old or the
 * new version, and the next start finishes or undoes what the marker says was under way.
 *
 * INVARIANTS: one deployment per model at a time (callers serialise per name through
 * `exclusive`); the marker is written before the store changes and removed after.
 */
import type { Config } from '../config/index.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { ModelRepository, VersionRecord } from '../store/index.ts';
import type { DeployStateStore, TrialMarker } from './deploy-state.ts';
import type { EventLog } from './events.ts';
import { judgeTrial } from './health-gate.ts';
import { LatencyWindow } from './latency-window.ts';
import type { ModelServing, ServedModel } from './ports.ts';

export type DeployConfig = Config['deploy'];
export type ModelBudgets = Config['daemon']['models'][number]['budgets'];

export interface DeployDeps {
  readonly repository: Pick<ModelRepository, 'active' | 'activate' | 'versions'>;
  readonly modelPath: (modelDigest: string) => string;
  readonly serving: ModelServing;
  readonly state: DeployStateStore;
  readonly clock: Clock;
  readonly events: EventLog;
  readonly logger: Logger;
  /** Read on every use: SIGHUP may change them. */
  readonly config: () => DeployConfig;
  readonly budgets: (name: string) => ModelBudgets;
}

export type DeployOutcome =
  | { readonly outcome: 'unchanged'; readonly version: VersionRecord }
  | { readonly outcome: 'committed'; readonly version: VersionRecord; readonly gate: string }
  | { readonly outcome: 'rolled-back'; readonly to: VersionRecord | null; readonly reason: string }
  | { readonly outcome: 'aborted'; readonly reason: string };

/** What start-up recovery found for a model. */
export type Recovery = 'none' | 'resume-trial' | 'rolled-back' | 'aborted';

export function servedModel(v: VersionRecord, modelPath: (digest: string) => string): ServedModel {
  return { name: v.name, version: v.version, variant: v.variant, versionId: v.id, manifestDigest: v.manifestDigest, modelPath: modelPath(v.modelDigest) };
}

function label(v: VersionRecord | undefined | null): string {
  return v === undefined || v === null ? 'none' : `${v.version}/${v.variant}`;
}

export class DeploymentManager {
  readonly #deps: DeployDeps;
  readonly #locks = new Map<string, Promise<unknown>>();
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
    if (marker === null) return 'none';
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

  /** Loads the active version of `name` into serving; a version that cannot load is rolled back. */
  async loadActive(name: string): Promise<ServedModel | undefined> {
    const active = this.#deps.repository.active(name);
    if (active === undefined) return undefined;
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

  /** A marker for a version that failed outside a trial: roll back to the last other version in history. */
  #syntheticMarker(active: VersionRecord): TrialMarker {
    const previous = this.#deps.repository
      .versions(active.name)
      .filter((v) => v.id !== active.id)
      .at(-1);
    return { candidateId: active.id, candidateManifest: active.manifestDigest, previousId: previous?.id ?? null, reason: 'load', startedAt: this.#deps.clock.now(), entries: 1, phase: 'trial' };
  }

  /** Makes `candidate` active on trial, judges it, and commits or rolls back. */
  async deploy(candidate: VersionRecord, reason: string, signal?: AbortSignal): Promise<DeployOutcome> {
    return this.exclusive(candidate.name, async () => {
      const { repository, state, events, clock } = this.#deps;
      const active = repository.active(candidate.name);
      const current = await state.get(candidate.name);
      if (active?.id === candidate.id && current.trial === null) return { outcome: 'unchanged', version: active };
      const marker: TrialMarker = {
        candidateId: candidate.id,
        candidateManifest: candidate.manifestDigest,
        previousId: active?.id ?? null,
        reason,
        startedAt: clock.now(),
        entries: 1,
        phase: 'activating',
      };
      await state.put(candidate.name, { ...current, trial: marker });
      repository.activate(candidate.id, `trial: ${reason}`);
      await state.put(candidate.name, { ...current, trial: { ...marker, phase: 'trial' } });
      events.record('deploy-started', { model: candidate.name, version: candidate.version, variant: candidate.variant, reason, entries: 1 }, clock.now());
      return this.#trial(candidate.name, { ...marker, phase: 'trial' }, signal);
    });
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

  async #trial(name: string, marker: TrialMarker, signal?: AbortSignal, alreadyLoaded = false): Promise<DeployOutcome> {
    const { repository, serving, clock, events } = this.#deps;
    const candidate = repository.versions(name).find((v) => v.id === marker.candidateId);
    if (candidate === undefined) return this.#rollBack(name, marker, `version id ${marker.candidateId} is no longer in the store`, 'rolled-back');
    const model = servedModel(candidate, this.#deps.modelPath);
    if (!alreadyLoaded || !serving.loaded().some((m) => m.name === name && m.versionId === candidate.id)) {
      try {
        await serving.load(model);
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

  /** Operator rollback (command channel, CLI): to the version before the active one. */
  async rollback(name: string, reason: string): Promise<DeployOutcome> {
    return this.exclusive(name, async () => {
      const active = this.#deps.repository.active(name);
      if (active === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `no active version of ${name} to roll back from`);
      const marker = (await this.#deps.state.get(name)).trial ?? this.#syntheticMarker(active);
      if (marker.previousId === null) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} has no earlier version to roll back to`);
      return this.#rollBack(name, marker, reason, 'rolled-back');
    });
  }

  async #rollBack(name: string, marker: TrialMarker, reason: string, outcome: 'rolled-back' | 'aborted'): Promise<DeployOutcome> {
    const { repository, state, serving, events, clock } = this.#deps;
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
    events.record('deploy-rolled-back', { model: name, from: label(from), to: to === null ? null : label(to), reason: to === null ? `${reason}; no previous version, kept serving it` : reason }, clock.now());
    return outcome === 'aborted' ? { outcome, reason } : { outcome, to, reason };
  }

  close(): void {
    this.#unsubscribe();
  }
}
