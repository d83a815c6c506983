/**
 * The watchdog loop (reliability.md P10): WATCHDOG=1 is sent at half of WatchdogSec,
 * and only while a real health check passes: the event loop answered within a bound
 * and a tiny inference on every active model succeeded recently. A hung, stopped or
 * sick process therefore stops pinging and systemd restarts it.
 */
import type { Logger } from '../log/index.ts';
import type { Notifier } from './notify.ts';
import type { ServiceHealth } from './ports.ts';

/** Measures how late a timer fires: the event loop lag a hang or a CPU hog causes. */
export class EventLoopLag {
  #expected = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastLagMs = 0;
  readonly #intervalMs: number;

  constructor(intervalMs = 500) {
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#expected = performance.now() + this.#intervalMs;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#lastLagMs = Math.max(0, now - this.#expected);
      this.#expected = now + this.#intervalMs;
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** The lag of the last tick, or how overdue the current one is when it has not fired. */
  lagMs(): number {
    return Math.max(this.#lastLagMs, performance.now() - this.#expected);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export interface WatchdogDeps {
  readonly notifier: Notifier;
  readonly health: () => ServiceHealth;
  readonly status: () => string;
  readonly logger: Logger;
}

export class Watchdog {
  readonly #deps: WatchdogDeps;
  #timer: NodeJS.Timeout | undefined;
  #ready = false;
  #lastWarning = '';
  #pings = 0;

  constructor(deps: WatchdogDeps) {
    this.#deps = deps;
  }

  get pings(): number {
    return this.#pings;
  }

  /** Starts pinging at half the manager's interval; READY=1 rides along once `markReady` was called. */
  start(): void {
    const interval = this.#deps.notifier.watchdogMs;
    if (!this.#deps.notifier.enabled || interval === undefined) return;
    this.#timer = setInterval(() => void this.tick(), Math.max(50, interval / 2));
  }

  markReady(): void {
    this.#ready = true;
  }

  /** One watchdog decision; exposed so tests drive it without waiting. */
  async tick(): Promise<boolean> {
    const health = this.#deps.health();
    if (!health.ok) {
      if (health.reason !== this.#lastWarning) this.#deps.logger.warn({ reason: health.reason }, 'unhealthy: withholding the systemd watchdog ping');
      this.#lastWarning = health.reason;
      await this.#deps.notifier.notify({ STATUS: `unhealthy: ${health.reason}` });
      return false;
    }
    this.#lastWarning = '';
    this.#pings++;
    // READY is repeated with each ping: systemd ignores repeats, and a lost datagram (see notify.ts) is made good.
    await this.#deps.notifier.notify({ ...(this.#ready ? { READY: '1' } : {}), WATCHDOG: '1', STATUS: this.#deps.status() });
    return true;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
