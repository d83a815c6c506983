/**
 * On-device optimization: runs the planner (src/planner `optimize`) on a stored fp32
 * variant with the artifact's calibration layers (or a configured data directory) and
 * records the chosen candidate in the store as a new local variant of the same version.
 *
 * The variant is a single OCI manifest (it is its own root, like a pulled single-manifest
 * artifact) whose config blob and annotations carry the provenance: the parent manifest
 * and index digests, the planner's method and the metrics it measured. Blobs are written
 * atomically (temp + fsync + rename) and the version is recorded in one transaction, so a
 * kill mid-way leaves at most unreferenced blobs, which retention collects.
 *
 * Bounded: each result (built, or "nothing meets the budgets") is cached per (parent
 * manifest digest, budgets, methods, hardware fingerprint) in <stateDir>/optimize/cache.json,
 * so a restart or the next reconcile does not search again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { Config } from '../config/index.ts';
import { openDataset } from '../data/index.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import { writeFileAtomic, type Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { decodeModel, type ModelProto } from '../onnx/index.ts';
import { cancelledError, isolatedBench, optimize, throwIfCancelled, type Budgets, type OptimizeDeps, type OptimizeResult } from '../planner/index.ts';
import type { ModelConfig } from '../registry/artifact.ts';
import { manifestBytes, sha256Digest, type ImageManifest } from '../registry/manifest.ts';
import { ANNOTATION, MEDIA_TYPE } from '../registry/media-types.ts';
import { readModelInfo } from '../registry/model-info.ts';
import { openVerifiedModel, readVerifiedCalibration } from '../registry/verified-model.ts';
import type { OpenedStore, VersionRecord } from '../store/index.ts';
import { assertLocalVariantTrusted, isLocalVariant, LocalProvenanceTable, LOCAL_SOURCE_PREFIX, type LocalProvenance } from './local-provenance.ts';

/** The planner methods a request may restrict the search to (the `optimize` command's `methods`). */
export type OptimizeMethod = 'int8-dynamic' | 'int8-static' | 'fp16' | 'mixed' | 'prune' | 'prune-channels';

/** What the device is, for the planner and the cache key. */
export interface PlannerDevice {
  /** Hardware fingerprint (CPU, memory, board, onnxruntime version): a result is reused only on the same. */
  readonly fingerprint: string;
  readonly measured: OptimizeDeps['measured'];
  readonly cpu?: OptimizeDeps['cpu'];
}

export interface OptimizeRequest {
  readonly budgets: Budgets;
  /** Restrict the search to these methods; all of them when absent. */
  readonly methods?: readonly OptimizeMethod[] | undefined;
  readonly timeLimitS: number;
  /** A data set directory (one .npy per input + labels.npy) used when the version carries no calibration layers. */
  readonly dataDir?: string | undefined;
}

/** Annotation keys of the provenance a local variant carries. */
export const PROVENANCE = {
  parentManifest: 'dev.edgevolve.optimized-from',
  parentIndex: 'dev.edgevolve.optimized-from-index',
  method: 'dev.edgevolve.optimize-method',
  fingerprint: 'dev.edgevolve.optimize-hardware',
} as const;

export type LocalOptimizeOutcome =
  | {
      readonly kind: 'built';
      readonly record: VersionRecord;
      /** The planner's candidate id (`int8-dynamic`, `mixed:...`) and why it won. */
      readonly chosen: string;
      readonly reason: string;
      readonly metrics: Readonly<Record<string, number>>;
      readonly cached: boolean;
    }
  /** The fp32 parent itself is the planner's choice: nothing lighter is better, the parent meets the budgets. */
  | { readonly kind: 'parent-meets'; readonly parent: VersionRecord; readonly reason: string; readonly cached: boolean }
  /** No candidate meets the budgets: the planner's summary and what to relax. */
  | { readonly kind: 'no-candidate'; readonly summary: string; readonly advice: readonly string[]; readonly cached: boolean };

const cacheEntrySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('built'), parentManifest: z.string(), parentIndex: z.string(), manifestDigest: z.string(), variant: z.string(), chosen: z.string(), reason: z.string(), metrics: z.record(z.string(), z.number()), at: z.number() }),
  z.object({ kind: z.literal('parent-meets'), parentManifest: z.string(), parentIndex: z.string(), reason: z.string(), at: z.number() }),
  z.object({ kind: z.literal('no-candidate'), parentManifest: z.string(), parentIndex: z.string(), summary: z.string(), advice: z.array(z.string()), at: z.number() }),
]);
const cacheFileSchema = z.object({ v: z.literal(1), entries: z.record(z.string(), cacheEntrySchema) });
type CacheEntry = z.infer<typeof cacheEntrySchema>;

export interface LocalOptimizerDeps {
  readonly store: OpenedStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly stateDir: string;
  readonly planner: () => Readonly<Config['planner']>;
  readonly device: () => Promise<PlannerDevice>;
  /** The cache keeps at most this many entries, the newest (MAX_CACHE_ENTRIES when absent). */
  readonly maxCacheEntries?: number;
  /** registry.trust.requireSignature, read on every use: the trust rule for local variants (local-provenance.ts). */
  readonly requireSignature?: () => boolean;
}

/**
 * Entries kept in the optimize cache: one per (parent release, budgets, methods, hardware)
 * asked for, so a device sees a handful; the cap only bounds a fleet that keeps changing
 * budgets. An entry dropped by the cap costs one search when asked again.
 */
export const MAX_CACHE_ENTRIES = 256;

export class LocalOptimizer {
  readonly #deps: LocalOptimizerDeps;
  /** INVARIANTS: one search at a time per process (each takes the CPU); later requests wait. */
  #queue: Promise<unknown> = Promise.resolve();
  #provenanceTable: LocalProvenanceTable | undefined;

  constructor(deps: LocalOptimizerDeps) {
    this.#deps = deps;
  }

  get #provenance(): LocalProvenanceTable {
    this.#provenanceTable ??= new LocalProvenanceTable(this.#deps.store.db);
    return this.#provenanceTable;
  }

  #requireSignature(): boolean {
    return this.#deps.requireSignature?.() ?? false;
  }

  /** The stored provenance of a local variant (undefined for pulled versions, or a row that is missing). */
  provenance(record: Pick<VersionRecord, 'name' | 'manifestDigest'>): LocalProvenance | undefined {
    return this.#provenance.get(record.name, record.manifestDigest);
  }

  /** Throws E_LOCAL_VARIANT_UNTRUSTED when the trust policy does not allow deploying `record` (a local variant). */
  assertTrusted(record: VersionRecord): void {
    assertLocalVariantTrusted(record, isLocalVariant(record) ? this.provenance(record) : undefined, this.#requireSignature());
  }

  get #dir(): string {
    return join(this.#deps.stateDir, 'optimize');
  }

  /** The cache key of a request: parent, budgets, methods and hardware, hashed. */
  static key(parentManifest: string, request: OptimizeRequest, fingerprint: string): string {
    const methods = [...(request.methods ?? [])].sort();
    const budgets = Object.fromEntries(Object.entries(request.budgets).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)));
    return createHash('sha256').update(JSON.stringify({ parentManifest, budgets, methods, fingerprint })).digest('hex');
  }

  /** The stored local variant `variant` of `name` and the index digest of the artifact it was built from, if any. */
  async localVariant(name: string, variant: string): Promise<{ record: VersionRecord; parentIndex: string } | undefined> {
    const entries = await this.#readCache();
    for (const entry of Object.values(entries)) {
      if (entry.kind !== 'built' || entry.variant !== variant) continue;
      const record = this.#deps.store.repository.versions(name).find((v) => v.manifestDigest === entry.manifestDigest);
      if (record !== undefined) return { record, parentIndex: entry.parentIndex };
    }
    return undefined;
  }

  /**
   * Optimizes `parent` for `request`, or answers from the cache. Throws an EdgevolveError
   * when the search cannot run (no data, a model the planner cannot read); a search that
   * finds nothing within the budgets is an outcome, not an error.
   */
  async optimize(parent: VersionRecord, request: OptimizeRequest, signal?: AbortSignal): Promise<LocalOptimizeOutcome> {
    const previous = this.#queue;
    // A request cancelled while it waits for the search before it leaves at once, not when that search ends.
    const run = untilSettledOrCancelled(previous, signal).then(() => this.#optimize(parent, request, signal));
    // The next request waits for both: a cancelled waiter must not let it start beside the running search.
    this.#queue = Promise.allSettled([previous, run]);
    return run;
  }

  /**
   * Drops cache entries whose parent, or built variant, is no longer in the store (retention
   * removed them: they can never be answered again), then caps the rest, newest kept.
   * Resolves with the number dropped. Runs in the search queue, so it never races a write.
   */
  pruneCache(): Promise<number> {
    const previous = this.#queue;
    const run = previous.then(() => this.#pruneCache());
    this.#queue = Promise.allSettled([previous, run]);
    return run;
  }

  async #pruneCache(): Promise<number> {
    this.#provenance.pruneOrphans();
    const entries = await this.#readCache();
    const stored = new Set(this.#deps.store.repository.versions().map((v) => v.manifestDigest));
    const live = Object.entries(entries).filter(([, e]) => stored.has(e.parentManifest) && (e.kind !== 'built' || stored.has(e.manifestDigest)));
    const kept = capEntries(live, this.#deps.maxCacheEntries ?? MAX_CACHE_ENTRIES);
    const dropped = Object.keys(entries).length - kept.length;
    if (dropped > 0) {
      await this.#writeEntries(Object.fromEntries(kept));
      this.#deps.logger.info({ dropped, kept: kept.length }, 'optimize cache pruned');
    }
    return dropped;
  }

  async #optimize(parent: VersionRecord, request: OptimizeRequest, signal?: AbortSignal): Promise<LocalOptimizeOutcome> {
    if (this.#requireSignature() && !parent.signed) {
      // A variant inherits its parent's trust: nothing is built from bytes the policy would not serve.
      throw new EdgevolveError('E_SIGNATURE_MISSING', `${parent.name} ${parent.version}/${parent.variant} was accepted without a signature; registry.trust.requireSignature allows building local variants only from a signed parent`, {
        context: { name: parent.name, version: parent.version },
      });
    }
    const device = await this.#deps.device();
    const key = LocalOptimizer.key(parent.manifestDigest, request, device.fingerprint);
    const cached = (await this.#readCache())[key];
    if (cached !== undefined) {
      const outcome = this.#fromEntry(parent, cached);
      if (outcome !== undefined) return outcome;
    }
    throwIfCancelled(signal);
    const log = this.#deps.logger.child({ model: parent.name, parent: `${parent.version}/${parent.variant}` });
    const verified = await openVerifiedModel(this.#deps.store, { name: parent.name, manifestDigest: parent.manifestDigest });
    const model = inlineExternalData(decodeModel(verified.bytes), verified.externalData);
    const work = await this.#workDir();
    try {
      const dataDir = await this.#dataDir(work, verified, request);
      const dataset = await openDataset(dataDir);
      let result: OptimizeResult;
      log.info({ budgets: request.budgets, methods: request.methods ?? 'all', timeLimitS: request.timeLimitS }, 'on-device optimization started');
      try {
        // The planner sees the signal between candidates, batches and rounds and kills its benchmark child: a stop
        // waits only for the step under way, and the data set is closed once the search has really ended.
        result = await this.#search(model, dataset, request, device, (line) => log.debug({ progress: line }, 'optimize'), signal);
      } finally {
        await dataset.close();
      }
      throwIfCancelled(signal);
      const entry = await this.#record(parent, verified.manifest, verified.config, result, device.fingerprint, request);
      await this.#writeCache(key, entry);
      log.info({ kind: entry.kind, chosen: result.chosen?.id ?? null, wallMs: Math.round(result.wallMs) }, 'on-device optimization finished');
      const outcome = this.#fromEntry(parent, entry);
      if (outcome === undefined) throw new EdgevolveError('E_INTERNAL', `the optimized variant of ${parent.name} is not in the store after recording it`);
      return { ...outcome, cached: false };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  #fromEntry(parent: VersionRecord, entry: CacheEntry): LocalOptimizeOutcome | undefined {
    switch (entry.kind) {
      case 'built': {
        // Retention may have removed the variant since; then it is built again.
        const record = this.#deps.store.repository.versions(parent.name).find((v) => v.manifestDigest === entry.manifestDigest);
        return record === undefined ? undefined : { kind: 'built', record, chosen: entry.chosen, reason: entry.reason, metrics: entry.metrics, cached: true };
      }
      case 'parent-meets':
        return { kind: 'parent-meets', parent, reason: entry.reason, cached: true };
      case 'no-candidate':
        return { kind: 'no-candidate', summary: entry.summary, advice: entry.advice, cached: true };
    }
  }

  async #search(model: ModelProto, dataset: Awaited<ReturnType<typeof openDataset>>, request: OptimizeRequest, device: PlannerDevice, progress: (line: string) => void, signal: AbortSignal | undefined): Promise<OptimizeResult> {
    const p = this.#deps.planner();
    const methods = request.methods;
    return optimize(
      model,
      dataset,
      {
        budgets: request.budgets,
        objective: p.objective,
        timeLimitS: request.timeLimitS,
        threads: p.threads,
        batch: p.batch,
        subsetSamples: p.subsetSamples,
        sensitivitySamples: p.sensitivitySamples,
        calibrationSamples: p.calibrationSamples,
        evalSamples: undefined,
        quickMs: 400,
        maxFullCandidates: p.maxFullCandidates,
        mixed: methods === undefined || methods.includes('mixed'),
        only: methods === undefined ? undefined : candidateIds(methods),
        maxSensitivityLayers: 64,
      },
      { bench: isolatedBench(p.threads, p.benchMs), now: () => performance.now(), progress, measured: device.measured, ...(device.cpu === undefined ? {} : { cpu: device.cpu }), ...(signal === undefined ? {} : { signal }) },
    );
  }

  /** The planner's data: the version's calibration layers (verified, copied by file name), else the configured directory. */
  async #dataDir(work: string, verified: Awaited<ReturnType<typeof openVerifiedModel>>, request: OptimizeRequest): Promise<string> {
    if (verified.calibration.length > 0) {
      const files = await readVerifiedCalibration(this.#deps.store.blobs, verified);
      const dir = join(work, 'data');
      await mkdir(dir, { recursive: true });
      // Names were checked at pull (layer-names.ts: plain .npy file names, no separators).
      for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
      return dir;
    }
    if (request.dataDir !== undefined) return request.dataDir;
    throw new EdgevolveError(
      'E_DATA_SET_INVALID',
      `${verified.record.name} ${verified.record.version} carries no calibration layers and daemon.models[].optimizeData is not set: the planner has no data to measure accuracy on`,
      { context: { model: verified.record.name } },
    );
  }

  async #workDir(): Promise<string> {
    await mkdir(this.#dir, { recursive: true });
    // A kill during a search leaves its work directory; nothing else uses them.
    for (const name of await readdir(this.#dir)) if (name.startsWith('work-')) await rm(join(this.#dir, name), { recursive: true, force: true });
    const dir = join(this.#dir, `work-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    return dir;
  }

  /** Writes the chosen model into the store as a local variant (when there is one) and returns the cache entry. */
  async #record(parent: VersionRecord, parentManifest: ImageManifest, parentConfig: ModelConfig, result: OptimizeResult, fingerprint: string, request: OptimizeRequest): Promise<CacheEntry> {
    const at = this.#deps.clock.now();
    const base = { parentManifest: parent.manifestDigest, parentIndex: parent.indexDigest, at };
    if (result.chosen === null || result.chosenBytes === null) {
      const advice = (result.failure?.closest ?? []).flatMap((c) => c.relax.map((r) => `${c.id}: ${r}`));
      return { kind: 'no-candidate', ...base, summary: result.failure?.summary ?? 'no candidate meets the budgets', advice };
    }
    if (result.chosen.id === 'fp32') return { kind: 'parent-meets', ...base, reason: result.chosen.reason };
    const chosen = result.candidates.find((c) => c.id === result.chosen?.id);
    const metrics: Record<string, number> = {};
    if (chosen?.accuracy != null) metrics.accuracy_drop = chosen.accuracy.drop;
    if (chosen?.bench != null) {
      metrics.latency_ms_p95 = chosen.bench.p95Ms;
      metrics.latency_ms_p50 = chosen.bench.p50Ms;
      metrics.peak_bytes = chosen.bench.peakBytes;
    }
    metrics.baseline_latency_ms_p95 = result.baseline.p95Ms;
    if (chosen?.sizeBytes != null) metrics.size_bytes = chosen.sizeBytes;

    const bytes = result.chosenBytes;
    const info = readModelInfo(bytes);
    const variant = localVariantName(result.chosen.id, parent.manifestDigest, fingerprint);
    const { blobs, repository } = this.#deps.store;
    const config: ModelConfig = { ...parentConfig, variant, precision: info.precision, inputs: info.inputs, outputs: info.outputs, opsets: info.opsets, parameterBytes: info.parameterBytes, metrics };
    const configBytes = Buffer.from(JSON.stringify(config), 'utf8');
    const layerDigest = sha256Digest(bytes);
    const parentTitle = parentManifest.annotations?.[ANNOTATION.title] ?? parent.name;
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      artifactType: MEDIA_TYPE.model,
      config: { mediaType: MEDIA_TYPE.modelConfig, digest: sha256Digest(configBytes), size: configBytes.byteLength },
      layers: [{ mediaType: MEDIA_TYPE.onnxLayer, digest: layerDigest, size: bytes.byteLength, annotations: { [ANNOTATION.title]: `${variant}.onnx` } }],
      annotations: {
        [ANNOTATION.title]: parentTitle,
        [ANNOTATION.version]: parent.version,
        [ANNOTATION.variant]: variant,
        [ANNOTATION.precision]: info.precision,
        [ANNOTATION.created]: new Date(at).toISOString(),
        [PROVENANCE.parentManifest]: parent.manifestDigest,
        [PROVENANCE.parentIndex]: parent.indexDigest,
        [PROVENANCE.method]: result.chosen.id,
        [PROVENANCE.fingerprint]: fingerprint,
      },
    };
    const mBytes = manifestBytes(manifest);
    const manifestDigest = sha256Digest(mBytes);
    await blobs.ensureSpace(bytes.byteLength + configBytes.byteLength + mBytes.byteLength);
    await blobs.putBytes(bytes, layerDigest);
    await blobs.putBytes(configBytes, manifest.config.digest);
    await blobs.putBytes(mBytes, manifestDigest);
    const chosenId = result.chosen.id;
    // The version and its provenance row in one transaction: a local variant never exists without the record of its origin.
    this.#deps.store.db.transaction(() => {
      repository.recordBlob(layerDigest, bytes.byteLength, MEDIA_TYPE.onnxLayer);
      repository.recordBlob(manifest.config.digest, configBytes.byteLength, MEDIA_TYPE.modelConfig);
      repository.recordBlob(manifestDigest, mBytes.byteLength, MEDIA_TYPE.ociManifest);
      repository.addVersion({
        name: parent.name,
        version: parent.version,
        source: `${LOCAL_SOURCE_PREFIX}${parent.manifestDigest}`,
        indexDigest: manifestDigest,
        manifestDigest,
        variant,
        modelDigest: layerDigest,
        configDigest: manifest.config.digest,
        // Built here, from a verified parent; no fleet key signed these bytes (the provenance row is what it is trusted by).
        signed: false,
      });
      this.#provenance.insert({
        name: parent.name,
        manifestDigest,
        modelDigest: layerDigest,
        parentManifest: parent.manifestDigest,
        parentIndex: parent.indexDigest,
        parentSigned: parent.signed,
        method: chosenId,
        options: JSON.stringify({ budgets: request.budgets, methods: request.methods ?? null, timeLimitS: request.timeLimitS, fingerprint }),
        builtAt: at,
      });
    })();
    return { kind: 'built', ...base, manifestDigest, variant, chosen: result.chosen.id, reason: result.chosen.reason, metrics };
  }

  async #readCache(): Promise<Record<string, CacheEntry>> {
    let text: string;
    try {
      text = await readFile(join(this.#dir, 'cache.json'), 'utf8');
    } catch {
      return {};
    }
    try {
      return cacheFileSchema.parse(JSON.parse(text)).entries;
    } catch (err) {
      // A damaged cache only costs a new search; it must not stop the daemon.
      this.#deps.logger.warn({ err: toEdgevolveError(err).message }, 'optimize cache unreadable; starting a new one');
      return {};
    }
  }

  async #writeCache(key: string, entry: CacheEntry): Promise<void> {
    const entries = Object.entries({ ...(await this.#readCache()), [key]: entry });
    await this.#writeEntries(Object.fromEntries(capEntries(entries, this.#deps.maxCacheEntries ?? MAX_CACHE_ENTRIES)));
  }

  async #writeEntries(entries: Record<string, CacheEntry>): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await writeFileAtomic(join(this.#dir, 'cache.json'), `${JSON.stringify({ v: 1, entries }, null, 2)}\n`);
  }
}

/** Resolves when `work` settles; rejects with E_PLAN_CANCELLED as soon as `signal` is aborted. */
function untilSettledOrCancelled(work: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  const settled = work.then(
    () => undefined,
    () => undefined,
  );
  if (signal === undefined) return settled;
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(signal));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** The newest `max` entries (by when they were recorded). */
function capEntries(entries: [string, CacheEntry][], max: number): [string, CacheEntry][] {
  return entries.length <= max ? entries : [...entries].sort(([, a], [, b]) => b.at - a.at).slice(0, max);
}

/** Planner candidate ids (`only`) for the methods a request names. */
export function candidateIds(methods: readonly OptimizeMethod[]): string[] {
  const ids: string[] = [];
  for (const m of methods) {
    if (m === 'int8-dynamic') ids.push('int8-dynamic', 'int8-dynamic:pc');
    else if (m === 'int8-static') ids.push('int8-static:minmax:pc', 'int8-static:minmax:pt', 'int8-static:percentile:pc', 'int8-static:entropy:pc');
    else if (m === 'fp16') ids.push('fp16');
    else if (m === 'prune' || m === 'prune-channels') ids.push('prune0.1', 'prune0.2', 'prune0.3', 'prune0.5', 'prune0.2+int8-dynamic', 'prune0.2+int8-static');
  }
  return ids;
}

/** `opt-<method>-<8 hex>`: readable, unique per parent and hardware, and within the variant-name grammar. */
function localVariantName(method: string, parentManifest: string, fingerprint: string): string {
  const slug = method.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  const tag = createHash('sha256').update(`${parentManifest}|${fingerprint}|${method}`).digest('hex').slice(0, 8);
  return `opt-${slug}-${tag}`;
}

/**
 * Initializers stored as external data get their bytes back from the verified in-memory
 * layers, so the planner (which works on one ModelProto) sees the whole model.
 */
function inlineExternalData(model: ModelProto, externalData: readonly { readonly path: string; readonly data: Uint8Array }[]): ModelProto {
  if (externalData.length === 0) return model;
  const files = new Map(externalData.map((e) => [e.path, e.data]));
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== 1) continue;
    const entries = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const location = entries.get('location') ?? '';
    const file = files.get(location);
    if (file === undefined) throw new EdgevolveError('E_ONNX_EXTERNAL_DATA', `initializer ${t.name ?? '?'} names external data '${location}', which the version does not carry`);
    const offset = Number(entries.get('offset') ?? 0);
    const length = entries.has('length') ? Number(entries.get('length')) : file.byteLength - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > file.byteLength) {
      throw new EdgevolveError('E_ONNX_EXTERNAL_DATA', `initializer ${t.name ?? '?'}: offset ${offset} + length ${length} is outside '${location}' (${file.byteLength} bytes)`);
    }
    t.rawData = file.subarray(offset, offset + length);
    t.externalData = [];
    t.dataLocation = 0;
  }
  return model;
}
