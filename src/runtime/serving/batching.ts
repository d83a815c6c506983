/**
 * Dynamic batching (what Triton calls its dynamic batcher): requests that arrive while
 * the model runs wait, and the next run takes them together as one batch, concatenated
 * along the first dimension, its outputs split back per request. One run of 8x16 rows
 * streams the weights once instead of 8 times, so under concurrency the served
 * throughput is no longer bound by one weight pass per request.
 *
 * Only for models whose every input and output has a free first dimension, whose rows
 * do not affect each other and whose outputs are per row (true of classifiers and
 * encoders; not of a model that normalises across its batch, nor of a detector whose
 * output lists the boxes of the whole batch: when its box count happens to equal the
 * rows, the split would hand boxes to the wrong request). The shapes are checked here;
 * that rows are independent is what the batch probe (batch-probe.ts) tests, which the
 * slot runs first when `probe` is set. `batchingSession` returns the session unchanged
 * for a model whose shapes rule batching out.
 *
 * At concurrency 1 a request runs alone, one event-loop turn later (the turn lets the
 * requests parsed in the same poll phase join it). A batch whose run fails is retried one
 * request at a time, so one bad request fails alone. Requests asking for a subset of
 * outputs, or whose inputs differ from the batch's in names, types or trailing
 * dimensions, run in their own batch.
 *
 * INVARIANTS: at most `maxInFlight` batches run at once; a queued request is taken by
 * exactly one flush; every queued promise settles (resolved with its rows or rejected
 * with its own run's error).
 */
import { DataType } from '../../onnx/types.ts';
import type { TensorData, TensorValue } from '../../onnx/tensor.ts';
import type { Session, SessionValueInfo } from '../session.ts';
import { shapeObstacle } from './batch-probe.ts';

/** Rows per batch with `server.batchMaxRows: auto`: what the throughput measurements used (README "Inference API"). */
export const AUTO_BATCH_MAX_ROWS = 128;

export interface BatchingOptions {
  /** Most rows (first-dimension entries) one batched run takes. */
  readonly maxRows: number;
  /** Batches running at once: 1 in-process (onnxruntime-node runs one at a time), the worker count with inference workers. */
  readonly maxInFlight?: number;
  /** Batch only models the batch probe passes (`server.batchMaxRows: auto`); without it the shapes alone decide (an explicit number). */
  readonly probe?: boolean;
}

interface Waiting {
  readonly feeds: Readonly<Record<string, TensorValue>>;
  readonly rows: number;
  /** Input names, element types and trailing dims: requests with equal keys can share a run. */
  readonly key: string;
  readonly resolve: (outputs: Record<string, TensorValue>) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The options for `server.batchMaxRows`: 'auto' batches up to AUTO_BATCH_MAX_ROWS rows the
 * models the probe passes; a number above 1 batches every model the shapes allow; 0 or 1
 * is off. One batch at a time in-process (onnxruntime-node runs one at a time there), one
 * per worker with inference workers.
 */
export function batchingFromConfig(batchMaxRows: 'auto' | number, inferenceWorkers: number): BatchingOptions | undefined {
  const maxInFlight = Math.max(1, inferenceWorkers);
  if (batchMaxRows === 'auto') return { maxRows: AUTO_BATCH_MAX_ROWS, maxInFlight, probe: true };
  return batchMaxRows > 1 ? { maxRows: batchMaxRows, maxInFlight } : undefined;
}

/** Wraps `session` so concurrent runs are batched; the session itself when the model cannot be batched or `maxRows` < 2. */
export function batchingSession(session: Session, options: BatchingOptions): Session {
  if (options.maxRows < 2 || shapeObstacle(session) !== undefined) return session;
  return new BatchingSession(session, options.maxRows, Math.max(1, options.maxInFlight ?? 1));
}

class BatchingSession implements Session {
  readonly inputs: readonly SessionValueInfo[];
  readonly outputs: readonly SessionValueInfo[];
  readonly #inner: Session;
  readonly #maxRows: number;
  readonly #maxInFlight: number;
  readonly #queue: Waiting[] = [];
  #inFlight = 0;
  #flushPending = false;
  /**
   * Reusable buffers the batches are concatenated into, one set per running batch: a
   * fresh zero-filled buffer per run (hundreds of KB) cost a memset and, as external
   * memory, drove the garbage collector (7% of the server's CPU at concurrency 8).
   */
  readonly #staging: Map<string, ArrayBuffer>[] = [];

  constructor(inner: Session, maxRows: number, maxInFlight: number) {
    this.#inner = inner;
    this.inputs = inner.inputs;
    this.outputs = inner.outputs;
    this.#maxRows = maxRows;
    this.#maxInFlight = maxInFlight;
  }

  get workerRestarts(): number | undefined {
    return this.#inner.workerRestarts;
  }

  run(feeds: Readonly<Record<string, TensorValue>>, outputNames?: readonly string[]): Promise<Record<string, TensorValue>> {
    const shape = batchShape(feeds);
    if (outputNames !== undefined || shape === undefined || shape.rows > this.#maxRows) return this.#inner.run(feeds, outputNames);
    return new Promise((resolve, reject) => {
      this.#queue.push({ feeds, rows: shape.rows, key: shape.key, resolve, reject });
      this.#scheduleFlush();
    });
  }

  release(): Promise<void> {
    return this.#inner.release();
  }

  #scheduleFlush(): void {
    if (this.#flushPending || this.#inFlight >= this.#maxInFlight || this.#queue.length === 0) return;
    this.#flushPending = true;
    // One turn later: requests parsed in the same poll phase join this batch.
    setImmediate(() => {
      this.#flushPending = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#take();
      this.#inFlight++;
      void this.#runBatch(batch).finally(() => {
        this.#inFlight--;
        this.#scheduleFlush();
      });
    }
  }

  /** The oldest request and the queued ones that fit with it, in arrival order. */
  #take(): Waiting[] {
    const first = this.#queue.shift()!;
    const batch = [first];
    let rows = first.rows;
    for (let i = 0; i < this.#queue.length && rows < this.#maxRows; ) {
      const next = this.#queue[i]!;
      if (next.key === first.key && rows + next.rows <= this.#maxRows) {
        batch.push(next);
        rows += next.rows;
        this.#queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  async #runBatch(batch: readonly Waiting[]): Promise<void> {
    if (batch.length === 1) {
      const only = batch[0]!;
      await this.#inner.run(only.feeds).then(only.resolve, only.reject);
      return;
    }
    const rows = batch.map((w) => w.rows);
    const staging = this.#staging.pop() ?? new Map<string, ArrayBuffer>();
    let outputs: Record<string, TensorValue> | undefined;
    try {
      outputs = await this.#inner.run(concatFeeds(batch, staging));
    } catch {
      outputs = undefined;
    }
    // The run settled: onnxruntime no longer reads the staging buffers (a worker session copied them before posting).
    this.#staging.push(staging);
    const split = outputs === undefined ? undefined : splitOutputs(outputs, rows);
    if (split !== undefined) {
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(split[i]!);
      return;
    }
    // The batch failed, or an output's first dimension is not the batch's rows: each request alone, so each gets its own answer or error.
    for (const w of batch) await this.#inner.run(w.feeds).then(w.resolve, w.reject);
  }
}

/** Rows and compatibility key of a request, or undefined when it cannot join a batch. */
function batchShape(feeds: Readonly<Record<string, TensorValue>>): { rows: number; key: string } | undefined {
  let rows: number | undefined;
  let key = '';
  for (const name of Object.keys(feeds).sort()) {
    const value = feeds[name]!;
    const first = value.dims[0];
    if (first === undefined || first < 1 || value.dataType === DataType.STRING) return undefined;
    if (rows === undefined) rows = first;
    else if (rows !== first) return undefined;
    key += `${name}:${value.dataType}:${value.dims.slice(1).join('x')};`;
  }
  return rows === undefined ? undefined : { rows, key };
}

function concatFeeds(batch: readonly Waiting[], staging: Map<string, ArrayBuffer>): Record<string, TensorValue> {
  const first = batch[0]!.feeds;
  let rows = 0;
  for (const w of batch) rows += w.rows;
  const feeds: Record<string, TensorValue> = {};
  for (const name of Object.keys(first)) {
    const template = first[name]!.data as Exclude<TensorData, string[]>;
    const parts = batch.map((w) => w.feeds[name]!.data as Exclude<TensorData, string[]>);
    let length = 0;
    for (const part of parts) length += part.length;
    const bytes = length * template.BYTES_PER_ELEMENT;
    let buffer = staging.get(name);
    if (buffer === undefined || buffer.byteLength < bytes) {
      // Grown to the next power of two, so a slowly growing batch does not reallocate every run; not zero-filled: every byte used is written below.
      buffer = Buffer.allocUnsafeSlow(2 ** Math.ceil(Math.log2(Math.max(bytes, 1024)))).buffer;
      staging.set(name, buffer);
    }
    const data = new (template.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => Exclude<TensorData, string[]>)(buffer, 0, length);
    let offset = 0;
    for (const part of parts) {
      // Same constructor for every part (same element type, checked by the batch key).
      (data as Float32Array).set(part as Float32Array, offset);
      offset += part.length;
    }
    feeds[name] = { dataType: first[name]!.dataType, dims: [rows, ...first[name]!.dims.slice(1)], data };
  }
  return feeds;
}

/** Views of each request's rows in every output (no copy); undefined when an output's first dimension is not the total rows. */
function splitOutputs(outputs: Record<string, TensorValue>, rows: readonly number[]): Record<string, TensorValue>[] | undefined {
  let total = 0;
  for (const r of rows) total += r;
  const split: Record<string, TensorValue>[] = rows.map(() => ({}));
  for (const [name, value] of Object.entries(outputs)) {
    if (value.dims[0] !== total || Array.isArray(value.data)) return undefined;
    const rowSize = value.data.length / total;
    let start = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      split[i]![name] = { dataType: value.dataType, dims: [r, ...value.dims.slice(1)], data: value.data.subarray(start * rowSize, (start + r) * rowSize) };
      start += r;
    }
  }
  return split;
}
