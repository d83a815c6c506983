import { isRetryable } from '../errors/index.ts';
import type { Clock, Random } from '../host/index.ts';

export interface RetryOptions {
  /** Attempts in total, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseDelayMs: 250, maxDelayMs: 15_000 };

/**
 * Exponential backoff with full jitter (delay uniform in [0, min(max, base·2^n)]): a
 * fleet that lost its registry at the same moment does not come back in lockstep.
 */
export function backoffDelay(attempt: number, options: RetryOptions, random: Random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  return Math.floor(random.random() * ceiling);
}

/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or runs out of
 * attempts. `retryAfterMs` on an error (from a Retry-After header) replaces the jittered delay, capped.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  deps: { clock: Clock; random: Random; options: RetryOptions; signal?: AbortSignal; onRetry?: (err: unknown, attempt: number, delayMs: number) => void },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (!isRetryable(err) || attempt + 1 >= deps.options.attempts || deps.signal?.aborted === true) throw err;
      const hinted = (err as { context?: { retryAfterMs?: unknown } }).context?.retryAfterMs;
      const delay = typeof hinted === 'number' ? Math.min(hinted, deps.options.maxDelayMs) : backoffDelay(attempt, deps.options, deps.random);
      deps.onRetry?.(err, attempt, delay);
      await deps.clock.sleep(delay, deps.signal);
    }
  }
}

/**
 * A counting semaphore: at most `limit` holders at once, waiters served in order.
 * INVARIANTS: `#active` counts holders; `release` hands the slot straight to the next waiter.
 */
export class Semaphore {
  #active = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    else this.#active++;
    try {
      return await task();
    } finally {
      const next = this.#waiters.shift();
      if (next === undefined) this.#active--;
      else next();
    }
  }
}
