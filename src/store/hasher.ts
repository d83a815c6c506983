/**
 * sha256 of a stream of chunks, on this thread or on a worker thread. On the worker, the
 * hash runs on another core while this thread receives and writes, at the cost of one
 * copy per byte (the chunks stay with the writer until they are on disk).
 *
 * INVARIANTS: a worker hasher's updates are posted in call order and the worker handles
 * them in order; at most MAX_OUTSTANDING_BYTES are copied but not yet hashed (update()
 * waits beyond that), so a slow worker cannot make memory grow without bound.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

export interface StreamHasher {
  /** Adds bytes; resolves at once unless the worker is too far behind. */
  update(chunk: Uint8Array): Promise<void> | void;
  /** The hex digest of everything added; the hasher is spent afterwards. */
  digest(): Promise<string>;
  /** Abandons the hash (restart, discard). */
  dispose(): void;
}

export function inlineHasher(): StreamHasher {
  const hash = createHash('sha256');
  return {
    update: (chunk) => {
      hash.update(chunk);
    },
    digest: () => Promise.resolve(hash.digest('hex')),
    dispose: () => undefined,
  };
}

const MAX_OUTSTANDING_BYTES = 32 * 1024 * 1024;

// CommonJS source evaluated in the worker: no loader is needed (tsx or vitest), so it runs wherever the store does.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (h === undefined) { h = createHash('sha256'); hashes.set(m.id, h); }
    h.update(new Uint8Array(m.buffer));
    parentPort.postMessage({ op: 'ack', id: m.id, bytes: m.buffer.byteLength });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

type WorkerReply = { op: 'ack'; id: number; bytes: number } | { op: 'digest'; id: number; hex: string };

/** One worker thread shared by the hashers of a store; unref'd, so it never keeps the process alive. */
export class HashWorker {
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #acks = new Map<number, (bytes: number) => void>();
  readonly #digests = new Map<number, { resolve: (hex: string) => void; reject: (err: Error) => void }>();
  #failure: Error | undefined;

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (m: WorkerReply) => {
      if (m.op === 'ack') this.#acks.get(m.id)?.(m.bytes);
      else {
        this.#digests.get(m.id)?.resolve(m.hex);
        this.#digests.delete(m.id);
      }
    });
    worker.on('error', (err) => {
      // Nothing hashed by a dead worker can be trusted: every pending digest fails.
      this.#failure = err;
      for (const pending of this.#digests.values()) pending.reject(err);
      this.#digests.clear();
      for (const ack of this.#acks.values()) ack(Number.POSITIVE_INFINITY);
    });
    this.#worker = worker;
    return worker;
  }

  hasher(): StreamHasher {
    const worker = this.#start();
    const id = this.#nextId++;
    let outstanding = 0;
    let waiting: (() => void) | undefined;
    this.#acks.set(id, (bytes) => {
      outstanding -= bytes;
      if (waiting !== undefined && outstanding <= MAX_OUTSTANDING_BYTES / 2) {
        const wake = waiting;
        waiting = undefined;
        wake();
      }
    });
    const check = (): void => {
      if (this.#failure !== undefined) throw this.#failure;
    };
    return {
      update: (chunk) => {
        check();
        if (chunk.byteLength === 0) return;
        const copy = new Uint8Array(chunk.byteLength);
        copy.set(chunk);
        worker.postMessage({ op: 'update', id, buffer: copy.buffer }, [copy.buffer]);
        outstanding += chunk.byteLength;
        if (outstanding > MAX_OUTSTANDING_BYTES) return new Promise<void>((resolve) => (waiting = resolve));
        return undefined;
      },
      digest: () => {
        check();
        return new Promise<string>((resolve, reject) => {
          this.#digests.set(id, {
            resolve: (hex) => {
              this.#acks.delete(id);
              resolve(hex);
            },
            reject,
          });
          worker.postMessage({ op: 'digest', id });
        });
      },
      dispose: () => {
        this.#acks.delete(id);
        worker.postMessage({ op: 'drop', id });
      },
    };
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }
}
