/**
 * The edgevolve model artifact: an OCI image index whose manifests are the variants of
 * one model version, each with one ONNX layer (plus optional external-data and
 * calibration layers) and a JSON config blob. A plain single manifest is one variant.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseNpyHeader } from '../data/npy.ts';
import { EdgevolveError } from '../errors/index.ts';
import { resolveExternalData } from '../onnx/external.ts';
import type { ContentTarget } from './content.ts';
import { manifestBytes, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest, type ParsedManifest } from './manifest.ts';
import { ANNOTATION, MEDIA_TYPE } from './media-types.ts';
import { checkCalibrationFileName, checkExternalDataLocation, layerTitles } from './layer-names.ts';
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
  /** CPU features the build needs (dev.edgevolve.cpu-features). */
  readonly cpuFeatures?: readonly string[];
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
  /** A directory of .npy files (one per model input, plus labels.npy) attached to every variant as calibration layers. */
  readonly calibrationDir?: string;
}

export interface PushedArtifact {
  readonly indexDigest: ParsedManifest['digest'];
  readonly variants: readonly PushedVariant[];
}

export interface PushedVariant {
  readonly name: string;
  readonly manifestDigest: string;
  readonly modelDigest: string;
  readonly size: number;
  /** External-data and calibration layers: title, digest, size. */
  readonly layers: readonly { title: string; digest: string; size: number }[];
}

/** Builds and pushes every blob and manifest of the artifact, then the index under `tag`. */
export async function pushArtifact(target: ContentTarget, spec: ArtifactSpec, tag: string): Promise<PushedArtifact> {
  if (spec.variants.length === 0) throw new EdgevolveError('E_USAGE', 'an artifact needs at least one variant');
  const names = new Set<string>();
  const entries: Descriptor[] = [];
  const calibration = spec.calibrationDir === undefined ? [] : await readCalibrationDir(spec.calibrationDir);
  const pushed: PushedVariant[] = [];
  for (const variant of spec.variants) {
    if (names.has(variant.name)) throw new EdgevolveError('E_USAGE', `variant name ${variant.name} is used twice`);
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(variant.name)) throw new EdgevolveError('E_USAGE', `variant name ${JSON.stringify(variant.name)} must match [a-z0-9][a-z0-9._-]{0,63}`);
    names.add(variant.name);
    const built = await buildVariant(spec, variant, calibration);
    await target.pushBlob(built.layer, { path: variant.modelPath });
    for (const file of [...built.external, ...calibration]) await target.pushBlob(file.descriptor, { path: file.path });
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
    const layers = [...built.external, ...calibration].map((l) => ({ title: l.descriptor.annotations?.[ANNOTATION.title] ?? '', digest: l.descriptor.digest, size: l.descriptor.size }));
    pushed.push({ name: variant.name, manifestDigest, modelDigest: built.layer.digest, size: built.layer.size, layers });
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

/** A file pushed as a layer beside the model: its descriptor and where its bytes are. */
interface FileLayer {
  readonly descriptor: Descriptor;
  readonly path: string;
}

async function fileLayer(path: string, mediaType: string, title: string, check?: (bytes: Buffer) => void): Promise<FileLayer> {
  const bytes = await readFile(path);
  check?.(bytes);
  return { path, descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.byteLength, annotations: { [ANNOTATION.title]: title } } };
}

/**
 * The model's external-data files as layers, titled with the exact `location` the model
 * names (onnxruntime matches in-memory external data by that string). Each location is
 * checked like onnx's loader does (relative, inside the model directory after symlinks,
 * a regular file) and held to the portable grammar of layer-names.ts.
 */
async function externalDataLayers(modelPath: string, locations: readonly string[]): Promise<FileLayer[]> {
  const layers: FileLayer[] = [];
  for (const location of locations) {
    checkExternalDataLocation(location, `${modelPath}: external-data location`);
    const where = resolveExternalData({ name: location, externalData: [{ key: 'location', value: location }] }, dirname(modelPath));
    layers.push(await fileLayer(where.path, MEDIA_TYPE.onnxExternalData, location));
  }
  return layers;
}

/**
 * The calibration set as layers, one per .npy file. Only regular files with portable
 * names that parse as NPY are accepted; anything else in the directory (a link, a
 * subdirectory, another file) is refused by name rather than skipped silently.
 */
export async function readCalibrationDir(dir: string): Promise<FileLayer[]> {
  const names = (await readdir(dir).catch((err: unknown) => {
    throw new EdgevolveError('E_USAGE', `calibration directory ${dir} cannot be read: ${(err as Error).message}`, { cause: err });
  })).sort();
  const layers: FileLayer[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const info = await lstat(path);
    if (!info.isFile()) throw new EdgevolveError('E_STORE_PATH_ESCAPE', `calibration entry ${path} is not a regular file (a link or directory); refused`);
    checkCalibrationFileName(name, `calibration entry ${path}:`);
    layers.push(await fileLayer(path, MEDIA_TYPE.calibrationFile, name, (bytes) => parseNpyHeader(bytes)));
  }
  if (layers.length === 0) throw new EdgevolveError('E_USAGE', `calibration directory ${dir} holds no .npy files`);
  return layers;
}

async function buildVariant(spec: ArtifactSpec, variant: VariantSpec, calibration: readonly FileLayer[]) {
  const size = (await stat(variant.modelPath)).size;
  if (size > MAX_SINGLE_FILE_MODEL_BYTES) {
    // protobuf caps a serialized ModelProto at 2 GiB; larger models keep weights in external data.
    throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${variant.modelPath} is ${size} bytes; an ONNX file cannot exceed 2 GiB (protobuf); keep the weights in external data`, {
      context: { size, max: MAX_SINGLE_FILE_MODEL_BYTES },
    });
  }
  const bytes = await readFile(variant.modelPath);
  const info = readModelInfo(bytes);
  const external = await externalDataLayers(variant.modelPath, info.externalLocations);
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
    // Without a measurement, twice the file and its external data: weights in memory plus working buffers.
    [ANNOTATION.minMemoryBytes]: String(variant.minMemoryBytes ?? (size + external.reduce((n, e) => n + e.descriptor.size, 0)) * 2),
  };
  if (variant.sparsity !== undefined) annotations[ANNOTATION.sparsity] = String(variant.sparsity);
  if (variant.accuracy !== undefined) annotations[ANNOTATION.accuracy] = String(variant.accuracy);
  if (variant.accelerators !== undefined) annotations[ANNOTATION.accelerators] = variant.accelerators.join(',');
  if (variant.cpuFeatures !== undefined) annotations[ANNOTATION.cpuFeatures] = variant.cpuFeatures.join(',');
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    artifactType: MEDIA_TYPE.model,
    config: configDescriptor,
    layers: [layer, ...external.map((e) => e.descriptor), ...calibration.map((c) => c.descriptor)],
    annotations: { [ANNOTATION.title]: spec.name, [ANNOTATION.version]: spec.version, [ANNOTATION.variant]: variant.name },
  };
  return { manifest, config: configDescriptor, configBytes, layer, external, annotations, arch };
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
  readonly cpuFeatures: readonly string[];
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
    accelerators: listAnnotation(a?.[ANNOTATION.accelerators]),
    cpuFeatures: listAnnotation(a?.[ANNOTATION.cpuFeatures]),
  };
}

function listAnnotation(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
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

/** A variant manifest's external-data layers, with their validated locations. */
export function externalDataLayersOf(manifest: ImageManifest): { descriptor: Descriptor; location: string }[] {
  const layers = manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE.onnxExternalData);
  const titles = layerTitles(layers, checkExternalDataLocation, 'external-data');
  return layers.map((descriptor, i) => ({ descriptor, location: titles[i] as string }));
}

/** A variant manifest's calibration layers, with their validated file names. */
export function calibrationLayersOf(manifest: ImageManifest): { descriptor: Descriptor; name: string }[] {
  const layers = manifest.layers.filter((l) => l.mediaType === MEDIA_TYPE.calibrationFile);
  const titles = layerTitles(layers, checkCalibrationFileName, 'calibration');
  return layers.map((descriptor, i) => ({ descriptor, name: titles[i] as string }));
}
