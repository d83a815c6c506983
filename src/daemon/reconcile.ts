/**
 * Desired state → the store: for each model the configuration names, pull the variant
 * that fits this device (without activating it) and hand it to the deployment manager,
 * which activates it on trial. Versions that failed their gate are not deployed again.
 * Pull writes blobs atomically and records the version only when complete, so a kill
 * during a pull leaves the active version untouched.
 */
import type { Config } from '../config/index.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import type { Host } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { artifactVersion, listVariants, onnxLayerOf, openEndpoint, pullModel, selectVariant, storePullDeps, type SelectionProfile, type VariantInfo } from './registry-port.ts';
import type { OpenedStore } from '../store/index.ts';
import type { DeployOutcome, DeploymentManager, ModelBudgets } from './deploy.ts';
import type { DeployStateStore } from './deploy-state.ts';
import type { EventLog, LocalOptimizeEventOutcome, LocalOptimizeTrigger } from './events.ts';
import type { Budgets } from '../planner/index.ts';
import type { LocalOptimizeOutcome, LocalOptimizer, OptimizeMethod } from './local-optimize.ts';
import type { Endpoint } from '../registry/index.ts';
import type { VersionRecord } from '../store/index.ts';

type ConfiguredModel = Config['daemon']['models'][number];
/** A model the daemon should serve: a configured one, or one added at run time (the embedded default, a deploy command) with the optimize defaults. */
export type DesiredModel = Omit<ConfiguredModel, 'optimize' | 'optimizeTimeLimitS'> & Partial<Pick<ConfiguredModel, 'optimize' | 'optimizeTimeLimitS'>>;

/** Defaults of daemon.models[].optimize and optimizeTimeLimitS (the schema's) for models that did not come from the configuration. */
export const OPTIMIZE_DEFAULTS = { optimize: 'when-needed', optimizeTimeLimitS: 300 } as const;

export interface ReconcileDeps {
  readonly store: OpenedStore;
  readonly host: Host;
  readonly logger: Logger;
  readonly deploy: DeploymentManager;
  readonly state: DeployStateStore;
  readonly config: () => Readonly<Config>;
  /** The device as selection sees it; may be measured lazily, so asynchronous. */
  readonly profile: () => Promise<SelectionProfile>;
  /** On-device optimization; without it, reconcile only pulls and selects. */
  readonly optimizer?: LocalOptimizer;
  /** Where `local-optimize` events go; none without it. */
  readonly events?: Pick<EventLog, 'record'>;
}

/** What an optimize call asks for beyond the model's own settings. */
export interface OptimizeCall {
  readonly budgets?: Budgets;
  readonly methods?: readonly OptimizeMethod[];
  /** Why it runs (the event says so); 'command' when absent. */
  readonly trigger?: LocalOptimizeTrigger;
}

/** What an on-device optimization of a desired model did. */
export interface OptimizeRun {
  readonly model: string;
  /** The stored variant the planner started from. */
  readonly parent: string;
  readonly outcome: LocalOptimizeOutcome;
  /** What became of the built variant (on trial now, already active, or refused as failed before); null when nothing was built. */
  readonly deploy: ReconcileResult | null;
}

export type ReconcileResult =
  | { readonly model: string; readonly action: 'up-to-date'; readonly version: string }
  | { readonly model: string; readonly action: 'skipped-failed'; readonly version: string; readonly reason: string }
  | { readonly model: string; readonly action: 'deployed'; readonly outcome: DeployOutcome };

export class Reconciler {
  readonly #deps: ReconcileDeps;
  /** Running optimizations per model, so that a newer deploy or a rollback can cancel them. */
  readonly #optimizing = new Map<string, Set<AbortController>>();

  constructor(deps: ReconcileDeps) {
    this.#deps = deps;
  }

  /** The model name an artifact carries (its title annotation, else the repository or layout name). */
  async modelNameAt(ref: string): Promise<string> {
    const endpoint = await openEndpoint(ref, this.#deps.config().registry, this.#deps.host, {}, this.#deps.logger);
    try {
      const root = await endpoint.content.resolve(endpoint.ref.reference);
      return artifactVersion(root).name ?? endpoint.defaultName;
    } finally {
      await endpoint.close();
    }
  }

  /** Pulls and deploys one desired model; `variant` overrides the choice (re-plan or an on-device variant). */
  async reconcile(desired: DesiredModel, reason: string, signal?: AbortSignal, variant?: string): Promise<ReconcileResult> {
    const { state } = this.#deps;
    const config = this.#deps.config();
    const saved = await state.get(desired.name);
    let chosenVariant = variant ?? desired.budgets.variant ?? saved.variantOverride ?? undefined;
    const endpoint = await openEndpoint(desired.ref, config.registry, this.#deps.host, {}, this.#deps.logger);
    let record: VersionRecord;
    try {
      const pinned = chosenVariant === undefined ? undefined : await this.#localVariant(desired.name, chosenVariant);
      if (pinned === 'untrusted') chosenVariant = desired.budgets.variant;
      const local = pinned === 'untrusted' ? undefined : pinned;
      const root = local === undefined ? undefined : await endpoint.content.resolve(endpoint.ref.reference);
      if (local !== undefined && root?.digest === local.parentIndex) {
        // The variant built here from this very release: it stays until the release or the budgets change.
        record = local.record;
      } else {
        if (local !== undefined) {
          // The tag moved to a new release: the variant built from the old one no longer applies.
          await state.update(desired.name, (s) => ({ ...s, variantOverride: null }));
          chosenVariant = desired.budgets.variant;
        }
        record = await this.#pull(endpoint, desired, chosenVariant, signal);
        if (desired.optimize === 'always' && this.#deps.optimizer !== undefined && hasPlannerBudget(plannerBudgets(desired.budgets, config))) {
          const run = await this.optimize(desired, reason, signal, { trigger: 'always' });
          if (run.deploy !== null) return run.deploy;
        }
      }
    } finally {
      await endpoint.close();
    }
    return this.#afterLatencyMiss(desired, await this.#deployRecord(desired.name, record, reason, signal), signal);
  }

  /**
   * A version rolled back (or rejected in shadow) because its p95 missed the latency budget:
   * the next lighter registry variant goes on trial, and when there is none (and the model's
   * `optimize` is not 'never') one is built here. Bounded: failed variants are never tried
   * again and each optimization result is cached per parent, budgets and hardware, so a
   * second miss of the built variant ends in 'skipped-failed', not in another search.
   * Resolves with what the follow-up deployed, else with `result` unchanged.
   */
  async #afterLatencyMiss(desired: DesiredModel, result: ReconcileResult, signal?: AbortSignal): Promise<ReconcileResult> {
    if (result.action !== 'deployed' || (result.outcome.outcome !== 'rolled-back' && result.outcome.outcome !== 'rejected') || !missedLatencyBudget(result.outcome.reason)) return result;
    if (desired.budgets.latencyP95Ms === undefined) return result;
    const why = `${result.outcome.outcome} for latency: ${result.outcome.reason}`;
    const lighter = await this.#replan(desired, why, signal);
    if (lighter !== null) return lighter.result;
    if (this.#deps.optimizer === undefined || (desired.optimize ?? OPTIMIZE_DEFAULTS.optimize) === 'never') return result;
    try {
      const run = await this.optimize(desired, why, signal, { trigger: 'rollback' });
      return run.deploy ?? result;
    } catch (err) {
      // The local-optimize event says why; the rollback stands as the outcome.
      if (signal?.aborted === true) throw err;
      this.#deps.logger.warn({ model: desired.name, err: toEdgevolveError(err).message }, 'on-device optimization after a latency rollback failed');
      return result;
    }
  }

  /** Drops optimize cache entries whose versions left the store (at start and after retention); a failure only costs a log line. */
  async pruneOptimizeCache(): Promise<void> {
    try {
      await this.#deps.optimizer?.pruneCache();
    } catch (err) {
      this.#deps.logger.warn({ err: toEdgevolveError(err).message }, 'cannot prune the optimize cache');
    }
  }

  /** Cancels the model's running (or queued) optimizations: a newer deploy or a rollback supersedes them. */
  cancelOptimize(name: string, why: string): void {
    for (const controller of this.#optimizing.get(name) ?? []) controller.abort(new EdgevolveError('E_PLAN_CANCELLED', `on-device optimization of ${name} cancelled: ${why}`, { context: { model: name } }));
  }

  /**
   * The pinned local variant, if the trust policy still allows deploying it; an untrusted one
   * (the policy turned strict, its provenance record gone) is unpinned so the release is pulled.
   */
  async #localVariant(name: string, variant: string): Promise<{ record: VersionRecord; parentIndex: string } | 'untrusted' | undefined> {
    const { optimizer, state, logger } = this.#deps;
    const local = await optimizer?.localVariant(name, variant);
    if (local === undefined || optimizer === undefined) return local;
    try {
      optimizer.assertTrusted(local.record);
      return local;
    } catch (err) {
      logger.warn({ model: name, variant, err: toEdgevolveError(err).message }, 'the pinned local variant is not trusted under the policy; pulling the release instead');
      await state.update(name, (s) => ({ ...s, variantOverride: null }));
      return 'untrusted';
    }
  }

  /** Pulls `variant` (or the one selection picks) of the desired artifact without activating it; resolves with its record. */
  async #pull(endpoint: Endpoint, desired: DesiredModel, variant: string | undefined, signal?: AbortSignal): Promise<VersionRecord> {
    const { store, host, logger } = this.#deps;
    const config = this.#deps.config();
    const result = await pullModel(
      await storePullDeps(store, config.registry, host, await this.#deps.profile(), logger),
      {
        source: endpoint.content,
        reference: endpoint.ref.reference,
        fallbackName: desired.name,
        activate: false,
        budgets: {
          ...(variant === undefined ? {} : { variant }),
          ...(desired.budgets.memoryMb === undefined ? {} : { maxMemoryBytes: desired.budgets.memoryMb * 1024 * 1024 }),
          ...(desired.budgets.minAccuracy === undefined ? {} : { minAccuracy: desired.budgets.minAccuracy }),
        },
        ...(signal === undefined ? {} : { signal }),
      },
    );
    if (result.name !== desired.name) {
      throw new EdgevolveError('E_CONFIG_INVALID', `daemon.models: ${desired.ref} holds model '${result.name}', but the entry names it '${desired.name}'`, {
        context: { ref: desired.ref, artifact: result.name, configured: desired.name },
      });
    }
    const record = store.repository.versions(desired.name).find((v) => v.manifestDigest === result.manifestDigest);
    if (record === undefined) throw new EdgevolveError('E_INTERNAL', `pulled ${desired.name} ${result.manifestDigest} is not in the store`);
    return record;
  }

  /** Puts `record` on trial unless it is already active or failed its gate before; then applies retention. */
  async #deployRecord(name: string, record: VersionRecord, reason: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { store, deploy, state } = this.#deps;
    const config = this.#deps.config();
    const active = store.repository.active(name);
    const label = `${record.version}/${record.variant}`;
    if (active?.id === record.id && (await state.get(name)).trial === null) return { model: name, action: 'up-to-date', version: label };
    const failed = (await state.get(name)).failed.find((f) => f.manifestDigest === record.manifestDigest);
    if (failed !== undefined) return { model: name, action: 'skipped-failed', version: label, reason: failed.reason };
    const outcome = await deploy.deploy(record, reason, signal);
    // Retention: the rollback window stays, older versions and their blobs go.
    const referenced = store.repository.prune(config.store.keepPrevious);
    await store.blobs.gc(referenced, { partialMaxAgeMs: 7 * 24 * 3600 * 1000 });
    // Results for parents or variants retention just removed can never be answered again.
    await this.pruneOptimizeCache();
    return { model: name, action: 'deployed', outcome };
  }

  /**
   * On-device optimization: pulls the artifact's fp32 variant (the planner's starting
   * point), runs the planner on it to `budgets` (the model's own when absent), and puts a
   * built variant on trial through the normal health gate, remembered as the model's
   * variant so later reconciles keep it. Nothing is deployed when no candidate meets the
   * budgets or the fp32 variant itself is the choice; the active version keeps serving.
   */
  async optimize(desired: DesiredModel, reason: string, signal?: AbortSignal, request: OptimizeCall = {}): Promise<OptimizeRun> {
    const controller = new AbortController();
    const running = this.#optimizing.get(desired.name) ?? new Set<AbortController>();
    running.add(controller);
    this.#optimizing.set(desired.name, running);
    const combined = signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]);
    const report: { parent: string | null; recorded: boolean } = { parent: null, recorded: false };
    try {
      return await this.#optimize(desired, reason, combined, request, report);
    } catch (err) {
      if (!report.recorded) {
        const error = toEdgevolveError(err);
        const cancelled = combined.aborted || error.code === 'E_PLAN_CANCELLED';
        const why = cancelled ? abortReason(combined, error) : `${error.code}: ${error.message}`;
        this.#event(desired.name, request.trigger ?? 'command', { outcome: cancelled ? 'cancelled' : 'failed', parent: report.parent, reason: why });
      }
      throw err;
    } finally {
      running.delete(controller);
      if (running.size === 0) this.#optimizing.delete(desired.name);
    }
  }

  #event(model: string, trigger: LocalOptimizeTrigger, fields: { outcome: LocalOptimizeEventOutcome; parent: string | null; reason: string; method?: string; variant?: string; metrics?: Readonly<Record<string, number>>; cached?: boolean }): void {
    this.#deps.events?.record(
      'local-optimize',
      { model, trigger, outcome: fields.outcome, parent: fields.parent, method: fields.method ?? null, variant: fields.variant ?? null, metrics: fields.metrics ?? {}, cached: fields.cached ?? false, reason: fields.reason },
      this.#deps.host.now(),
    );
  }

  async #optimize(desired: DesiredModel, reason: string, signal: AbortSignal, request: OptimizeCall, report: { parent: string | null; recorded: boolean }): Promise<OptimizeRun> {
    const { optimizer, state, host, logger } = this.#deps;
    if (optimizer === undefined) throw new EdgevolveError('E_INTERNAL', 'this daemon was built without an on-device optimizer');
    const config = this.#deps.config();
    const budgets = request.budgets ?? plannerBudgets(desired.budgets, config);
    if (!hasPlannerBudget(budgets)) {
      throw new EdgevolveError('E_PLAN_BUDGET_INVALID', `${desired.name} has no latency, memory or size budget to optimize to; set one (set-budgets, daemon.models[].budgets or the command's budgets)`, {
        context: { model: desired.name },
      });
    }
    const endpoint = await openEndpoint(desired.ref, config.registry, host, {}, logger);
    let parent: VersionRecord;
    try {
      const root = await endpoint.content.resolve(endpoint.ref.reference);
      const fp32 = listVariants(root).find((v) => precisionBits(v.precision) === 32);
      parent = await this.#pull(endpoint, desired, fp32?.name, signal);
    } finally {
      await endpoint.close();
    }
    report.parent = `${parent.version}/${parent.variant}`;
    const outcome = await optimizer.optimize(parent, { budgets, methods: request.methods ?? desired.optimizeMethods, timeLimitS: desired.optimizeTimeLimitS ?? OPTIMIZE_DEFAULTS.optimizeTimeLimitS, dataDir: desired.optimizeData }, signal);
    const run = { model: desired.name, parent: report.parent };
    const trigger = request.trigger ?? 'command';
    // A cached variant may predate a stricter policy: it deploys only if trusted now.
    if (outcome.kind === 'built') optimizer.assertTrusted(outcome.record);
    report.recorded = true;
    switch (outcome.kind) {
      case 'built':
        this.#event(desired.name, trigger, { outcome: outcome.cached ? 'cached' : 'built', parent: run.parent, method: outcome.chosen, variant: outcome.record.variant, metrics: outcome.metrics, cached: outcome.cached, reason: `${outcome.reason} (${reason})` });
        break;
      case 'parent-meets':
        this.#event(desired.name, trigger, { outcome: 'parent-meets', parent: run.parent, cached: outcome.cached, reason: `the fp32 variant meets the budgets: ${outcome.reason}` });
        break;
      case 'no-candidate':
        this.#event(desired.name, trigger, { outcome: 'no-candidate', parent: run.parent, cached: outcome.cached, reason: noCandidateError(desired.name, outcome).message });
        break;
    }
    if (outcome.kind !== 'built') return { ...run, outcome, deploy: null };
    await state.update(desired.name, (s) => ({ ...s, variantOverride: outcome.record.variant }));
    return { ...run, outcome, deploy: await this.#deployRecord(desired.name, outcome.record, `on-device optimization (${outcome.chosen}): ${reason}`, signal) };
  }

  /**
   * The budget watch's re-plan: a lighter variant from the registry when there is one,
   * else (unless the model's `optimize` is 'never') one built here by the planner.
   * Resolves with the variant now deployed, or null; throws E_PLAN_NO_FEASIBLE with the
   * planner's advice when nothing meets the budget.
   */
  async replanOrOptimize(desired: DesiredModel, reason: string, signal?: AbortSignal): Promise<string | null> {
    const lighter = await this.replan(desired, reason, signal);
    if (lighter !== null || this.#deps.optimizer === undefined || (desired.optimize ?? OPTIMIZE_DEFAULTS.optimize) === 'never') return lighter;
    const run = await this.optimize(desired, reason, signal, { trigger: 'budget-watch' });
    if (run.outcome.kind === 'no-candidate') throw noCandidateError(desired.name, run.outcome);
    return run.outcome.kind === 'built' ? run.outcome.record.variant : null;
  }

  /**
   * Re-plan for a model over its latency budget: the next lighter variant of the same
   * artifact that fits this device (lower precision first, then less memory), remembered
   * so that later reconciles keep it. Resolves with its name, or null when none is lighter.
   */
  async replan(desired: DesiredModel, reason: string, signal?: AbortSignal): Promise<string | null> {
    return (await this.#replan(desired, reason, signal))?.variant ?? null;
  }

  async #replan(desired: DesiredModel, reason: string, signal?: AbortSignal): Promise<{ variant: string; result: ReconcileResult } | null> {
    const { store, host, logger, state } = this.#deps;
    const active = store.repository.active(desired.name);
    if (active === undefined) return null;
    const endpoint = await openEndpoint(desired.ref, this.#deps.config().registry, host, {}, logger);
    let lighter: VariantInfo | undefined;
    try {
      const root = await endpoint.content.resolve(endpoint.ref.reference);
      const variants = listVariants(root);
      const current = variants.find((v) => v.name === active.variant);
      const failed = new Set((await state.get(desired.name)).failed.map((f) => f.manifestDigest));
      const weight = async (v: VariantInfo): Promise<number> => {
        const manifest = await endpoint.content.fetchManifest(v.descriptor);
        return manifest.kind === 'manifest' ? onnxLayerOf(manifest.manifest, manifest.digest).size : Number.POSITIVE_INFINITY;
      };
      const currentBits = precisionBits(current?.precision ?? 'fp32');
      const currentWeight = current === undefined ? Number.POSITIVE_INFINITY : await weight(current);
      const candidates: { v: VariantInfo; bits: number; bytes: number }[] = [];
      for (const v of variants) {
        if (v.name === active.variant || failed.has(v.descriptor.digest)) continue;
        try {
          selectVariant([v], await this.#deps.profile(), { variant: v.name });
        } catch {
          continue;
        }
        const bits = precisionBits(v.precision);
        const bytes = await weight(v);
        if (bits < currentBits || (bits === currentBits && bytes < currentWeight)) candidates.push({ v, bits, bytes });
      }
      // The closest step down, not the lightest: the least accuracy given up for the budget.
      lighter = candidates.sort((a, b) => b.bits - a.bits || b.bytes - a.bytes)[0]?.v;
    } finally {
      await endpoint.close();
    }
    if (lighter === undefined) return null;
    await state.update(desired.name, (s) => ({ ...s, variantOverride: lighter.name }));
    return { variant: lighter.name, result: await this.reconcile(desired, `re-plan: ${reason}`, signal, lighter.name) };
  }
}

/**
 * Whether a rollback or shadow rejection was for latency over the budget. The deployment
 * outcome carries its gate's reason as text only (health-gate.ts judgeTrial/judgeShadow);
 * test/unit/daemon/latency-miss.test.ts pins this against the gate's own wording.
 */
export function missedLatencyBudget(reason: string): boolean {
  return /\bp95 [\d.]+ ms exceeds the budget\b/.test(reason);
}

function abortReason(signal: AbortSignal, error: EdgevolveError): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message;
  return signal.aborted ? String(reason) : error.message;
}

/** Bits per weight by precision annotation; unknown precisions count as float32. */
export function precisionBits(precision: string): number {
  const match = /^(?:fp|float|int|uint|bf)(\d+)$/.exec(precision);
  return match === null ? 32 : Number(match[1]);
}

/**
 * The planner's budgets for a desired model: its latency and memory budgets, with the
 * accuracy guard of the planner configuration (points the result may lose against fp32).
 */
export function plannerBudgets(budgets: ModelBudgets, config: Readonly<Config>): Budgets {
  return {
    ...(budgets.latencyP95Ms === undefined ? {} : { latencyP95Ms: budgets.latencyP95Ms }),
    ...(budgets.memoryMb === undefined ? {} : { memoryMB: budgets.memoryMb }),
    maxAccuracyDrop: config.planner.maxAccuracyDrop,
  };
}

/** A budget the planner can optimize toward (the accuracy guard alone is not one). */
function hasPlannerBudget(budgets: Budgets): boolean {
  return budgets.latencyP95Ms !== undefined || budgets.memoryMB !== undefined || budgets.sizeMB !== undefined;
}

/** "Nothing meets the budgets" as an error: the planner's summary and the first few relaxations it advises. */
export function noCandidateError(name: string, outcome: { readonly summary: string; readonly advice: readonly string[] }): EdgevolveError {
  const advice = outcome.advice.length === 0 ? '' : `; to admit the closest: ${outcome.advice.slice(0, 3).join('; ')}`;
  return new EdgevolveError('E_PLAN_NO_FEASIBLE', `${name}: ${outcome.summary}${advice}`, { context: { model: name, advice: [...outcome.advice] } });
}
