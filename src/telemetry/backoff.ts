/**
 * Reconnect delays: exponential backoff with full jitter and a cap. mqtt.js reconnects at
 * a fixed period with no jitter (MQTT.js#561, never merged), so a broker restart brings a
 * whole fleet back in lockstep; full jitter (AWS Architecture Blog, "Exponential Backoff
 * and Jitter") spreads the attempts uniformly over the window instead.
 */
import type { Random } from '../host/index.ts';

export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
}

/** The ceiling of attempt `attempt` (0-based): min(max, initial * multiplier^attempt). */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  const exponent = Math.min(attempt, 64);
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** exponent);
}

/** The wait before attempt `attempt`: uniform in [0, ceiling). */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: Random): number {
  return Math.floor(random.random() * backoffCeiling(attempt, policy));
}
