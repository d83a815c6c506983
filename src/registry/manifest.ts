/**
 * Parsing of untrusted manifests and indexes: a size cap before parsing, a strict
 * schema, digests validated (they become file names), and the digest of the exact bytes.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EdgevolveError } from '../errors/index.ts';
import { isDigest, type Digest } from '../store/digest.ts';
import { MEDIA_TYPE } from './media-types.ts';

/** Manifests are small; anything bigger is refused before JSON.parse sees it (RAUC caps signatures at 64 KiB). */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const digestSchema = z.string().refine(isDigest, { message: 'not a sha256:<64 lowercase hex> digest' }).transform((d) => d);
const annotationsSchema = z.record(z.string(), z.string()).optional();

export const descriptorSchema = z.object({
  mediaType: z.string().min(1).max(255),
  digest: digestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  annotations: annotationsSchema,
  artifactType: z.string().optional(),
  platform: z
    .object({ architecture: z.string(), os: z.string(), variant: z.string().optional(), 'os.version': z.string().optional(), 'os.features': z.array(z.string()).optional() })
    .optional(),
  // Foreign-layer URLs are never followed: blobs come from the registry we verified.
  urls: z.array(z.string()).max(0, { message: 'descriptors with urls (foreign layers) are not accepted' }).optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.enum([MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest]).optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema).max(256),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema,
});
export type ImageManifest = z.infer<typeof manifestSchema>;

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.enum([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerList]).optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema).max(1024),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema,
});
export type ImageIndex = z.infer<typeof indexSchema>;

export type ParsedManifest =
  | { readonly kind: 'index'; readonly digest: Digest; readonly mediaType: string; readonly bytes: Buffer; readonly index: ImageIndex }
  | { readonly kind: 'manifest'; readonly digest: Digest; readonly mediaType: string; readonly bytes: Buffer; readonly manifest: ImageManifest };

export function sha256Digest(bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest]);

/**
 * Parses manifest bytes. `contentType` is what the server or the descriptor said; when
 * the JSON also names a media type the two must agree (a registry-side confusion
 * attack otherwise makes an index read as a manifest). When `expected` is given the
 * bytes must hash to it.
 */
export function parseManifest(
  bytes: Buffer,
  options: { contentType?: string | undefined; expected?: Digest | undefined; maxBytes?: number | undefined; what?: string } = {},
): ParsedManifest {
  const what = options.what ?? 'manifest';
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${what} is ${bytes.byteLength} bytes, over the ${maxBytes}-byte cap`, { context: { size: bytes.byteLength, maxBytes } });
  }
  const digest = sha256Digest(bytes);
  if (options.expected !== undefined && options.expected !== digest) {
    throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `${what} should be ${options.expected} but its bytes hash to ${digest}`, {
      context: { expected: options.expected, actual: digest },
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const declared = typeof json === 'object' && json !== null && typeof (json as { mediaType?: unknown }).mediaType === 'string' ? (json as { mediaType: string }).mediaType : undefined;
  const headerType = options.contentType?.split(';')[0]?.trim();
  if (declared !== undefined && headerType !== undefined && headerType !== '' && headerType !== declared && (INDEX_TYPES.has(headerType) || MANIFEST_TYPES.has(headerType))) {
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${what} says it is ${declared} but was served as ${headerType}`);
  }
  const mediaType = declared ?? headerType ?? '';
  const isIndex = INDEX_TYPES.has(mediaType) || (!MANIFEST_TYPES.has(mediaType) && typeof json === 'object' && json !== null && 'manifests' in json);
  const result = (isIndex ? indexSchema : manifestSchema).safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).slice(0, 5);
    throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${what} ${digest} is not a valid ${isIndex ? 'image index' : 'image manifest'}: ${issues.join('; ')}`, {
      context: { digest, issues },
    });
  }
  if (isIndex) return { kind: 'index', digest, mediaType: mediaType || MEDIA_TYPE.ociIndex, bytes, index: result.data as ImageIndex };
  return { kind: 'manifest', digest, mediaType: mediaType || MEDIA_TYPE.ociManifest, bytes, manifest: result.data as ImageManifest };
}

/**
 * Canonical bytes for a manifest we write: compact JSON with Go's field order and sorted
 * annotation keys, which is what containers/image (skopeo) produces when it re-serializes
 * an index. Written this way, `skopeo copy --all` keeps the index digest, so signatures
 * made before a mirror still verify after it.
 */
export function manifestBytes(value: ImageManifest | ImageIndex): Buffer {
  return Buffer.from(JSON.stringify('manifests' in value ? canonicalIndex(value) : canonicalManifest(value)), 'utf8');
}

function sortedAnnotations(annotations: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  if (annotations === undefined) return undefined;
  return Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function canonicalDescriptor(d: Descriptor, withArtifactType: boolean): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.urls === undefined ? {} : { urls: d.urls }),
    ...(d.annotations === undefined ? {} : { annotations: sortedAnnotations(d.annotations) }),
    ...(d.platform === undefined
      ? {}
      : {
          platform: {
            architecture: d.platform.architecture,
            os: d.platform.os,
            ...(d.platform['os.version'] === undefined ? {} : { 'os.version': d.platform['os.version'] }),
            ...(d.platform['os.features'] === undefined ? {} : { 'os.features': d.platform['os.features'] }),
            ...(d.platform.variant === undefined ? {} : { variant: d.platform.variant }),
          },
        }),
    ...(withArtifactType && d.artifactType !== undefined ? { artifactType: d.artifactType } : {}),
  };
}

function canonicalIndex(index: ImageIndex): Record<string, unknown> {
  // No artifactType on the index or its entries: image-spec 1.0 tools drop it when they re-serialize.
  return {
    schemaVersion: index.schemaVersion,
    ...(index.mediaType === undefined ? {} : { mediaType: index.mediaType }),
    manifests: index.manifests.map((d) => canonicalDescriptor(d, false)),
    ...(index.annotations === undefined ? {} : { annotations: sortedAnnotations(index.annotations) }),
  };
}

function canonicalManifest(manifest: ImageManifest): Record<string, unknown> {
  return {
    schemaVersion: manifest.schemaVersion,
    ...(manifest.mediaType === undefined ? {} : { mediaType: manifest.mediaType }),
    ...(manifest.artifactType === undefined ? {} : { artifactType: manifest.artifactType }),
    config: canonicalDescriptor(manifest.config, true),
    layers: manifest.layers.map((d) => canonicalDescriptor(d, true)),
    ...(manifest.subject === undefined ? {} : { subject: canonicalDescriptor(manifest.subject, true) }),
    ...(manifest.annotations === undefined ? {} : { annotations: sortedAnnotations(manifest.annotations) }),
  };
}
