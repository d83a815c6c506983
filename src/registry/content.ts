import type { BlobWriter } from '../store/blobs.ts';
import type { Digest } from '../store/digest.ts';
import type { Descriptor, ParsedManifest } from './manifest.ts';

/**
 * Where artifacts are read from: a remote registry repository or an OCI image layout.
 * Pull is written once against this interface.
 */
export interface ContentSource {
  /** For messages and the `source` column: `127.0.0.1:5000/models/det` or `oci-layout:/path`. */
  readonly name: string;
  /** Resolves a tag or digest to its manifest or index; a digest reference is verified. */
  resolve(reference: string): Promise<ParsedManifest>;
  /** Fetches a manifest by descriptor (digest-verified, size-capped). Undefined when absent and `optional`. */
  fetchManifest(descriptor: Descriptor): Promise<ParsedManifest>;
  /** Like `resolve` for a tag that may not exist (signature tags): undefined instead of E_REGISTRY_NOT_FOUND. */
  tryResolve(reference: string): Promise<ParsedManifest | undefined>;
  /** Small blob (config, signature payload) into memory, digest-verified, capped at `maxBytes`. */
  fetchSmallBlob(descriptor: Descriptor, maxBytes: number): Promise<Buffer>;
  /** Streams a blob into `writer`, starting at `writer.offset` (resume); the writer verifies on commit. */
  fetchBlob(descriptor: Descriptor, writer: BlobWriter, signal?: AbortSignal): Promise<void>;
}

/** Bytes to push: in memory, or a file read in chunks. */
export type BlobContent = { readonly bytes: Uint8Array } | { readonly path: string };

/** Where artifacts are written: a remote registry repository or an OCI image layout. */
export interface ContentTarget {
  readonly name: string;
  hasBlob(descriptor: Descriptor): Promise<boolean>;
  pushBlob(descriptor: Descriptor, content: BlobContent): Promise<void>;
  /** Stores a manifest or index; with a tag, points the tag at it. */
  pushManifest(bytes: Buffer, mediaType: string, tag?: string): Promise<Digest>;
}
