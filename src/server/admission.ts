/**
 * Admission control for one model: at most `concurrency` inferences run, at most
 * `maxQueued` wait; beyond that a request is refused at once (429) rather than
 * queued without bound.
 *
 * INVARIANTS: `running` <= concurrency; a permit is handed to the head waiter only
 * when one is released, so FIFO order holds; a waiter removed by its timeout never
 * receives a permit.
 */
import { EdgevolveError } from '../errors/index.ts';

interface Waiter {
  readonly resolve: () => void;
  state: 'waiting' | 'granted' | 'cancelled';
}

export class Admission {
  readonly #concurrency: number;
  readonly #maxQueued: number;
  #running = 0;
  readonly #queue: Waiter[] = [];
  #queueHead = 0;
  #queued = 0;
  #rejected = 0;

  constructor(concurrency: number, maxQueued: number) {
    this.#concurrency = concurrency;
    this.#maxQueued = maxQueued;
  }

  get queued(): number {
    return this.#queued;
  }

  get running(): number {
    return this.#running;
  }

  /** Requests refused because the queue was full. */
  get rejected(): number {
    return this.#rejected;
  }

  /**
   * Waits for a permit. Throws E_SERVER_QUEUE_FULL when the queue is full; the
   * returned cancel() (for a timeout) leaves the queue without ever taking a permit.
   */
  acquire(model: string): { ready: Promise<void>; cancel: () => boolean } {
    if (this.#running < this.#concurrency && this.#queued === 0) {
      this.#running++;
      return { ready: Promise.resolve(), cancel: () => false };
    }
    if (this.#queued >= this.#maxQueued) {
      this.#rejected++;
      throw new EdgevolveError('E_SERVER_QUEUE_FULL', `model '${model}' has ${this.#queued} requests waiting (the limit); retry later`, {
        context: { model, queued: this.#queued },
      });
    }
    let resolve!: () => void;
    const ready = new Promise<void>((r) => (resolve = r));
    const waiter: Waiter = { resolve, state: 'waiting' };
    this.#queue.push(waiter);
    this.#queued++;
    const cancel = (): boolean => {
      if (waiter.state !== 'waiting') return false;
      waiter.state = 'cancelled';
      this.#queued--;
      return true;
    };
    return { ready, cancel };
  }

  release(): void {
    while (this.#queueHead < this.#queue.length) {
      const waiter = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead] = undefined as unknown as Waiter;
      this.#queueHead++;
      if (waiter.state === 'cancelled') continue;
      waiter.state = 'granted';
      this.#queued--;
      this.#compact();
      // The permit passes straight to the waiter: `running` stays the same.
      waiter.resolve();
      return;
    }
    this.#compact();
    this.#running--;
  }

  #compact(): void {
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
  }
}
