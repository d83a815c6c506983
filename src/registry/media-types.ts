/**
 * Media types and annotation keys of the edgevolve model artifact (documented in the
 * README, "Registry and store"). The containers are standard OCI so any registry and
 * skopeo/oras/cosign handle them; only the config and layer types are ours.
 */
export const MEDIA_TYPE = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  /** The artifactType of a variant manifest. */
  model: 'application/vnd.edgevolve.model.v1',
  /** The variant's config blob: JSON metadata (task, inputs, outputs, labels, metrics). */
  modelConfig: 'application/vnd.edgevolve.model.config.v1+json',
  /** The ONNX model file (a serialized onnx.ModelProto). */
  onnxLayer: 'application/vnd.edgevolve.model.layer.v1.onnx',
  /** An ONNX external-data file; its `org.opencontainers.image.title` annotation is the location the model names. */
  onnxExternalData: 'application/vnd.edgevolve.model.layer.v1.onnx-external-data',
  /**
   * One file of the calibration set (a NumPy .npy file, one per model input, plus
   * labels.npy) for on-device quantization; its title annotation is the file name. One
   * layer per file rather than a tar: nothing is extracted, so no archive path, link or
   * device entry can reach the file system (reliability.md 5.2).
   */
  calibrationFile: 'application/vnd.edgevolve.model.layer.v1.calibration.npy',
  /** cosign: the simple-signing payload layer of a `sha256-<hex>.sig` manifest. */
  cosignSimpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  /** cosign signature manifests carry this minimal image config. */
  ociImageConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const MANIFEST_ACCEPT = [MEDIA_TYPE.ociIndex, MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerList, MEDIA_TYPE.dockerManifest].join(', ');

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  refName: 'org.opencontainers.image.ref.name',
  /** Variant name, unique within the index: `fp32`, `int8`, `fp16-pruned50`. */
  variant: 'dev.edgevolve.variant',
  /** Numeric precision of the weights: fp32, fp16, bf16, int8, uint8, int4, mixed. */
  precision: 'dev.edgevolve.precision',
  /** Fraction of zero weights, 0..1. */
  sparsity: 'dev.edgevolve.sparsity',
  /** Target CPU architecture in OCI/GOARCH terms (amd64, arm64, arm) or `any`. */
  arch: 'dev.edgevolve.arch',
  /** Accelerators/execution providers the variant is built for, comma-separated (cpu, cuda, tensorrt). */
  accelerators: 'dev.edgevolve.accelerators',
  /**
   * CPU features the variant is built for, comma-separated (dotprod, i8mm, fp16,
   * avx512vnni, avxvnni, amx-int8...): e.g. an int8 build without reduce-range needs VNNI.
   */
  cpuFeatures: 'dev.edgevolve.cpu-features',
  /** Minimum free memory to load and run the variant, bytes. */
  minMemoryBytes: 'dev.edgevolve.min-memory-bytes',
  /** Accuracy (or fidelity) measured at build time, 0..1. */
  accuracy: 'dev.edgevolve.accuracy',
  /** On the index: `true` marks a release that may replace a newer one (signed downgrade). */
  downgrade: 'dev.edgevolve.downgrade',
  /** cosign's signature annotation on the simple-signing layer: base64 DER ECDSA signature. */
  cosignSignature: 'dev.cosignproject.cosign/signature',
} as const;
