/**
 * Loading a stored model version for onnxruntime with no window between verify and
 * use (P4): every byte handed over was read into memory from one descriptor and hashed
 * there, and the hashes chain from the index digest that was signed and accepted at pull
 * time: index -> variant manifest -> model, external-data and config blobs.
 *
 * External data is handed over the same way: each external-data layer is read and
 * verified into memory and given to onnxruntime as `externalData: [{ path, data }]`
 * (onnxruntime-node >= 1.17 takes in-memory external data), keyed by the exact location
 * string the model names. No location from a manifest ever becomes a file path, so
 * links (soft or hard) in the store cannot redirect a load.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { BlobStore } from '../store/blobs.ts';
import { parseDigest, type Digest } from '../store/digest.ts';
import type { ModelRepository, VersionRecord } from '../store/repository.ts';
import { calibrationLayersOf, externalDataLayersOf, onnxLayer, type ModelConfig } from './artifact.ts';
import { parseManifest, type Descriptor, type ImageManifest } from './manifest.ts';
import { MEDIA_TYPE } from './media-types.ts';
import { parseModelConfig } from './model-config.ts';

/** protobuf's cap on a serialized ModelProto; a larger .onnx file cannot be valid. */
const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;
/** Node's Buffer limit on 64-bit (buffer.constants.MAX_LENGTH in Node 20); one external-data file must fit in one. */
const MAX_EXTERNAL_FILE_BYTES = 2 ** 32 - 1;

export interface VerifiedModel {
  readonly record: VersionRecord;
  /** The .onnx file; its sha256 is `digest`, checked on these bytes. */
  readonly bytes: Uint8Array;
  readonly digest: Digest;
  readonly manifest: ImageManifest;
  readonly config: ModelConfig;
  /**
   * The external-data files in onnxruntime's shape: pass as the session option
   * `externalData`. Empty for a single-file model.
   */
  readonly externalData: readonly { readonly path: string; readonly data: Uint8Array }[];
  /** Calibration files stored with the version (not read; see `readVerifiedCalibration`). */
  readonly calibration: readonly { readonly name: string; readonly descriptor: Descriptor }[];
}

export interface ModelQuery {
  readonly name: string;
  /** Default: the active version. */
  readonly version?: string;
  /** Needed when several variants of `version` are stored. */
  readonly variant?: string;
  readonly manifestDigest?: string;
}

export interface OpenModelOptions {
  /** Refuse a version recorded as unsigned (pulled before a signing policy was turned on). */
  readonly requireSigned?: boolean;
}

export interface VerifiedStore {
  readonly blobs: BlobStore;
  readonly repository: ModelRepository;
}

/**
 * Reads a stored version into memory, verified: index, manifest and config re-hashed and
 * cross-checked against the database record, then the model and each external-data file
 * hashed on the very bytes returned. Throws E_STORE_CORRUPT when anything on disk changed,
 * E_STORE_NOT_FOUND when the version is absent, E_SIGNATURE_MISSING under `requireSigned`.
 */
export async function openVerifiedModel(store: VerifiedStore, query: ModelQuery, options: OpenModelOptions = {}): Promise<VerifiedModel> {
  const record = store.repository.find(query.name, query);
  if (options.requireSigned === true && !record.signed) {
    throw new EdgevolveError('E_SIGNATURE_MISSING', `${record.name} ${record.version} (${record.variant}) was accepted without a signature and the policy now requires one`, {
      context: { name: record.name, version: record.version },
    });
  }
  const manifest = await verifiedManifest(store.blobs, record);
  const layer = onnxLayer(manifest, record.manifestDigest);
  if (layer.digest !== record.modelDigest || manifest.config.digest !== record.configDigest) {
    throw corrupt(record, `the state database names model ${record.modelDigest} and config ${record.configDigest}, the stored manifest ${layer.digest} and ${manifest.config.digest}`);
  }
  if (manifest.config.mediaType !== MEDIA_TYPE.modelConfig) throw corrupt(record, `its config is ${manifest.config.mediaType}, not ${MEDIA_TYPE.modelConfig}`);
  const config = parseModelConfig(await store.blobs.readVerified(manifest.config.digest, { expectedSize: manifest.config.size, maxBytes: 1024 * 1024 }), manifest.config.digest);
  const bytes = await store.blobs.readVerified(layer.digest, { expectedSize: layer.size, maxBytes: MAX_MODEL_FILE_BYTES });
  const externalData: { path: string; data: Uint8Array }[] = [];
  for (const { descriptor, location } of externalDataLayersOf(manifest)) {
    externalData.push({ path: location, data: await store.blobs.readVerified(descriptor.digest, { expectedSize: descriptor.size, maxBytes: MAX_EXTERNAL_FILE_BYTES }) });
  }
  return { record, bytes, digest: layer.digest, manifest, config, externalData, calibration: calibrationLayersOf(manifest) };
}

/** The calibration files of a verified model, each read and hashed in memory, by file name. */
export async function readVerifiedCalibration(blobs: BlobStore, model: Pick<VerifiedModel, 'calibration'>, maxBytes = 1024 ** 3): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const { name, descriptor } of model.calibration) {
    files.set(name, await blobs.readVerified(descriptor.digest, { expectedSize: descriptor.size, maxBytes }));
  }
  return files;
}

/** The variant manifest, re-hashed, and checked to be the one the (signed) index names. */
async function verifiedManifest(blobs: BlobStore, record: VersionRecord): Promise<ImageManifest> {
  const indexDigest = parseDigest(record.indexDigest);
  const manifestDigest = parseDigest(record.manifestDigest);
  const root = parseManifest(await blobs.readVerified(indexDigest), { expected: indexDigest, what: `stored index ${indexDigest}` });
  if (root.kind === 'index' && !root.index.manifests.some((d) => d.digest === manifestDigest)) {
    throw corrupt(record, `the stored index ${indexDigest} does not list manifest ${manifestDigest}`);
  }
  if (root.kind === 'manifest' && indexDigest !== manifestDigest) throw corrupt(record, `the stored artifact ${indexDigest} is a single manifest, not ${manifestDigest}`);
  const parsed = root.kind === 'manifest' ? root : parseManifest(await blobs.readVerified(manifestDigest), { expected: manifestDigest, what: `stored manifest ${manifestDigest}` });
  if (parsed.kind !== 'manifest') throw corrupt(record, `${manifestDigest} is an index, not a variant manifest`);
  return parsed.manifest;
}

function corrupt(record: VersionRecord, why: string): EdgevolveError {
  return new EdgevolveError('E_STORE_CORRUPT', `${record.name} ${record.version} (${record.variant}): ${why}`, { context: { name: record.name, version: record.version } });
}
