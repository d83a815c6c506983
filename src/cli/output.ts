import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';

/** Exit codes of the command line contract (ARCHITECTURE.md). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Prints exactly one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * Runs a command action: on failure prints a one-line reason (or a JSON error
 * document with --json) and sets exit code 1, or 2 for usage errors.
 */
export async function runAction(json: boolean, action: () => Promise<void> | void): Promise<void> {
  try {
    await action();
  } catch (err) {
    const error = toEdgevolveError(err);
    if (json) printJson({ ok: false, error: error.toJSON() });
    else console.error(`edgevolve: ${error.code}: ${error.message}`);
    if (error.code === 'E_INTERNAL' && process.env.EDGEVOLVE_DEBUG) console.error(err);
    process.exitCode = error.code === 'E_USAGE' ? EXIT_USAGE : EXIT_FAILURE;
  }
}

export function usageError(message: string): EdgevolveError {
  return new EdgevolveError('E_USAGE', message);
}
