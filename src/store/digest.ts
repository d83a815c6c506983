import { EdgevolveError } from '../errors/index.ts';

/** A validated OCI digest: `sha256:` and 64 lowercase hex digits, nothing else. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/**
 * Checks a digest taken from untrusted input (a manifest, a layout, a header).
 * Digests become file names, so this check is also what keeps paths inside the store.
 */
export function parseDigest(value: unknown, what = 'digest'): Digest {
  if (isDigest(value)) return value;
  throw new EdgevolveError('E_REGISTRY_DIGEST_UNSUPPORTED', `${what} ${JSON.stringify(value)?.slice(0, 100)} is not a sha256:<64 lowercase hex> digest`, {
    context: { what },
  });
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}
