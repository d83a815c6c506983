/**
 * Which stored version a `rollback` command with `toVersion` means. A version string does
 * not name one variant: a variant built on the device shares its parent's version
 * (`1.0.0/fp32` and `1.0.0/opt-int8-dynamic-1a2b3c4d`), and an index holds several. The
 * payload's `variant` picks exactly; without it the variant of that version that served
 * last is meant (a rollback returns to what served), and a version with several variants
 * none of which ever served is refused with the stored variants named, not guessed.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { HistoryEntry, VersionRecord } from '../store/index.ts';

export interface RollbackRequest {
  readonly name: string;
  readonly toVersion: string;
  readonly variant?: string | undefined;
}

/**
 * `versions`: the model's stored versions (any order); `history`: its activations, newest
 * first (ModelRepository.history).
 */
export function rollbackTarget(request: RollbackRequest, versions: readonly VersionRecord[], history: readonly Pick<HistoryEntry, 'versionId'>[]): VersionRecord {
  const { name, toVersion, variant } = request;
  const ofVersion = versions.filter((v) => v.version === toVersion);
  const matching = variant === undefined ? ofVersion : ofVersion.filter((v) => v.variant === variant);
  const stored = ofVersion.map((v) => v.variant).join(', ');
  if (matching.length === 0) {
    const what = variant === undefined ? `${name} ${toVersion}` : `${name} ${toVersion}/${variant}`;
    throw new EdgevolveError('E_STORE_NOT_FOUND', `${what} is not in the store${ofVersion.length > 0 ? ` (stored variants of ${toVersion}: ${stored})` : ''}`, {
      context: { name, version: toVersion, ...(variant === undefined ? {} : { variant }) },
    });
  }
  const [only, ...more] = matching;
  if (only !== undefined && more.length === 0) return only;
  // Several: the one that served last. History is newest first, so the first hit wins.
  for (const h of history) {
    const served = matching.find((v) => v.id === h.versionId);
    if (served !== undefined) return served;
  }
  throw new EdgevolveError('E_CONTROL_INVALID_PAYLOAD', `${name} ${toVersion} has several stored variants (${matching.map((v) => `${v.variant} ${v.manifestDigest.slice(0, 19)}`).join(', ')}) and none served before: name one with variant`, {
    context: { name, version: toVersion },
  });
}
