import { ERROR_CODES, type ErrorCode } from './codes.ts';

export { ERROR_CODES, type ErrorCode } from './codes.ts';

/** Structured context attached to an error: names, paths, sizes; never secrets. */
export type ErrorContext = Readonly<Record<string, unknown>>;

/**
 * The one error class of edgevolve. Callers branch on `code`, never on `message`.
 * `context` carries machine-readable fields for logs and JSON output.
 */
export class EdgevolveError extends Error {
  override readonly name = 'EdgevolveError';
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: ErrorContext } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.context = options.context ?? {};
  }

  /** True when the same operation may succeed if tried again later. */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toJSON(): { code: ErrorCode; message: string; context: ErrorContext } {
    return { code: this.code, message: this.message, context: this.context };
  }
}

export function isEdgevolveError(err: unknown, code?: ErrorCode): err is EdgevolveError {
  return err instanceof EdgevolveError && (code === undefined || err.code === code);
}

export function isRetryable(err: unknown): boolean {
  return err instanceof EdgevolveError && err.retryable;
}

/** Wraps anything thrown into an EdgevolveError, keeping the original as `cause`. */
export function toEdgevolveError(err: unknown, fallback: ErrorCode = 'E_INTERNAL'): EdgevolveError {
  if (err instanceof EdgevolveError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EdgevolveError(fallback, message, { cause: err });
}
