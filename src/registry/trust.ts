/**
 * The trust policy: whether a resolved artifact may be accepted, decided before any
 * large blob is fetched and before anything is activated (P4).
 */
import type { KeyObject } from 'node:crypto';
import { EdgevolveError } from '../errors/index.ts';
import type { Digest } from '../store/digest.ts';
import { compareVersions } from '../store/version.ts';
import type { ContentSource } from './content.ts';
import { checkSignature, signatureTag } from './signature.ts';

export interface TrustPolicy {
  /** Refuse artifacts without a signature that verifies against `publicKeys`. */
  readonly requireSignature: boolean;
  /** Pinned ECDSA P-256 public keys; several allow key rotation. */
  readonly publicKeys: readonly KeyObject[];
  /** Accept a version older than the last accepted one when it is signed and marked as a downgrade. */
  readonly allowSignedDowngrade: boolean;
}

export interface TrustDecision {
  readonly signed: boolean;
  readonly signatureKey?: number;
}

/**
 * Checks the signature of `digest`. Under `requireSignature` a missing or bad one is
 * refused; without it, a signature that is present but fails against configured keys is
 * still refused (it is evidence of tampering), and a missing one is accepted as unsigned.
 */
export async function checkTrust(source: ContentSource, digest: Digest, policy: TrustPolicy): Promise<TrustDecision> {
  if (!policy.requireSignature && policy.publicKeys.length === 0) return { signed: false };
  if (policy.requireSignature && policy.publicKeys.length === 0) {
    throw new EdgevolveError('E_SIGNATURE_KEY', 'the trust policy requires signatures but pins no public key (registry.trust.publicKeys)');
  }
  const result = await checkSignature(source, digest, policy.publicKeys);
  switch (result.status) {
    case 'verified':
      return { signed: true, signatureKey: result.keyIndex };
    case 'missing':
      if (policy.requireSignature) {
        throw new EdgevolveError('E_SIGNATURE_MISSING', `${source.name}@${digest} is not signed (no ${signatureTag(digest)} tag) and the trust policy requires a signature`, {
          context: { digest },
        });
      }
      return { signed: false };
    case 'invalid':
      throw new EdgevolveError('E_SIGNATURE_INVALID', `signature of ${source.name}@${digest} rejected: ${result.reason}`, { context: { digest, reason: result.reason } });
  }
}

/** Refuses a version older than the last accepted one unless it is a signed, marked, allowed downgrade. */
export function checkDowngrade(
  name: string,
  version: string,
  lastAccepted: string | undefined,
  artifact: { signed: boolean; downgrade: boolean },
  policy: TrustPolicy,
): void {
  if (lastAccepted === undefined || compareVersions(version, lastAccepted) >= 0) return;
  if (policy.allowSignedDowngrade && artifact.signed && artifact.downgrade) return;
  const why = !policy.allowSignedDowngrade
    ? 'the policy does not allow downgrades'
    : !artifact.signed
      ? 'it is not signed'
      : 'it is not marked as a downgrade (dev.edgevolve.downgrade=true)';
  throw new EdgevolveError('E_STORE_DOWNGRADE', `${name} ${version} is older than the last accepted version ${lastAccepted}; refused because ${why}`, {
    context: { name, version, lastAccepted },
  });
}
