/** Cancellation of a planner search: one error for every place that sees the signal. */
import { EdgevolveError } from '../errors/index.ts';

/** E_PLAN_CANCELLED with the signal's reason as its cause. */
export function cancelledError(signal: AbortSignal): EdgevolveError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new EdgevolveError('E_PLAN_CANCELLED', `the planner search was cancelled: ${why}`, { cause: reason });
}

/** Throws E_PLAN_CANCELLED once `signal` is aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw cancelledError(signal);
}
