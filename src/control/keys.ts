/**
 * Fleet keys: the public keys a device accepts command signatures from (keyed by keyId in
 * config) and the private key a sender signs with. Ed25519 or ECDSA P-256 only: both are
 * small and fast on ARM, and a short list leaves no weak algorithm to downgrade to.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { EdgevolveError } from '../errors/index.ts';

export type FleetKeyType = 'ed25519' | 'p256';

export interface FleetPublicKey {
  readonly keyId: string;
  readonly type: FleetKeyType;
  readonly key: KeyObject;
}

export interface FleetSigningKey {
  readonly keyId: string;
  readonly type: FleetKeyType;
  readonly key: KeyObject;
}

function keyTypeOf(key: KeyObject, what: string): FleetKeyType {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'p256';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  throw new EdgevolveError('E_CONTROL_KEY', `${what} is ${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`}; use Ed25519 or ECDSA P-256`, {
    context: { type: key.asymmetricKeyType, curve },
  });
}

/** Parses a PEM public key (SPKI) and checks its algorithm. */
export function parsePublicKey(keyId: string, pem: string): FleetPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new EdgevolveError('E_CONTROL_KEY', `control.publicKeys.${keyId} is not a PEM public key: ${(err as Error).message}`, { cause: err, context: { keyId } });
  }
  return { keyId, type: keyTypeOf(key, `control.publicKeys.${keyId}`), key };
}

/** Parses a PEM private key (PKCS#8 or SEC1) and checks its algorithm. */
export function parsePrivateKey(keyId: string, pem: string): FleetSigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new EdgevolveError('E_CONTROL_KEY', `the signing key is not a PEM private key: ${(err as Error).message}`, { cause: err, context: { keyId } });
  }
  return { keyId, type: keyTypeOf(key, 'the signing key'), key };
}

/**
 * Reads `control.publicKeys`: each value is PEM text, or the path of a PEM file.
 * `readText` is the file seam (the composition root passes the real one).
 */
export async function resolveFleetKeys(
  entries: Readonly<Record<string, string>>,
  readText: (path: string) => Promise<string>,
): Promise<Map<string, FleetPublicKey>> {
  const keys = new Map<string, FleetPublicKey>();
  for (const [keyId, value] of Object.entries(entries)) {
    let pem = value;
    if (!value.trimStart().startsWith('-----BEGIN')) {
      try {
        pem = await readText(value);
      } catch (err) {
        throw new EdgevolveError('E_CONTROL_KEY', `control.publicKeys.${keyId}: cannot read ${value}: ${(err as Error).message}`, { cause: err, context: { keyId, path: value } });
      }
    }
    keys.set(keyId, parsePublicKey(keyId, pem));
  }
  return keys;
}

/** ECDSA signatures are DER-encoded (what openssl and cosign produce); Ed25519 ones are the raw 64 bytes. */
export function signBytes(signer: FleetSigningKey, data: Buffer): Buffer {
  return signer.type === 'ed25519' ? sign(null, data, signer.key) : sign('sha256', data, { key: signer.key, dsaEncoding: 'der' });
}

export function verifyBytes(publicKey: FleetPublicKey, data: Buffer, signature: Buffer): boolean {
  try {
    return publicKey.type === 'ed25519'
      ? verify(null, data, publicKey.key, signature)
      : verify('sha256', data, { key: publicKey.key, dsaEncoding: 'der' }, signature);
  } catch {
    // A malformed DER signature throws instead of returning false; to the caller both are "does not verify".
    return false;
  }
}
