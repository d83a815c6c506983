/** Cancellation of a planner search: one error for every place that sees the signal. */
import { EdgevolveError } from '../errors/index.ts';

/** Throws E_PLAN_CANCELLED (the signal's reason as its cause) once `signal` is aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted !== true) return;
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  throw new EdgevolveError('E_PLAN_CANCELLED', `the planner search was cancelled: ${why}`, { cause: reason });
}
