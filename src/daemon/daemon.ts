/**
 * The daemon's lifecycle (STYLE 7): start in dependency order — store (opened by the
 * composition root), telemetry connecting in the background, recovery of interrupted
 * deployments, load of the active versions, first reconcile when nothing is active yet,
 * READY, the API, background trials, birth — and stop in reverse. Everything that runs
 * in the background reports failures as events; nothing it does can crash the process.
 */
import type { Config } from '../config/index.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import type { Host } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { parseDigest, type OpenedStore } from '../store/index.ts';
import { BudgetWatch } from './budget-watch.ts';
import type { DevicePressure } from './device-pressure.ts';
import { DeploymentManager, type ModelBudgets, type Recovery } from './deploy.ts';
import { DeployStateStore } from './deploy-state.ts';
import { EventLog } from './events.ts';
import { InferenceHealth } from './health.ts';
import type { Notifier } from './notify.ts';
import type { ApiServer, BatchingVerdict, CommandListener, ModelServing, ServiceHealth, TelemetryLink } from './ports.ts';
import { LocalOptimizer, type OptimizeMethod, type PlannerDevice } from './local-optimize.ts';
import { localTrustCheck } from './local-provenance.ts';
import { memoryLimitEvent, memoryLimitStatus, type MemoryLimitCheck } from './memory-limit.ts';
import { noCandidateError, Reconciler, type DesiredModel, type OptimizeRun, type ReconcileResult } from './reconcile.ts';
import type { Budgets } from '../planner/index.ts';
import type { SelectionProfile } from './registry-port.ts';
import { planReload, type ReloadPlan } from './reload.ts';
import { modelStatus, writeRuntimeStatus, type RuntimeStatus, type StatusReport } from './status.ts';
import { EventLoopLag, Watchdog } from './watchdog.ts';

export interface DaemonDeps {
  readonly config: Readonly<Config>;
  readonly store: OpenedStore;
  readonly serving: ModelServing;
  readonly host: Host;
  readonly logger: Logger;
  readonly notifier: Notifier;
  readonly profile: () => Promise<SelectionProfile>;
  /** Desired models after defaults (the embedded default adds the seeded fixture). */
  readonly desired: readonly DesiredModel[];
  readonly api?: ApiServer;
  readonly telemetry?: TelemetryLink;
  readonly control?: CommandListener;
  readonly events?: EventLog;
  /** The device as the planner sees it; without it the daemon never optimizes on the device. */
  readonly plannerDevice?: () => Promise<PlannerDevice>;
  /** service.memoryMax against the cgroup (memory-limit.ts), checked by the composition root before the store opens. */
  readonly memoryLimit?: MemoryLimitCheck;
  /** Throttling and memory readings for the budget watch (device-pressure.ts); without them it watches p95 only. */
  readonly pressure?: DevicePressure;
}

export class Daemon {
  readonly #deps: DaemonDeps;
  #config: Readonly<Config>;
  readonly events: EventLog;
  readonly deploy: DeploymentManager;
  readonly reconciler: Reconciler;
  readonly #state: DeployStateStore;
  readonly #lag = new EventLoopLag();
  readonly #health: InferenceHealth;
  readonly #watchdog: Watchdog;
  readonly #budgets: BudgetWatch;
  readonly #abort = new AbortController();
  readonly #background = new Set<Promise<unknown>>();
  readonly #startedAt: number;
  #phase: RuntimeStatus['phase'] = 'starting';
  #url: string | null = null;
  #reconcileTimer: NodeJS.Timeout | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #errors = 0;
  /** Runtime changes from fleet commands: a ref per model (persisted) and budgets (until restart). */
  readonly #refOverrides = new Map<string, string>();
  readonly #budgetOverrides = new Map<string, ModelBudgets>();

  constructor(deps: DaemonDeps) {
    this.#deps = deps;
    this.#config = deps.config;
    this.#startedAt = deps.host.now();
    this.events = deps.events ?? new EventLog(deps.logger.child({ module: 'events' }));
    this.#state = new DeployStateStore(deps.config.stateDir);
    this.deploy = new DeploymentManager({
      repository: deps.store.repository,
      modelPath: (digest) => deps.store.blobs.path(parseDigest(digest, 'model digest')),
      serving: deps.serving,
      state: this.#state,
      clock: deps.host,
      events: this.events,
      logger: deps.logger.child({ module: 'deploy' }),
      config: () => this.#config.deploy,
      budgets: (name) => this.budgets(name),
      trust: localTrustCheck(deps.store.db, () => this.#config.registry.trust.requireSignature),
    });
    this.reconciler = new Reconciler({
      store: deps.store,
      host: deps.host,
      logger: deps.logger.child({ module: 'reconcile' }),
      deploy: this.deploy,
      state: this.#state,
      config: () => this.#config,
      profile: deps.profile,
      events: this.events,
      ...(deps.plannerDevice === undefined
        ? {}
        : {
            optimizer: new LocalOptimizer({
              store: deps.store,
              clock: deps.host,
              logger: deps.logger.child({ module: 'optimize' }),
              stateDir: deps.config.stateDir,
              planner: () => this.#config.planner,
              device: deps.plannerDevice,
              requireSignature: () => this.#config.registry.trust.requireSignature,
            }),
          }),
    });
    this.#health = new InferenceHealth({
      serving: deps.serving,
      clock: deps.host,
      lag: () => this.#lag.lagMs(),
      config: () => this.#config.daemon.watchdog,
      logger: deps.logger.child({ module: 'health' }),
    });
    this.#watchdog = new Watchdog({ notifier: deps.notifier, health: () => this.health(), status: () => this.statusLine(), logger: deps.logger.child({ module: 'watchdog' }) });
    this.#budgets = new BudgetWatch({
      serving: deps.serving,
      clock: deps.host,
      events: this.events,
      logger: deps.logger.child({ module: 'budget' }),
      rules: () => this.#config.deploy.budgetWatch,
      budgetMs: (name) => this.budgets(name).latencyP95Ms,
      memoryBudgetMb: (name) => this.budgets(name).memoryMb,
      ...(deps.pressure === undefined ? {} : { pressure: deps.pressure }),
      replan: async (name, reason) => {
        const desired = this.#desired(name);
        return desired === undefined ? null : this.reconciler.replanOrOptimize(desired, reason, this.#abort.signal);
      },
    });
  }

  #desired(name: string): DesiredModel | undefined {
    return this.#desiredAll().find((m) => m.name === name);
  }

  #desiredAll(): DesiredModel[] {
    const names = new Set(this.#config.daemon.models.map((m) => m.name));
    const configured = [...this.#config.daemon.models, ...this.#deps.desired.filter((m) => !names.has(m.name))];
    const all = configured.map((m) => ({ ...m, ref: this.#refOverrides.get(m.name) ?? m.ref, budgets: this.budgets(m.name, m) }));
    for (const [name, ref] of this.#refOverrides) if (!all.some((m) => m.name === name)) all.push({ name, ref, budgets: this.budgets(name) });
    return all;
  }

  /** A model's budgets: the configuration's, with any set by a fleet command on top. */
  budgets(name: string, configured?: DesiredModel): ModelBudgets {
    const base = configured ?? this.#config.daemon.models.find((m) => m.name === name) ?? this.#deps.desired.find((m) => m.name === name);
    return { ...(base?.budgets ?? {}), ...(this.#budgetOverrides.get(name) ?? {}) };
  }

  /** Stored versions of a model, oldest first. */
  versions(name: string): ReturnType<OpenedStore['repository']['versions']> {
    return this.#deps.store.repository.versions(name);
  }

  /** The ref a model is deployed from now: a deploy command's (persisted), else the configured one. */
  desiredRef(name: string): string | undefined {
    return this.#desired(name)?.ref;
  }

  /** Activations of a model, newest first. */
  history(name: string): ReturnType<OpenedStore['repository']['history']> {
    return this.#deps.store.repository.history(name, 1000);
  }

  /** set-budgets: takes effect at once (gate, budget watch); lasts until restart. */
  setBudgets(name: string, budgets: ModelBudgets): ModelBudgets {
    this.#budgetOverrides.set(name, { ...(this.#budgetOverrides.get(name) ?? {}), ...budgets });
    return this.budgets(name);
  }

  /**
   * The optimize command: the planner on this device, to `request.budgets` (the model's own
   * budgets when absent), and the result on trial. A `local-optimize` event reports what
   * happened; a search that finds nothing within the budgets throws E_PLAN_NO_FEASIBLE with
   * the planner's advice, and the active version keeps serving.
   */
  async optimizeModel(name: string, request: { budgets?: Budgets; methods?: readonly OptimizeMethod[] } = {}, signal?: AbortSignal): Promise<OptimizeRun> {
    const desired = this.#desired(name);
    if (desired === undefined) throw new EdgevolveError('E_DAEMON_NO_MODEL', `${name} is not a model this device serves`);
    // The command's own signal ends with the daemon's too: a stop cancels the search.
    const stop = signal === undefined ? this.#abort.signal : AbortSignal.any([signal, this.#abort.signal]);
    const run = await this.reconciler.optimize(desired, 'optimize command', stop, { ...request, trigger: 'command' });
    if (run.outcome.kind === 'no-candidate') throw noCandidateError(name, run.outcome);
    return run;
  }

  /** The deploy command: the model named by the artifact at `ref` is pulled, put on trial, and kept desired (persisted). */
  async deployRef(ref: string, options: { variant?: string; budgets?: ModelBudgets; signal?: AbortSignal } = {}): Promise<ReconcileResult> {
    const name = await this.reconciler.modelNameAt(ref);
    this.reconciler.cancelOptimize(name, `superseded by the deploy command for ${ref}`);
    if (options.budgets !== undefined) this.setBudgets(name, options.budgets);
    await this.#state.update(name, (s) => ({ ...s, desiredRef: ref, variantOverride: options.variant ?? null }));
    this.#refOverrides.set(name, ref);
    const desired = this.#desired(name);
    if (desired === undefined) throw new EdgevolveError('E_INTERNAL', `model ${name} vanished from the desired state`);
    return this.reconciler.reconcile(desired, `deploy command: ${ref}`, options.signal ?? this.#abort.signal, options.variant);
  }

  get config(): Readonly<Config> {
    return this.#config;
  }

  /** Logs and counts a failure of background work; never rethrows. */
  reportError(where: string, err: unknown): void {
    const error = toEdgevolveError(err);
    if ((error.code === 'E_DAEMON_STOPPING' || error.code === 'E_PLAN_CANCELLED') && this.#abort.signal.aborted) return;
    this.#errors++;
    this.events.record('runtime-error', { where, code: error.code, message: error.message }, this.#deps.host.now());
  }

  #spawn(where: string, work: () => Promise<unknown>): void {
    const task = work()
      .catch((err: unknown) => this.reportError(where, err))
      .finally(() => {
        this.#background.delete(task);
        void this.#writeStatus();
      });
    this.#background.add(task);
  }

  async start(): Promise<void> {
    const { notifier, serving, telemetry, logger, store } = this.#deps;
    const t0 = this.#deps.host.now();
    await notifier.notify({ STATUS: 'starting: store open, recovering deployments' });
    this.#lag.start();
    const limit = this.#deps.memoryLimit;
    if (limit?.status === 'mismatch') {
      // An event, not only a log line: the fleet sees a unit whose limit is not the configured one (telemetry outbox).
      this.events.record('memory-limit-mismatch', memoryLimitEvent(limit), this.#deps.host.now());
    }

    for (const name of await this.#state.names()) {
      const ref = (await this.#state.get(name).catch(() => undefined))?.desiredRef;
      if (ref !== null && ref !== undefined) this.#refOverrides.set(name, ref);
    }
    const names = new Set([...this.#desiredAll().map((m) => m.name), ...(await this.#state.names())]);
    const recovered = new Map<string, Recovery>();
    for (const name of names) {
      try {
        recovered.set(name, await this.deploy.recover(name));
      } catch (err) {
        this.reportError(`recovery of ${name}`, err);
      }
    }
    for (const name of new Set([...names, ...store.repository.versions().map((v) => v.name)])) {
      try {
        const loaded = await this.deploy.loadActive(name);
        if (loaded !== undefined) logger.info({ model: name, version: loaded.version, variant: loaded.variant }, 'serving the active version');
      } catch (err) {
        this.reportError(`load of ${name}`, err);
      }
    }
    await this.reconciler.pruneOptimizeCache();
    this.#health.start();
    await this.#health.probeAll();
    this.#watchdog.start();

    // Nothing to serve yet (first start): the first pull and trial happen before READY.
    const missing = this.#desiredAll().filter((m) => store.repository.active(m.name) === undefined);
    if (missing.length > 0) {
      await notifier.notify({ STATUS: `starting: pulling ${missing.map((m) => m.name).join(', ')}` });
      for (const desired of missing) {
        try {
          const result = await this.reconciler.reconcile(desired, 'initial deployment', this.#abort.signal);
          logger.info({ model: desired.name, result: result.action }, 'initial deployment');
        } catch (err) {
          this.reportError(`initial deployment of ${desired.name}`, err);
        }
      }
      await this.#health.probeAll();
    }

    // The link publishes its birth on connect and has no re-birth: connecting once the models
    // are loaded makes the birth name what is served. Events before this wait in the outbox.
    telemetry?.start();
    if (this.#deps.api !== undefined) {
      const { url } = await this.#deps.api.listen();
      this.#url = url;
    }
    this.#phase = 'ready';
    this.#watchdog.markReady();
    await notifier.notify({ READY: '1', STATUS: this.statusLine() });
    this.events.record('daemon-started', { pid: process.pid, models: serving.loaded().map((m) => m.name), startMs: this.#deps.host.now() - t0 }, this.#deps.host.now());

    for (const [name, recovery] of recovered) {
      if (recovery === 'resume-trial') this.#spawn(`trial of ${name}`, () => this.deploy.resumeTrial(name, this.#abort.signal));
    }
    this.#budgets.start();
    this.#scheduleReconcile(missing.length > 0 ? this.#config.daemon.reconcileIntervalMs : 0);
    if (this.#deps.control !== undefined) {
      try {
        await this.#deps.control.start();
      } catch (err) {
        this.reportError('command channel start', err);
      }
    }
    // Deliberately not unref'd: it keeps the process alive when nothing else listens (no API, no broker).
    this.#statusTimer = setInterval(() => void this.#writeStatus(), 5_000);
    await this.#writeStatus();
  }

  #scheduleReconcile(delayMs: number): void {
    this.#reconcileTimer = setTimeout(() => {
      this.#spawn('reconcile', async () => {
        try {
          await this.reconcileAll('reconcile');
        } finally {
          if (!this.#abort.signal.aborted) this.#scheduleReconcile(this.#config.daemon.reconcileIntervalMs);
        }
      });
    }, delayMs);
    this.#reconcileTimer.unref();
  }

  /** Brings every desired model to its desired version; one model's failure does not stop the others. */
  async reconcileAll(reason: string): Promise<void> {
    for (const desired of this.#desiredAll()) {
      if (this.#abort.signal.aborted) return;
      try {
        const result = await this.reconciler.reconcile(desired, reason, this.#abort.signal);
        if (result.action !== 'up-to-date') this.#deps.logger.info(result, 'reconciled');
      } catch (err) {
        this.reportError(`reconcile of ${desired.name}`, err);
      }
    }
  }

  health(): ServiceHealth {
    return this.#health.health();
  }

  statusLine(): string {
    const served = this.#deps.serving.loaded().map((m) => `${m.name} ${m.version}/${m.variant}`);
    return `${this.#phase}; serving ${served.length === 0 ? 'nothing' : served.join(', ')}${this.#url === null ? '' : ` on ${this.#url}`}${this.#errors > 0 ? `; ${this.#errors} errors` : ''}`;
  }

  runtimeStatus(): RuntimeStatus {
    return {
      pid: process.pid,
      startedAt: this.#startedAt,
      updatedAt: this.#deps.host.now(),
      phase: this.#phase,
      url: this.#url,
      served: this.#deps.serving.loaded(),
      health: this.health(),
      probes: this.#health.probes(),
      eventCounts: this.events.counts(),
      recentEvents: this.events.recent().slice(-20),
      telemetry: this.#deps.telemetry?.health() ?? null,
      shadows: this.deploy.shadowProgress(),
      memoryLimit: this.#deps.memoryLimit === undefined ? null : memoryLimitStatus(this.#deps.memoryLimit),
      batching: this.#batching(),
    };
  }

  #batching(): Record<string, BatchingVerdict> {
    const verdicts: Record<string, BatchingVerdict> = {};
    for (const m of this.#deps.serving.loaded()) {
      const verdict = this.#deps.serving.batching?.(m.name);
      if (verdict !== undefined) verdicts[m.name] = verdict;
    }
    return verdicts;
  }

  async report(): Promise<StatusReport> {
    const names = new Set([...this.#desiredAll().map((m) => m.name), ...this.#deps.store.repository.versions().map((v) => v.name)]);
    const models = [];
    for (const name of names) models.push(modelStatus(name, this.#deps.store.repository, await this.#state.get(name)));
    return { stateDir: this.#config.stateDir, daemon: { ...this.runtimeStatus(), running: true }, models };
  }

  async #writeStatus(): Promise<void> {
    try {
      await writeRuntimeStatus(this.#config.stateDir, this.runtimeStatus());
    } catch (err) {
      // A full disk must not take the daemon down; the status file is a convenience.
      this.#deps.logger.debug({ err: (err as Error).message }, 'cannot write the status file');
    }
  }

  /** SIGHUP: applies what can change at run time and says what needs a restart. */
  reload(next: Readonly<Config>): ReloadPlan {
    const plan = planReload(this.#config, next);
    this.#config = next;
    if (plan.applied.includes('log.level')) this.#deps.logger.level = next.log.level;
    this.events.record('config-reloaded', plan, this.#deps.host.now());
    return plan;
  }

  /** Stop in reverse order: API (drains in-flight requests), background work, watchdog, telemetry (flush), serving. */
  async stop(signal = 'SIGTERM'): Promise<void> {
    if (this.#phase === 'stopping' || this.#phase === 'stopped') return;
    this.#phase = 'stopping';
    this.events.record('daemon-stopping', { signal }, this.#deps.host.now());
    await this.#deps.notifier.notify({ STOPPING: '1', STATUS: `stopping (${signal})` });
    this.#abort.abort(new Error(`stopping on ${signal}`));
    clearTimeout(this.#reconcileTimer);
    clearInterval(this.#statusTimer);
    const steps: [string, () => Promise<void> | void][] = [
      ['api', async () => this.#deps.api?.close()],
      ['command channel', async () => this.#deps.control?.stop()],
      ['background work', async () => void (await Promise.allSettled([...this.#background]))],
      ['watchdog', () => {
        this.#watchdog.stop();
        this.#health.stop();
        this.#budgets.stop();
        this.#lag.stop();
      }],
      ['telemetry', async () => this.#deps.telemetry?.stop()],
      ['serving', async () => this.#deps.serving.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.reportError(`stop ${name}`, err);
      }
    }
    this.deploy.close();
    this.#phase = 'stopped';
    await this.#writeStatus();
  }
}
