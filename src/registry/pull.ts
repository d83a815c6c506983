/**
 * Pull: resolve, check trust (signature, downgrade), choose a variant, download its
 * blobs into the store with verification and resume, then record and activate the
 * version in one transaction. Any failure before activation leaves the active model as it was.
 */
import { EdgevolveError, isEdgevolveError } from '../errors/index.ts';
import type { Clock, Random } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { ModelRepository, VersionLayer } from '../store/repository.ts';
import { parseVersion } from '../store/version.ts';
import { artifactVersion, calibrationLayersOf, externalDataLayersOf, listVariants, onnxLayer, type ModelConfig, type VariantInfo } from './artifact.ts';
import type { ContentSource } from './content.ts';
import type { Descriptor, ParsedManifest } from './manifest.ts';
import { MEDIA_TYPE } from './media-types.ts';
import { parseModelConfig } from './model-config.ts';
import { DEFAULT_RETRY, withRetry, type RetryOptions } from './retry.ts';
import { selectVariant, type SelectionBudgets, type SelectionProfile } from './select.ts';
import { checkDowngrade, checkTrust, type TrustPolicy } from './trust.ts';

export interface PullDeps {
  readonly blobs: BlobStore;
  readonly repository: ModelRepository;
  readonly policy: TrustPolicy;
  /**
   * What the device offers; a function is called once with the artifact's variants, so a
   * caller can skip costly probes (execution providers) when no variant needs an accelerator.
   */
  readonly profile: SelectionProfile | ((variants: readonly VariantInfo[]) => Promise<SelectionProfile>);
  readonly clock: Clock;
  readonly random: Random;
  readonly logger?: Logger;
  /** Attempts per blob download (each resumes where the last stopped). */
  readonly retry?: RetryOptions;
  readonly maxConfigBytes?: number;
}

export interface PullRequest {
  readonly source: ContentSource;
  readonly reference: string;
  readonly budgets?: SelectionBudgets;
  /** Model name when the artifact has no title annotation. */
  readonly fallbackName: string;
  /** Make it the active version (default true). */
  readonly activate?: boolean;
  /** Also fetch the calibration layers (default true). */
  readonly withCalibration?: boolean;
  readonly signal?: AbortSignal;
}

export interface PullResult {
  readonly name: string;
  readonly version: string;
  readonly indexDigest: string;
  readonly variant: string;
  readonly manifestDigest: string;
  readonly modelDigest: string;
  readonly modelPath: string;
  readonly modelBytes: number;
  readonly signed: boolean;
  readonly activated: boolean;
  readonly previous: string | undefined;
  readonly rejectedVariants: readonly { name: string; reason: string }[];
  /** Why the variant was chosen, and the precision order it was ranked by. */
  readonly selection: { readonly reason: string; readonly preferredPrecisions: readonly string[]; readonly basis: readonly string[] };
  /** External-data and calibration layers stored with the version. */
  readonly layers: readonly VersionLayer[];
  readonly config: ModelConfig;
}

export async function pullModel(deps: PullDeps, req: PullRequest): Promise<PullResult> {
  const root = await req.source.resolve(req.reference);
  const meta = artifactVersion(root);
  const name = meta.name ?? req.fallbackName;
  if (meta.version === undefined) {
    throw new EdgevolveError('E_STORE_VERSION_INVALID', `${req.source.name}:${req.reference} has no org.opencontainers.image.version annotation; downgrade protection needs one`);
  }
  parseVersion(meta.version);

  const trust = await checkTrust(req.source, root.digest, deps.policy);
  const last = deps.repository.lastAccepted(name);
  checkDowngrade(name, meta.version, last?.version, { signed: trust.signed, downgrade: meta.downgrade }, deps.policy);

  const variants = listVariants(root);
  const profile = typeof deps.profile === 'function' ? await deps.profile(variants) : deps.profile;
  const selection = selectVariant(variants, profile, req.budgets);
  const chosen = selection.chosen;
  const variantManifest: ParsedManifest = root.kind === 'manifest' ? root : await req.source.fetchManifest(chosen.descriptor);
  if (variantManifest.kind !== 'manifest') throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `variant ${chosen.name} (${chosen.descriptor.digest}) is an index, not a manifest`);
  const manifest = variantManifest.manifest;
  const layer = onnxLayer(manifest, variantManifest.digest);
  if (manifest.config.mediaType !== MEDIA_TYPE.modelConfig) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `variant ${chosen.name} has config type ${manifest.config.mediaType}, expected ${MEDIA_TYPE.modelConfig}`);
  }
  const configBytes = await req.source.fetchSmallBlob(manifest.config, deps.maxConfigBytes ?? 1024 * 1024);
  const config = parseModelConfig(configBytes, manifest.config.digest);

  // Titles are checked (no .., no absolute path) before any byte is fetched.
  const external = externalDataLayersOf(manifest).map((e) => ({ descriptor: e.descriptor, title: e.location }));
  const calibration = req.withCalibration === false ? [] : calibrationLayersOf(manifest).map((c) => ({ descriptor: c.descriptor, title: c.name }));
  const extras = [...external, ...calibration];

  // Space for everything this version still needs, before the first byte (each writer checks its own blob again).
  let missing = 0;
  for (const d of [layer, ...extras.map((e) => e.descriptor)]) if (!(await deps.blobs.has(d.digest))) missing += d.size;
  if (missing > 0) await deps.blobs.ensureSpace(missing);

  const log = deps.logger?.child({ model: name, version: meta.version, variant: chosen.name });
  // Said before the transfer (a large layer takes minutes), and only when there is one: a reconcile of a stored version downloads nothing.
  const layerStored = await deps.blobs.has(layer.digest);
  if (!layerStored) log?.info({ digest: layer.digest, bytes: layer.size }, 'downloading model layer');
  const started = deps.clock.now();
  const downloaded = await fetchBlobIfMissing(deps, req.source, layer, req.signal);
  if (downloaded) log?.info({ digest: layer.digest, bytes: layer.size, ms: deps.clock.now() - started }, 'model layer verified');
  else log?.info({ digest: layer.digest, bytes: layer.size }, layerStored ? 'model layer already stored' : 'model layer stored meanwhile by a concurrent pull');
  for (const extra of extras) {
    const fetched = await fetchBlobIfMissing(deps, req.source, extra.descriptor, req.signal);
    log?.info({ digest: extra.descriptor.digest, bytes: extra.descriptor.size, title: extra.title }, fetched ? 'layer verified' : 'layer already stored');
  }
  const layers: VersionLayer[] = extras.map((e) => ({ digest: e.descriptor.digest, mediaType: e.descriptor.mediaType, title: e.title }));

  // Manifests and config are kept so the version can be re-verified offline later.
  await deps.blobs.putBytes(configBytes, manifest.config.digest);
  await deps.blobs.putBytes(variantManifest.bytes, variantManifest.digest);
  await deps.blobs.putBytes(root.bytes, root.digest);

  const previous = deps.repository.active(name);
  const repo = deps.repository;
  repo.recordBlob(layer.digest, layer.size, layer.mediaType);
  for (const e of extras) repo.recordBlob(e.descriptor.digest, e.descriptor.size, e.descriptor.mediaType);
  repo.recordBlob(manifest.config.digest, manifest.config.size, manifest.config.mediaType);
  repo.recordBlob(variantManifest.digest, variantManifest.bytes.byteLength, variantManifest.mediaType);
  repo.recordBlob(root.digest, root.bytes.byteLength, root.mediaType);
  const record = repo.addVersion({
    name,
    version: meta.version,
    source: `${req.source.name}:${req.reference}`,
    indexDigest: root.digest,
    manifestDigest: variantManifest.digest,
    variant: chosen.name,
    modelDigest: layer.digest,
    configDigest: manifest.config.digest,
    signed: trust.signed,
    layers,
  });
  const activate = req.activate ?? true;
  if (activate) deps.repository.activate(record.id, 'pull');
  return {
    name,
    version: meta.version,
    indexDigest: root.digest,
    variant: chosen.name,
    manifestDigest: variantManifest.digest,
    modelDigest: layer.digest,
    modelPath: deps.blobs.path(layer.digest),
    modelBytes: layer.size,
    signed: trust.signed,
    activated: activate,
    previous: previous === undefined ? undefined : `${previous.version}/${previous.variant}`,
    rejectedVariants: selection.rejected,
    selection: { reason: selection.reason, preferredPrecisions: selection.preferredPrecisions, basis: selection.basis },
    layers,
    config,
  };
}

/**
 * Downloads a blob into the store unless present. Each attempt resumes from the bytes
 * already on disk; an interrupted body, a 5xx or a range error is retried with backoff;
 * a digest mismatch discards the bytes and is retried from zero.
 */
/** Stores the blob unless it is stored already. */
export async function downloadBlob(deps: Pick<PullDeps, 'blobs' | 'clock' | 'random' | 'retry' | 'logger'>, source: ContentSource, descriptor: Descriptor, signal?: AbortSignal): Promise<void> {
  await fetchBlobIfMissing(deps, source, descriptor, signal);
}

/** downloadBlob that says what it did: true when it downloaded the blob, false when it was stored already. */
async function fetchBlobIfMissing(deps: Pick<PullDeps, 'blobs' | 'clock' | 'random' | 'retry' | 'logger'>, source: ContentSource, descriptor: Descriptor, signal?: AbortSignal): Promise<boolean> {
  return deps.blobs.exclusive(descriptor.digest, async () => {
    // Checked inside the lock: a concurrent pull of the same blob may just have committed it.
    if (await deps.blobs.has(descriptor.digest)) return false;
    await downloadUnlocked(deps, source, descriptor, signal);
    return true;
  });
}

async function downloadUnlocked(deps: Pick<PullDeps, 'blobs' | 'clock' | 'random' | 'retry' | 'logger'>, source: ContentSource, descriptor: Descriptor, signal?: AbortSignal): Promise<void> {
  await withRetry(
    async () => {
      const writer = await deps.blobs.openWriter(descriptor.digest, descriptor.size);
      try {
        await source.fetchBlob(descriptor, writer, signal);
        if (writer.written < descriptor.size) {
          throw new EdgevolveError('E_REGISTRY_UNREACHABLE', `blob ${descriptor.digest}: the connection ended after ${writer.written} of ${descriptor.size} bytes`, {
            context: { written: writer.written, size: descriptor.size },
          });
        }
      } catch (err) {
        await writer.close();
        throw err;
      }
      await writer.commit();
    },
    {
      clock: deps.clock,
      random: deps.random,
      options: deps.retry ?? DEFAULT_RETRY,
      ...(signal === undefined ? {} : { signal }),
      onRetry: (err, attempt, delayMs) =>
        deps.logger?.warn({ digest: descriptor.digest, code: isEdgevolveError(err) ? err.code : undefined, err: (err as Error).message, attempt, delayMs }, 'blob download failed; resuming'),
    },
  );
}
