/**
 * A Session whose onnxruntime sessions live in worker threads, one per worker, so the
 * calling thread (the HTTP server's event loop) parses and answers other requests while
 * a model runs. onnxruntime-node 1.30 runs `session.run` synchronously on the thread
 * that calls it (its `run` only defers the native call with setImmediate; a real async
 * run is onnxruntime PR #28646, not released), so in-process inference and request
 * handling take turns on one thread.
 *
 * Each run copies its input tensors once (exactly their bytes) and transfers the copies;
 * the outputs are transferred back. The caller's feeds are never detached: observers,
 * the co-evolution cascade and the shadow mirror read them after the run.
 *
 * INVARIANTS:
 * - A worker runs one job at a time; jobs wait in one FIFO queue and go to the first idle
 *   loaded worker.
 * - A worker that dies (crash, exit) fails only the job it was running, with
 *   E_RUNTIME_WORKER_CRASHED, and is replaced by a new worker that loads the same model;
 *   after 3 replacements in a row that die before loading, the session is broken and
 *   every run fails with that code.
 * - After release() no worker is spawned and queued jobs fail; running jobs finish, then
 *   every worker is terminated (never while onnxruntime runs in it: see release()).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { EdgevolveError } from '../errors/index.ts';
import { dataTypeName, type TensorValue } from '../onnx/index.ts';
import { dataTypeOfOrtType, isPassableDataType, ortTypeOf } from './ort-tensor.ts';
import type { Session, SessionValueInfo } from './session.ts';

/** A tensor as it crosses the thread boundary. */
interface WireTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: TensorValue['data'] | ArrayBufferView;
}

type ToWorker =
  | { readonly type: 'load'; readonly model: Uint8Array | string; readonly options: ort.InferenceSession.SessionOptions }
  | { readonly type: 'run'; readonly id: number; readonly feeds: Record<string, WireTensor>; readonly fetches: readonly string[] | undefined };

type FromWorker =
  | { readonly type: 'loaded'; readonly inputs: ort.InferenceSession.ValueMetadata[]; readonly outputs: ort.InferenceSession.ValueMetadata[] }
  | { readonly type: 'load-failed'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly outputs: Record<string, WireTensor> }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/**
 * The worker's code, evaluated as a CommonJS script: no TypeScript loader is needed in the
 * worker, whether the daemon runs under tsx, vitest or a bundle. It requires onnxruntime-node
 * from the path the parent resolved.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const firstLine = (err) => String(err && err.message !== undefined ? err.message : err).split('\\n', 1)[0];
parentPort.on('message', async (message) => {
  if (message.type === 'load') {
    try {
      session = await ort.InferenceSession.create(message.model, message.options);
      parentPort.postMessage({ type: 'loaded', inputs: session.inputMetadata, outputs: session.outputMetadata });
    } catch (err) {
      parentPort.postMessage({ type: 'load-failed', message: firstLine(err) });
    }
    return;
  }
  const { id, feeds, fetches } = message;
  const tensors = {};
  for (const name of Object.keys(feeds)) {
    const f = feeds[name];
    try {
      tensors[name] = new ort.Tensor(f.type, f.data, f.dims);
    } catch (err) {
      parentPort.postMessage({ type: 'failed', id, message: "input '" + name + "': " + firstLine(err) });
      return;
    }
  }
  let results;
  try {
    results = fetches === undefined ? await session.run(tensors) : await session.run(tensors, fetches);
  } catch (err) {
    parentPort.postMessage({ type: 'failed', id, message: 'onnxruntime failed to run the model: ' + firstLine(err) });
    return;
  }
  const outputs = {};
  const transfer = [];
  for (const name of Object.keys(results)) {
    const t = results[name];
    outputs[name] = { type: t.type, dims: Array.from(t.dims), data: t.data };
    if (ArrayBuffer.isView(t.data) && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
  }
  try {
    parentPort.postMessage({ type: 'result', id, outputs }, transfer);
  } catch {
    // A buffer the binding does not let go of is copied instead.
    parentPort.postMessage({ type: 'result', id, outputs });
  }
});
`;

/** What a worker needs from node:worker_threads' Worker; the seam lets a test kill a real one mid-run. */
export interface InferenceWorker {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
  on(event: 'message', listener: (message: FromWorker) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  terminate(): Promise<number>;
}

export interface WorkerSessionOptions {
  /** Worker threads, each with its own onnxruntime session of the model (memory: one session each). */
  readonly workers: number;
  /** Called for each worker death with its exit code or error; the session replaces the worker itself. */
  readonly onWorkerCrash?: (reason: string) => void;
  /** Creates a worker running `source` (CommonJS) with `workerData`; default node:worker_threads. */
  readonly spawn?: (source: string, workerData: unknown) => InferenceWorker;
}

const ORT_PATH = createRequire(import.meta.url).resolve('onnxruntime-node');
const MAX_FAILED_RESPAWNS = 3;

/** Opens the model in `options.workers` worker threads; resolves once every worker has loaded it. */
export async function createWorkerSession(
  model: Uint8Array | string,
  ortOptions: ort.InferenceSession.SessionOptions,
  options: WorkerSessionOptions,
): Promise<WorkerPoolSession> {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new EdgevolveError('E_INTERNAL', `a worker session needs at least one worker, got ${options.workers}`);
  }
  const session = new WorkerPoolSession(model, ortOptions, options);
  await session.start();
  return session;
}

interface Job {
  readonly id: number;
  readonly feeds: Record<string, WireTensor>;
  readonly transfer: ArrayBuffer[];
  readonly fetches: readonly string[] | undefined;
  readonly resolve: (outputs: Record<string, TensorValue>) => void;
  readonly reject: (err: EdgevolveError) => void;
}

interface Slot {
  readonly worker: InferenceWorker;
  loaded: boolean;
  job: Job | undefined;
  /** True from spawn until the model loaded or failed to: onnxruntime code runs in the worker. */
  loading: boolean;
  exited: boolean;
  /** Set by release() while the worker loads or runs: called when that settles. */
  idle: (() => void) | undefined;
}

export class WorkerPoolSession implements Session {
  inputs: readonly SessionValueInfo[] = [];
  outputs: readonly SessionValueInfo[] = [];
  readonly #model: Uint8Array | string;
  readonly #ortOptions: ort.InferenceSession.SessionOptions;
  readonly #options: WorkerSessionOptions;
  readonly #spawn: (source: string, workerData: unknown) => InferenceWorker;
  readonly #workers = new Set<Slot>();
  readonly #queue: Job[] = [];
  #unfetchable: ReadonlySet<string> = new Set();
  #nextId = 0;
  #restarts = 0;
  #failedRespawns = 0;
  #released = false;
  #broken: EdgevolveError | undefined;

  constructor(model: Uint8Array | string, ortOptions: ort.InferenceSession.SessionOptions, options: WorkerSessionOptions) {
    this.#model = model;
    this.#ortOptions = ortOptions;
    this.#options = options;
    this.#spawn = options.spawn ?? ((source, workerData) => new Worker(source, { eval: true, workerData }));
  }

  /** Workers that died and were replaced since the session opened. */
  get workerRestarts(): number {
    return this.#restarts;
  }

  /** Spawns every worker and waits until all have loaded the model; a load failure releases them all. */
  async start(): Promise<void> {
    const loads: Promise<void>[] = [];
    for (let i = 0; i < this.#options.workers; i++) {
      loads.push(
        new Promise<void>((resolve, reject) => {
          this.#startWorker({ resolve, reject });
        }),
      );
    }
    // Every load settles before a failure releases the others: release() waits for loading workers anyway.
    const failed = (await Promise.allSettled(loads)).find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await this.release();
      throw failed.reason;
    }
  }

  async run(feeds: Readonly<Record<string, TensorValue>>, outputNames?: readonly string[]): Promise<Record<string, TensorValue>> {
    if (this.#released) throw new EdgevolveError('E_RUNTIME_RUN', 'the session was released');
    if (this.#broken !== undefined) throw this.#broken;
    if (this.#unfetchable.size > 0) {
      const bad = (outputNames ?? this.outputs.map((o) => o.name)).find((n) => this.#unfetchable.has(n));
      if (bad !== undefined) {
        throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `output '${bad}' is a 4-bit tensor, which onnxruntime-node cannot return`, { context: { output: bad } });
      }
    }
    const wire: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const name of Object.keys(feeds)) {
      const value = feeds[name]!;
      const type = ortTypeOf(value.dataType);
      if (type === undefined) {
        throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime-node cannot pass tensors of element type ${dataTypeName(value.dataType)}`, {
          context: { dataType: value.dataType, input: name },
        });
      }
      // slice() copies exactly the view's bytes (cloning a view would copy its whole buffer, e.g. a data set).
      const data = Array.isArray(value.data) ? value.data : value.data.slice();
      if (!Array.isArray(data)) transfer.push(data.buffer);
      wire[name] = { type, dims: value.dims, data };
    }
    return new Promise<Record<string, TensorValue>>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, feeds: wire, transfer, fetches: outputNames, resolve, reject });
      this.#dispatch();
    });
  }

  /**
   * Fails queued runs, lets running ones finish, then stops every worker. A worker is
   * never terminated while onnxruntime runs in it: that aborts the whole process
   * ("terminate called after throwing an instance of 'Napi::Error'", seen with 1.30).
   */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const closed = new EdgevolveError('E_RUNTIME_RUN', 'the session was released');
    for (const job of this.#queue.splice(0)) job.reject(closed);
    const workers = [...this.#workers];
    await Promise.all(
      workers.map(async (slot) => {
        if (slot.job !== undefined || slot.loading) await new Promise<void>((resolve) => (slot.idle = resolve));
        this.#workers.delete(slot);
        await slot.worker.terminate().catch(() => undefined);
      }),
    );
  }

  #startWorker(firstLoad: { resolve: () => void; reject: (err: EdgevolveError) => void } | undefined): void {
    const worker = this.#spawn(WORKER_SOURCE, { ortPath: ORT_PATH });
    const slot: Slot = { worker, loaded: false, job: undefined, loading: true, exited: false, idle: undefined };
    this.#workers.add(slot);
    worker.on('message', (message) => this.#onMessage(slot, message, firstLoad));
    worker.on('error', (err) => this.#onDeath(slot, `it threw ${err.message}`, firstLoad));
    worker.on('exit', (code) => this.#onDeath(slot, `it exited with code ${code}`, firstLoad));
    // Cloning a view copies its whole buffer: send exactly the model's bytes.
    const model = typeof this.#model === 'string' || this.#model.byteLength === this.#model.buffer.byteLength ? this.#model : this.#model.slice();
    worker.postMessage({ type: 'load', model, options: this.#ortOptions } satisfies ToWorker);
  }

  #onMessage(slot: Slot, message: FromWorker, firstLoad: { resolve: () => void; reject: (err: EdgevolveError) => void } | undefined): void {
    switch (message.type) {
      case 'loaded': {
        slot.loaded = true;
        slot.loading = false;
        this.#failedRespawns = 0;
        if (this.inputs.length === 0 && this.outputs.length === 0) {
          this.inputs = message.inputs.map(toValueInfo);
          this.outputs = message.outputs.map(toValueInfo);
          this.#unfetchable = new Set(this.outputs.filter((o) => o.dataType !== undefined && !isPassableDataType(o.dataType)).map((o) => o.name));
        }
        firstLoad?.resolve();
        this.#settled(slot);
        return;
      }
      case 'load-failed': {
        slot.loading = false;
        slot.idle?.();
        const error = new EdgevolveError('E_RUNTIME_SESSION_CREATE', `onnxruntime cannot load the model: ${message.message}`, { context: { worker: true } });
        if (firstLoad !== undefined) firstLoad.reject(error);
        else this.#fail(error);
        return;
      }
      case 'result': {
        const job = slot.job;
        if (job === undefined || job.id !== message.id) return;
        slot.job = undefined;
        try {
          job.resolve(fromWire(message.outputs));
        } catch (err) {
          job.reject(err instanceof EdgevolveError ? err : new EdgevolveError('E_RUNTIME_RUN', String(err)));
        }
        this.#settled(slot);
        return;
      }
      case 'failed': {
        const job = slot.job;
        if (job === undefined || job.id !== message.id) return;
        slot.job = undefined;
        job.reject(new EdgevolveError('E_RUNTIME_RUN', message.message, { context: { inputs: Object.keys(job.feeds) } }));
        this.#settled(slot);
        return;
      }
    }
  }

  #onDeath(slot: Slot, how: string, firstLoad: { resolve: () => void; reject: (err: EdgevolveError) => void } | undefined): void {
    if (slot.exited) return;
    slot.exited = true;
    this.#workers.delete(slot);
    slot.idle?.();
    if (this.#released) {
      slot.job?.reject(new EdgevolveError('E_RUNTIME_WORKER_CRASHED', `the inference worker died: ${how}`));
      return;
    }
    const reason = `the inference worker died: ${how}`;
    this.#options.onWorkerCrash?.(reason);
    const job = slot.job;
    slot.job = undefined;
    job?.reject(new EdgevolveError('E_RUNTIME_WORKER_CRASHED', `${reason} while running this request`, { context: { inputs: Object.keys(job.feeds) } }));
    void slot.worker.terminate().catch(() => undefined);
    if (firstLoad !== undefined && !slot.loaded) {
      firstLoad.reject(new EdgevolveError('E_RUNTIME_WORKER_CRASHED', `${reason} while loading the model`));
      return;
    }
    if (!slot.loaded) this.#failedRespawns++;
    if (this.#failedRespawns >= MAX_FAILED_RESPAWNS) {
      this.#fail(new EdgevolveError('E_RUNTIME_WORKER_CRASHED', `${reason}; ${MAX_FAILED_RESPAWNS} replacements in a row died before loading the model`));
      return;
    }
    this.#restarts++;
    this.#startWorker(undefined);
  }

  #settled(slot: Slot): void {
    if (slot.idle !== undefined) slot.idle();
    else this.#dispatch();
  }

  /** Marks the session broken: every queued and future run fails with `error`. */
  #fail(error: EdgevolveError): void {
    this.#broken = error;
    for (const job of this.#queue.splice(0)) job.reject(error);
  }

  #dispatch(): void {
    if (this.#queue.length === 0 || this.#released) return;
    for (const slot of this.#workers) {
      if (!slot.loaded || slot.job !== undefined || slot.exited) continue;
      const job = this.#queue.shift();
      if (job === undefined) return;
      slot.job = job;
      slot.worker.postMessage({ type: 'run', id: job.id, feeds: job.feeds, fetches: job.fetches } satisfies ToWorker, job.transfer);
    }
  }
}

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): SessionValueInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false, dataType: undefined, shape: [] };
  return { name: meta.name, isTensor: true, dataType: dataTypeOfOrtType(meta.type), shape: [...meta.shape] };
}

function fromWire(outputs: Record<string, WireTensor>): Record<string, TensorValue> {
  const out: Record<string, TensorValue> = {};
  for (const name of Object.keys(outputs)) {
    const t = outputs[name]!;
    const dataType = dataTypeOfOrtType(t.type);
    if (dataType === undefined || !isPassableDataType(dataType)) {
      throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime returned a tensor of unsupported type ${t.type}`, { context: { ortType: t.type } });
    }
    const data = t.data;
    // Where the engine has Float16Array (Node 24+), float16 data arrives in one; the IR keeps raw Uint16 bits.
    if (t.type === 'float16' && !(data instanceof Uint16Array) && ArrayBuffer.isView(data)) {
      out[name] = { dataType, dims: [...t.dims], data: new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) };
      continue;
    }
    out[name] = { dataType, dims: [...t.dims], data: data as TensorValue['data'] };
  }
  return out;
}
