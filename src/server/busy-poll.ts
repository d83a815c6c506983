/**
 * Busy-poll window: after a request, keep the event loop from sleeping for `windowMs`
 * so the next request is read, and the next `session.run` starts, on a core that never
 * went idle. An idle thread blocks in epoll_wait; on a VM its vCPU halts and the next
 * request pays the wake-up and a core that ran something else meanwhile (README
 * "Inference API", Measured: a run after a 1 ms idle gap costs up to 1.9x one run
 * back to back).
 *
 * How: a chain of `setImmediate` callbacks. While an immediate is pending, libuv polls
 * for I/O with a zero timeout, so the loop cycles instead of sleeping. The chain ends
 * once `windowMs` passed without a `touch()`: an idle daemon does not spin. The
 * immediates are unref'd, so a spinning window never keeps the process alive.
 *
 * INVARIANTS: at most one immediate of the chain is pending at a time (`#pending`);
 * `stop()` ends the chain at its next turn and later `touch()` calls start none.
 */
export class BusyPoll {
  readonly #windowMs: number;
  readonly #now: () => number;
  #lastTouch = 0;
  #pending: NodeJS.Immediate | undefined;
  #stopped = false;
  #spinStartedAt = 0;
  #spunMs = 0;

  /** `windowMs` 0 disables it: `touch()` then does nothing. */
  constructor(windowMs: number, now: () => number = () => performance.now()) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Extends the window to `windowMs` from now, starting the spin when it is not running. */
  touch(): void {
    if (this.#windowMs <= 0 || this.#stopped) return;
    this.#lastTouch = this.#now();
    if (this.#pending === undefined) {
      this.#spinStartedAt = this.#lastTouch;
      this.#schedule();
    }
  }

  /** Ends the spin for good (server close). */
  stop(): void {
    this.#stopped = true;
    if (this.#pending !== undefined) {
      clearImmediate(this.#pending);
      this.#spunMs += this.#now() - this.#spinStartedAt;
    }
    this.#pending = undefined;
  }

  /** True while the loop is kept awake. */
  get spinning(): boolean {
    return this.#pending !== undefined;
  }

  /** Wall time the loop was kept awake since creation, in milliseconds: at most one core busy for that long. */
  get spunMs(): number {
    return this.#spunMs + (this.#pending === undefined ? 0 : this.#now() - this.#spinStartedAt);
  }

  readonly #spin = (): void => {
    this.#pending = undefined;
    const now = this.#now();
    if (this.#stopped || now - this.#lastTouch >= this.#windowMs) {
      this.#spunMs += now - this.#spinStartedAt;
      return;
    }
    this.#schedule();
  };

  #schedule(): void {
    this.#pending = setImmediate(this.#spin).unref();
  }
}
