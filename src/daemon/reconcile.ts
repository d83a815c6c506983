/**
 * Desired state → the store: for each model the configuration names, pull the variant
 * that fits this device (without activating it) and hand it to the deployment manager,
 * which activates it on trial. Versions that failed their gate are not deployed again.
 * Pull writes blobs atomically and records the version only when complete, so a kill
 * during a pull leaves the active version untouched.
 */
import type { Config } from '../config/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { Host } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { artifactVersion, listVariants, onnxLayerOf, openEndpoint, pullModel, selectVariant, storePullDeps, type SelectionProfile, type VariantInfo } from './registry-port.ts';
import type { OpenedStore } from '../store/index.ts';
import type { DeployOutcome, DeploymentManager, ModelBudgets } from './deploy.ts';
import type { DeployStateStore } from './deploy-state.ts';
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
      const local = chosenVariant === undefined ? undefined : await this.#deps.optimizer?.localVariant(desired.name, chosenVariant);
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
          const run = await this.optimize(desired, reason, signal);
          if (run.deploy !== null) return run.deploy;
        }
      }
    } finally {
      await endpoint.close();
    }
    return this.#deployRecord(desired.name, record, reason, signal);
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
    return { model: name, action: 'deployed', outcome };
  }

  /**
   * On-device optimization: pulls the artifact's fp32 variant (the planner's starting
   * point), runs the planner on it to `budgets` (the model's own when absent), and puts a
   * built variant on trial through the normal health gate, remembered as the model's
   * variant so later reconciles keep it. Nothing is deployed when no candidate meets the
   * budgets or the fp32 variant itself is the choice; the active version keeps serving.
   */
  async optimize(desired: DesiredModel, reason: string, signal?: AbortSignal, request: { budgets?: Budgets; methods?: readonly OptimizeMethod[] } = {}): Promise<OptimizeRun> {
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
    const outcome = await optimizer.optimize(parent, { budgets, methods: request.methods ?? desired.optimizeMethods, timeLimitS: desired.optimizeTimeLimitS ?? OPTIMIZE_DEFAULTS.optimizeTimeLimitS, dataDir: desired.optimizeData }, signal);
    const run = { model: desired.name, parent: `${parent.version}/${parent.variant}` };
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
    const run = await this.optimize(desired, reason, signal);
    if (run.outcome.kind === 'no-candidate') throw noCandidateError(desired.name, run.outcome);
    return run.outcome.kind === 'built' ? run.outcome.record.variant : null;
  }

  /**
   * Re-plan for a model over its latency budget: the next lighter variant of the same
   * artifact that fits this device (lower precision first, then less memory), remembered
   * so that later reconciles keep it. Resolves with its name, or null when none is lighter.
   */
  async replan(desired: DesiredModel, reason: string, signal?: AbortSignal): Promise<string | null> {
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
    await this.reconcile(desired, `re-plan: ${reason}`, signal, lighter.name);
    return lighter.name;
  }
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
