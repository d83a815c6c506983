/**
 * A circuit breaker: after `failureThreshold` consecutive failures it opens and refuses
 * calls for `openMs`; then one trial call is let through (half-open), whose success closes
 * it and whose failure opens it again for another `openMs`.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(private readonly failureThreshold: number, private readonly openMs: number, private readonly now: () => number) {}

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.openMs ? 'half-open' : 'open';
  }

  /** True when a call may go ahead; in half-open state only one at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  failure(): void {
    this.trialInFlight = false;
    this.failures++;
    if (this.openedAt !== undefined || this.failures >= this.failureThreshold) this.openedAt = this.now();
  }
}
