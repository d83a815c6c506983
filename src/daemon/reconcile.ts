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
import { artifactVersion, listVariants, loadTrustPolicy, onnxLayerOf, openEndpoint, pullModel, selectVariant, type SelectionProfile, type VariantInfo } from './registry-port.ts';
import type { OpenedStore } from '../store/index.ts';
import type { DeployOutcome, DeploymentManager } from './deploy.ts';
import type { DeployStateStore } from './deploy-state.ts';

export type DesiredModel = Config['daemon']['models'][number];

export interface ReconcileDeps {
  readonly store: OpenedStore;
  readonly host: Host;
  readonly logger: Logger;
  readonly deploy: DeploymentManager;
  readonly state: DeployStateStore;
  readonly config: () => Readonly<Config>;
  /** The device as selection sees it; may be measured lazily, so asynchronous. */
  readonly profile: () => Promise<SelectionProfile>;
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

  /** Pulls and deploys one desired model; `variant` overrides the choice (re-plan). */
  async reconcile(desired: DesiredModel, reason: string, signal?: AbortSignal, variant?: string): Promise<ReconcileResult> {
    const { store, host, logger, deploy, state } = this.#deps;
    const config = this.#deps.config();
    const saved = await state.get(desired.name);
    const chosenVariant = variant ?? desired.budgets.variant ?? saved.variantOverride ?? undefined;
    const endpoint = await openEndpoint(desired.ref, config.registry, host, {}, logger);
    try {
      const result = await pullModel(
        {
          blobs: store.blobs,
          repository: store.repository,
          policy: await loadTrustPolicy(config.registry.trust),
          profile: await this.#deps.profile(),
          clock: host,
          random: host,
          logger,
          retry: { attempts: config.registry.retryAttempts, baseDelayMs: 250, maxDelayMs: 15_000 },
        },
        {
          source: endpoint.content,
          reference: endpoint.ref.reference,
          fallbackName: desired.name,
          activate: false,
          budgets: {
            ...(chosenVariant === undefined ? {} : { variant: chosenVariant }),
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
      const active = store.repository.active(desired.name);
      const label = `${record.version}/${record.variant}`;
      if (active?.id === record.id && (await state.get(desired.name)).trial === null) return { model: desired.name, action: 'up-to-date', version: label };
      const failed = (await state.get(desired.name)).failed.find((f) => f.manifestDigest === record.manifestDigest);
      if (failed !== undefined) return { model: desired.name, action: 'skipped-failed', version: label, reason: failed.reason };
      const outcome = await deploy.deploy(record, reason, signal);
      // Retention: the rollback window stays, older versions and their blobs go.
      const referenced = store.repository.prune(config.store.keepPrevious);
      await store.blobs.gc(referenced, { partialMaxAgeMs: 7 * 24 * 3600 * 1000 });
      return { model: desired.name, action: 'deployed', outcome };
    } finally {
      await endpoint.close();
    }
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
