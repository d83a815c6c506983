/**
 * An OCI image layout on disk (image-spec layout.md): `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`. Used as the embedded registry, for air-gapped installs, and
 * interchangeable with skopeo's `oci:<dir>:<tag>`.
 *
 * INVARIANTS: blob paths are built only from validated digests; symlinks are refused
 * where a regular file is expected; index.json is replaced atomically.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { systemDisk, writeFileAtomic, type DiskSpace } from '../host/index.ts';
import { BlobStore, type BlobWriter } from '../store/blobs.ts';
import { parseDigest, type Digest } from '../store/digest.ts';
import type { BlobContent, ContentSource, ContentTarget } from './content.ts';
import { DEFAULT_MAX_MANIFEST_BYTES, parseManifest, sha256Digest, type Descriptor, type ImageIndex, type ParsedManifest } from './manifest.ts';
import { ANNOTATION, MEDIA_TYPE } from './media-types.ts';

const LAYOUT_VERSION = '1.0.0';

export class OciLayout implements ContentSource, ContentTarget {
  readonly #dir: string;
  readonly #blobs: BlobStore;
  readonly #maxManifestBytes: number;

  constructor(dir: string, options: { disk?: DiskSpace; maxManifestBytes?: number } = {}) {
    this.#dir = dir;
    this.#maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.#blobs = new BlobStore({ root: join(dir, 'blobs'), disk: options.disk ?? systemDisk, partialDir: join(dir, '.partial') });
  }

  get name(): string {
    return `oci-layout:${this.#dir}`;
  }

  /** Creates the layout files if absent; an existing layout of another version is refused. */
  async init(): Promise<void> {
    await mkdir(join(this.#dir, 'blobs', 'sha256'), { recursive: true });
    const marker = join(this.#dir, 'oci-layout');
    const existing = await readFile(marker, 'utf8').catch(() => undefined);
    if (existing === undefined) {
      await writeFileAtomic(marker, JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    } else {
      this.#checkMarker(existing);
    }
    if ((await lstat(join(this.#dir, 'index.json')).catch(() => undefined)) === undefined) {
      await this.#writeIndex({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests: [] });
    }
  }

  #checkMarker(text: string): void {
    let version: unknown;
    try {
      version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== LAYOUT_VERSION) throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${this.#dir}/oci-layout does not declare imageLayoutVersion ${LAYOUT_VERSION}`);
  }

  async #readRegular(path: string, maxBytes: number, what: string): Promise<Buffer> {
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) throw new EdgevolveError('E_REGISTRY_NOT_FOUND', `${what} not found in ${this.name}`, { context: { path } });
    if (!info.isFile()) throw new EdgevolveError('E_STORE_PATH_ESCAPE', `${what} in ${this.name} is not a regular file (link or device); refused`, { context: { path } });
    if (info.size > maxBytes) throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${what} is ${info.size} bytes, over the ${maxBytes}-byte cap`);
    return readFile(path);
  }

  async #readIndex(): Promise<ImageIndex> {
    this.#checkMarker((await this.#readRegular(join(this.#dir, 'oci-layout'), 4096, 'oci-layout')).toString('utf8'));
    const bytes = await this.#readRegular(join(this.#dir, 'index.json'), this.#maxManifestBytes, 'index.json');
    const parsed = parseManifest(bytes, { what: `${this.#dir}/index.json`, maxBytes: this.#maxManifestBytes });
    if (parsed.kind !== 'index') throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${this.#dir}/index.json is not an image index`);
    return parsed.index;
  }

  async #writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(join(this.#dir, 'index.json'), JSON.stringify(index));
  }

  /** Tags in index.json, with the descriptors they name. */
  async tags(): Promise<Map<string, Descriptor>> {
    const tags = new Map<string, Descriptor>();
    for (const d of (await this.#readIndex()).manifests) {
      const tag = d.annotations?.[ANNOTATION.refName];
      if (tag !== undefined) tags.set(tag, d);
    }
    return tags;
  }

  async resolve(reference: string): Promise<ParsedManifest> {
    const found = await this.tryResolve(reference);
    if (found === undefined) throw new EdgevolveError('E_REGISTRY_NOT_FOUND', `${reference} is not in ${this.name}`, { context: { reference } });
    return found;
  }

  async tryResolve(reference: string): Promise<ParsedManifest | undefined> {
    if (reference.startsWith('sha256:')) {
      const digest = parseDigest(reference, 'reference');
      return this.fetchManifest({ mediaType: '', digest, size: this.#maxManifestBytes }).catch((err: unknown) => {
        if (err instanceof EdgevolveError && err.code === 'E_REGISTRY_NOT_FOUND') return undefined;
        throw err;
      });
    }
    const descriptor = (await this.tags()).get(reference);
    if (descriptor === undefined) return undefined;
    return this.fetchManifest(descriptor);
  }

  async fetchManifest(descriptor: Descriptor): Promise<ParsedManifest> {
    const path = this.#blobs.path(descriptor.digest);
    const bytes = await this.#readRegular(path, Math.min(descriptor.size, this.#maxManifestBytes), `manifest ${descriptor.digest}`);
    return parseManifest(bytes, { contentType: descriptor.mediaType || undefined, expected: descriptor.digest, maxBytes: this.#maxManifestBytes });
  }

  async fetchSmallBlob(descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
    if (descriptor.size > maxBytes) throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `blob ${descriptor.digest} is ${descriptor.size} bytes, over the ${maxBytes}-byte cap`);
    const bytes = await this.#readRegular(this.#blobs.path(descriptor.digest), descriptor.size, `blob ${descriptor.digest}`);
    const actual = sha256Digest(bytes);
    if (actual !== descriptor.digest || bytes.byteLength !== descriptor.size) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `blob ${descriptor.digest} in ${this.name} hashes to ${actual} (${bytes.byteLength} bytes)`, {
        context: { expected: descriptor.digest, actual },
      });
    }
    return bytes;
  }

  async fetchBlob(descriptor: Descriptor, writer: BlobWriter, signal?: AbortSignal): Promise<void> {
    const path = this.#blobs.path(descriptor.digest);
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) throw new EdgevolveError('E_REGISTRY_NOT_FOUND', `blob ${descriptor.digest} not found in ${this.name}`);
    if (!info.isFile()) throw new EdgevolveError('E_STORE_PATH_ESCAPE', `blob ${descriptor.digest} in ${this.name} is not a regular file; refused`);
    if (info.size !== descriptor.size) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `blob ${descriptor.digest} in ${this.name} is ${info.size} bytes, the manifest says ${descriptor.size}`);
    }
    const stream = createReadStream(path, { start: writer.offset, highWaterMark: 1 << 20, ...(signal === undefined ? {} : { signal }) });
    for await (const chunk of stream) await writer.write(chunk as Buffer);
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.#blobs.has(descriptor.digest);
  }

  async pushBlob(descriptor: Descriptor, content: BlobContent): Promise<void> {
    if (await this.#blobs.has(descriptor.digest)) return;
    await this.#blobs.init();
    if ('bytes' in content) {
      await this.#blobs.putBytes(content.bytes, descriptor.digest);
    } else {
      const stored = await this.#blobs.putFile(content.path);
      if (stored.digest !== descriptor.digest) {
        throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `${content.path} changed while pushing: ${stored.digest}, expected ${descriptor.digest}`);
      }
    }
    await rm(join(this.#dir, '.partial'), { recursive: true, force: true });
  }

  async pushManifest(bytes: Buffer, mediaType: string, tag?: string): Promise<Digest> {
    const digest = sha256Digest(bytes);
    await this.pushBlob({ mediaType, digest, size: bytes.byteLength }, { bytes });
    if (tag !== undefined) {
      assertTag(tag);
      const index = await this.#readIndex();
      const manifests = index.manifests.filter((d) => d.annotations?.[ANNOTATION.refName] !== tag);
      manifests.push({ mediaType, digest, size: bytes.byteLength, annotations: { [ANNOTATION.refName]: tag } });
      await this.#writeIndex({ ...index, manifests });
    }
    return digest;
  }
}

/** Tag grammar of the distribution spec. */
export function assertTag(tag: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) {
    throw new EdgevolveError('E_REGISTRY_REF', `tag ${JSON.stringify(tag)} is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})`);
  }
}
