/**
 * The edgevolve model artifact: an OCI image index whose manifests are the variants of
 * one model version, each with one ONNX layer (plus optional external-data and
 * calibration layers) and a JSON config blob. A plain single manifest is one variant.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import type { ContentTarget } from './content.ts';
import { manifestBytes, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest, type ParsedManifest } from './manifest.ts';
import { ANNOTATION, MEDIA_TYPE } from './media-types.ts';
import { readModelInfo, type TensorSignature } from './model-info.ts';

const MAX_SINGLE_FILE_MODEL_BYTES = 2 ** 31 - 1;

/** The config blob of a variant (media type `application/vnd.edgevolve.model.config.v1+json`). */
export interface ModelConfig {
  readonly schemaVersion: 1;
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly precision: string;
  readonly task?: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  readonly opsets: Readonly<Record<string, number>>;
  readonly labels?: readonly string[];
  /** Metrics measured at build time: accuracy, latency_ms_p95 on the build machine... */
  readonly metrics?: Readonly<Record<string, number>>;
  readonly parameterBytes: number;
}

/** One variant to push. Unset annotations are read from the model (precision) or defaulted. */
export interface VariantSpec {
  readonly name: string;
  readonly modelPath: string;
  readonly precision?: string;
  readonly arch?: string;
  readonly sparsity?: number;
  readonly accuracy?: number;
  readonly minMemoryBytes?: number;
  readonly accelerators?: readonly string[];
}

export interface ArtifactSpec {
  readonly name: string;
  readonly version: string;
  readonly variants: readonly VariantSpec[];
  readonly task?: string;
  readonly labels?: readonly string[];
  /** Marks the release as a deliberate downgrade (honoured only when signed and allowed by policy). */
  readonly downgrade?: boolean;
  readonly created?: string;
}

export interface PushedArtifact {
  readonly indexDigest: ParsedManifest['digest'];
  readonly variants: readonly { name: string; manifestDigest: string; modelDigest: string; size: number }[];
}

/** Builds and pushes every blob and manifest of the artifact, then the index under `tag`. */
export async function pushArtifact(target: ContentTarget, spec: ArtifactSpec, tag: string): Promise<PushedArtifact> {
  if (spec.variants.length === 0) throw new EdgevolveError('E_USAGE', 'an artifact needs at least one variant');
  const names = new Set<string>();
  const entries: Descriptor[] = [];
  const pushed: { name: string; manifestDigest: string; modelDigest: string; size: number }[] = [];
  for (const variant of spec.variants) {
    if (names.has(variant.name)) throw new EdgevolveError('E_USAGE', `variant name ${variant.name} is used twice`);
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(variant.name)) throw new EdgevolveError('E_USAGE', `variant name ${JSON.stringify(variant.name)} must match [a-z0-9][a-z0-9._-]{0,63}`);
    names.add(variant.name);
    const built = await buildVariant(spec, variant);
    await target.pushBlob(built.layer, { path: variant.modelPath });
    await target.pushBlob(built.config, { bytes: built.configBytes });
    const bytes = manifestBytes(built.manifest);
    const manifestDigest = await target.pushManifest(bytes, MEDIA_TYPE.ociManifest);
    entries.push({
      mediaType: MEDIA_TYPE.ociManifest,
      digest: manifestDigest,
      size: bytes.byteLength,
      artifactType: MEDIA_TYPE.model,
      annotations: built.annotations,
      // A platform lets generic tools (skopeo copy without --all) pick a variant too.
      ...(built.arch === 'any' ? {} : { platform: { os: 'linux', architecture: built.arch } }),
    });
    pushed.push({ name: variant.name, manifestDigest, modelDigest: built.layer.digest, size: built.layer.size });
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociIndex,
    artifactType: MEDIA_TYPE.model,
    manifests: entries,
    annotations: {
      [ANNOTATION.title]: spec.name,
      [ANNOTATION.version]: spec.version,
      [ANNOTATION.created]: spec.created ?? new Date().toISOString(),
      ...(spec.downgrade === true ? { [ANNOTATION.downgrade]: 'true' } : {}),
    },
  };
  const indexDigest = await target.pushManifest(manifestBytes(index), MEDIA_TYPE.ociIndex, tag);
  return { indexDigest, variants: pushed };
}

async function buildVariant(spec: ArtifactSpec, variant: VariantSpec) {
  const size = (await stat(variant.modelPath)).size;
  if (size > MAX_SINGLE_FILE_MODEL_BYTES) {
    // protobuf caps a serialized ModelProto at 2 GiB; larger models keep weights in external data.
    throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${variant.modelPath} is ${size} bytes; a single-file ONNX model cannot exceed 2 GiB, and external-data layers are not pushed yet`, {
      context: { size, max: MAX_SINGLE_FILE_MODEL_BYTES },
    });
  }
  const bytes = await readFile(variant.modelPath);
  const info = readModelInfo(bytes);
  const precision = variant.precision ?? info.precision;
  const arch = variant.arch ?? 'any';
  const config: ModelConfig = {
    schemaVersion: 1,
    name: spec.name,
    version: spec.version,
    variant: variant.name,
    precision,
    ...(spec.task === undefined ? {} : { task: spec.task }),
    inputs: info.inputs,
    outputs: info.outputs,
    opsets: info.opsets,
    ...(spec.labels === undefined ? {} : { labels: spec.labels }),
    ...(variant.accuracy === undefined ? {} : { metrics: { accuracy: variant.accuracy } }),
    parameterBytes: info.parameterBytes,
  };
  const configBytes = Buffer.from(JSON.stringify(config), 'utf8');
  const configDescriptor: Descriptor = { mediaType: MEDIA_TYPE.modelConfig, digest: sha256Digest(configBytes), size: configBytes.byteLength };
  const layer: Descriptor = { mediaType: MEDIA_TYPE.onnxLayer, digest: sha256Digest(bytes), size, annotations: { [ANNOTATION.title]: basename(variant.modelPath) } };
  const annotations: Record<string, string> = {
    [ANNOTATION.variant]: variant.name,
    [ANNOTATION.precision]: precision,
    [ANNOTATION.arch]: arch,
    // Without a measurement, twice the file: weights in memory plus working buffers.
    [ANNOTATION.minMemoryBytes]: String(variant.minMemoryBytes ?? size * 2),
  };
  if (variant.sparsity !== undefined) annotations[ANNOTATION.sparsity] = String(variant.sparsity);
  if (variant.accuracy !== undefined) annotations[ANNOTATION.accuracy] = String(variant.accuracy);
  if (variant.accelerators !== undefined) annotations[ANNOTATION.accelerators] = variant.accelerators.join(',');
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    artifactType: MEDIA_TYPE.model,
    config: configDescriptor,
    layers: [layer],
    annotations: { [ANNOTATION.title]: spec.name, [ANNOTATION.version]: spec.version, [ANNOTATION.variant]: variant.name },
  };
  return { manifest, config: configDescriptor, configBytes, layer, annotations, arch };
}

/** A variant as listed in an index (or the single manifest), with its annotations parsed. */
export interface VariantInfo {
  readonly name: string;
  readonly descriptor: Descriptor;
  readonly precision: string;
  readonly arch: string;
  readonly sparsity: number | undefined;
  readonly accuracy: number | undefined;
  readonly minMemoryBytes: number | undefined;
  readonly accelerators: readonly string[];
}

function numberAnnotation(annotations: Readonly<Record<string, string>> | undefined, key: string): number | undefined {
  const text = annotations?.[key];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `annotation ${key}=${JSON.stringify(text)} is not a non-negative number`);
  return value;
}

export function variantFromDescriptor(descriptor: Descriptor, fallbackName: string): VariantInfo {
  const a = descriptor.annotations;
  return {
    name: a?.[ANNOTATION.variant] ?? fallbackName,
    descriptor,
    precision: a?.[ANNOTATION.precision] ?? 'fp32',
    arch: a?.[ANNOTATION.arch] ?? descriptor.platform?.architecture ?? 'any',
    sparsity: numberAnnotation(a, ANNOTATION.sparsity),
    accuracy: numberAnnotation(a, ANNOTATION.accuracy),
    minMemoryBytes: numberAnnotation(a, ANNOTATION.minMemoryBytes),
    accelerators: (a?.[ANNOTATION.accelerators] ?? '').split(',').filter((s) => s !== ''),
  };
}

/** The variants of a resolved artifact: the index's manifests, or the single manifest itself. */
export function listVariants(root: ParsedManifest): VariantInfo[] {
  if (root.kind === 'manifest') {
    const descriptor: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.bytes.byteLength, annotations: root.manifest.annotations };
    return [variantFromDescriptor(descriptor, 'default')];
  }
  // Signature and attestation manifests attached to an index are not variants.
  return root.index.manifests
    .filter((d) => d.mediaType === MEDIA_TYPE.ociManifest || d.mediaType === MEDIA_TYPE.dockerManifest)
    .map((d, i) => variantFromDescriptor(d, `variant-${i}`));
}

/** The version and downgrade flag of a resolved artifact. */
export function artifactVersion(root: ParsedManifest): { version: string | undefined; name: string | undefined; downgrade: boolean } {
  const annotations = root.kind === 'index' ? root.index.annotations : root.manifest.annotations;
  return {
    version: annotations?.[ANNOTATION.version],
    name: annotations?.[ANNOTATION.title],
    downgrade: annotations?.[ANNOTATION.downgrade] === 'true',
  };
}

/** The ONNX layer of a variant manifest: exactly one is required. */
export function onnxLayer(manifest: ImageManifest, digest: string): Descriptor {
  const layers = manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE.onnxLayer);
  if (layers.length !== 1) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `variant manifest ${digest} has ${layers.length} ONNX layers (${MEDIA_TYPE.onnxLayer}); exactly one is required`);
  }
  return layers[0] as Descriptor;
}
