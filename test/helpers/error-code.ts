import { isEdgevolveError } from '../../src/errors/index.ts';

/** The EdgevolveError code `fn` throws, or 'ok'; anything else thrown is rethrown (a bug, not an answer). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isEdgevolveError(err)) return err.code;
    throw err;
  }
  return 'ok';
}
