/**
 * cosign-compatible signatures: a `sha256-<hex>.sig` tag in the same repository holds an
 * OCI manifest whose layer is the simple-signing JSON payload naming the signed digest,
 * with the base64 DER ECDSA-P256/SHA-256 signature of the payload bytes in the
 * `dev.cosignproject.cosign/signature` annotation. `cosign verify --key cosign.pub`
 * accepts what `sign` writes, and `verify` accepts what `cosign sign --key` writes.
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EdgevolveError } from '../errors/index.ts';
import { digestHex, type Digest } from '../store/digest.ts';
import type { ContentSource, ContentTarget } from './content.ts';
import { manifestBytes, sha256Digest, type Descriptor, type ImageManifest } from './manifest.ts';
import { ANNOTATION, MEDIA_TYPE } from './media-types.ts';

/** cosign caps what it reads too; a payload is a few hundred bytes. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const COSIGN_TYPE = 'cosign container image signature';

export function signatureTag(digest: Digest): string {
  return `sha256-${digestHex(digest)}.sig`;
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  try {
    const key = createPrivateKey(await readFile(path));
    assertP256(key, path);
    return key;
  } catch (err) {
    if (err instanceof EdgevolveError) throw err;
    throw new EdgevolveError('E_SIGNATURE_KEY', `cannot read private key ${path}: ${(err as Error).message} (cosign's encrypted key format is not supported: use a PEM key, e.g. openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt)`, {
      cause: err,
    });
  }
}

export function parsePublicKey(pem: string | Buffer, origin: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    assertP256(key, origin);
    return key;
  } catch (err) {
    if (err instanceof EdgevolveError) throw err;
    throw new EdgevolveError('E_SIGNATURE_KEY', `cannot read public key ${origin}: ${(err as Error).message}`, { cause: err });
  }
}

function assertP256(key: KeyObject, origin: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EdgevolveError('E_SIGNATURE_KEY', `${origin} is not an ECDSA P-256 key (${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`);
  }
}

/** The simple-signing payload cosign writes, byte for byte in its field order. */
export function simpleSigningPayload(dockerReference: string, digest: Digest): Buffer {
  return Buffer.from(
    JSON.stringify({ critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_TYPE }, optional: null }),
    'utf8',
  );
}

/** Signs `digest` and pushes the signature manifest under its `sha256-<hex>.sig` tag. */
export async function pushSignature(target: ContentTarget, dockerReference: string, digest: Digest, key: KeyObject): Promise<Digest> {
  const payload = simpleSigningPayload(dockerReference, digest);
  const signature = cryptoSign('sha256', payload, key).toString('base64');
  const payloadDigest = sha256Digest(payload);
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [payloadDigest] },
      config: {},
    }),
  );
  const configDescriptor: Descriptor = { mediaType: MEDIA_TYPE.ociImageConfig, digest: sha256Digest(config), size: config.byteLength };
  const layer: Descriptor = {
    mediaType: MEDIA_TYPE.cosignSimpleSigning,
    digest: payloadDigest,
    size: payload.byteLength,
    annotations: { [ANNOTATION.cosignSignature]: signature },
  };
  await target.pushBlob(configDescriptor, { bytes: config });
  await target.pushBlob(layer, { bytes: payload });
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest, config: configDescriptor, layers: [layer] };
  return target.pushManifest(manifestBytes(manifest), MEDIA_TYPE.ociManifest, signatureTag(digest));
}

/**
 * Signs an artifact the way `cosign sign --recursive` does: the index, which is what
 * edgevolve verifies (it names every variant digest), and each variant manifest, which
 * is what containers/image (skopeo, podman) checks a `sigstoreSigned` policy against
 * when it copies one platform's image out of an index.
 */
export async function signArtifact(
  target: ContentTarget,
  dockerReference: string,
  artifact: { readonly indexDigest: Digest; readonly variants: readonly { readonly manifestDigest: string }[] },
  key: KeyObject,
): Promise<{ index: Digest; variants: Digest[] }> {
  const index = await pushSignature(target, dockerReference, artifact.indexDigest, key);
  const variants: Digest[] = [];
  for (const v of artifact.variants) variants.push(await pushSignature(target, dockerReference, v.manifestDigest as Digest, key));
  return { index, variants };
}

export type SignatureCheck =
  | { readonly status: 'verified'; readonly keyIndex: number; readonly dockerReference: string }
  | { readonly status: 'missing' }
  | { readonly status: 'invalid'; readonly reason: string };

/**
 * Looks for a signature of `digest` that verifies against one of the pinned keys. A
 * signature layer that does not verify is skipped (another may), so the result is
 * `invalid` only when signatures exist and none verifies.
 */
export async function checkSignature(source: ContentSource, digest: Digest, keys: readonly KeyObject[]): Promise<SignatureCheck> {
  const found = await source.tryResolve(signatureTag(digest));
  if (found === undefined) return { status: 'missing' };
  if (found.kind !== 'manifest') return { status: 'invalid', reason: `${signatureTag(digest)} is an index, not a signature manifest` };
  const reasons: string[] = [];
  for (const layer of found.manifest.layers) {
    if (layer.mediaType !== MEDIA_TYPE.cosignSimpleSigning) continue;
    const signature = layer.annotations?.[ANNOTATION.cosignSignature];
    if (signature === undefined) {
      reasons.push(`layer ${layer.digest} has no ${ANNOTATION.cosignSignature} annotation`);
      continue;
    }
    let payload: Buffer;
    try {
      payload = await source.fetchSmallBlob(layer, MAX_PAYLOAD_BYTES);
    } catch (err) {
      reasons.push(`payload ${layer.digest}: ${(err as Error).message}`);
      continue;
    }
    const signatureBytes = Buffer.from(signature, 'base64');
    const keyIndex = keys.findIndex((key) => cryptoVerify('sha256', payload, key, signatureBytes));
    if (keyIndex < 0) {
      reasons.push(`signature on ${layer.digest} verifies against none of the ${keys.length} pinned key(s)`);
      continue;
    }
    const claim = parsePayload(payload);
    if (claim === undefined) {
      reasons.push(`payload ${layer.digest} is not a cosign simple-signing document`);
      continue;
    }
    if (claim.digest !== digest) {
      reasons.push(`signature signs ${claim.digest}, not ${digest}`);
      continue;
    }
    return { status: 'verified', keyIndex, dockerReference: claim.dockerReference };
  }
  return { status: 'invalid', reason: reasons.length > 0 ? reasons.join('; ') : 'the signature manifest has no simple-signing layer' };
}

function parsePayload(payload: Buffer): { digest: string; dockerReference: string } | undefined {
  try {
    const doc = JSON.parse(payload.toString('utf8')) as { critical?: { type?: unknown; image?: Record<string, unknown>; identity?: Record<string, unknown> } };
    const digest = doc.critical?.image?.['docker-manifest-digest'];
    const reference = doc.critical?.identity?.['docker-reference'];
    if (doc.critical?.type !== COSIGN_TYPE || typeof digest !== 'string') return undefined;
    return { digest, dockerReference: typeof reference === 'string' ? reference : '' };
  } catch {
    return undefined;
  }
}
