import { EdgevolveError } from '../errors/index.ts';

/**
 * Model versions are dot-separated non-negative integers (`3`, `1.2.0`), compared
 * numerically; missing trailing parts count as 0. Anything else is refused rather than
 * guessed at, because downgrade refusal depends on the order.
 */
export function parseVersion(text: string): number[] {
  if (!/^\d{1,9}(\.\d{1,9}){0,7}$/.test(text)) {
    throw new EdgevolveError('E_STORE_VERSION_INVALID', `version ${JSON.stringify(text)} is not dot-separated numbers like 1.2.3`, { context: { version: text } });
  }
  return text.split('.').map(Number);
}

/** Negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
