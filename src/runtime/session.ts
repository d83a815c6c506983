/**
 * A lean wrapper around an onnxruntime-node InferenceSession that speaks the IR's
 * TensorValue and fails with EdgevolveError codes. Shared by the conformance runner,
 * the evaluation harness, calibration and the inference server, so it adds nothing
 * per call beyond the ort.Tensor wrappers onnxruntime itself needs.
 */
import * as ort from 'onnxruntime-node';
import { EdgevolveError, isEdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/index.ts';
import { dataTypeOfOrtType, fromOrtTensor, isPassableDataType, toOrtTensor } from './ort-tensor.ts';
import { createWorkerSession } from './worker-session.ts';

export interface SessionOptions {
  /** Intra-op threads; onnxruntime's default (one per core) when absent. */
  readonly threads?: number;
  /**
   * Whether onnxruntime's intra-op threads spin after a parallel section waiting for more
   * work (its default, true) or sleep at once (false). Matters only with `threads` > 1:
   * spinning threads hold cores the server's event loop and its clients need between runs.
   */
  readonly intraOpSpinning?: boolean;
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** In preference order, e.g. `['cuda', 'cpu']`; onnxruntime's default (CPU) when absent. */
  readonly executionProviders?: readonly string[];
  /** onnxruntime's own log level: 0 verbose … 4 fatal. Default 3 (errors only), so its warnings do not reach stderr. */
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Run inference in this many worker threads, each with its own session of the model,
   * instead of on the calling thread (see worker-session.ts); 0 or absent: in-process.
   */
  readonly workers?: number;
  /**
   * The model's external-data files in memory, keyed by the exact `location` string the
   * model names (onnxruntime-node's `externalData`): a model opened from bytes has no
   * directory to resolve them in. src/registry's openVerifiedModel returns them verified.
   */
  readonly externalData?: readonly { readonly path: string; readonly data: Uint8Array }[];
}

/** One graph input or output as onnxruntime sees it. */
export interface SessionValueInfo {
  readonly name: string;
  /** False for sequences, maps and optionals, which onnxruntime-node cannot pass. */
  readonly isTensor: boolean;
  /** ONNX element type (DataType number); undefined for non-tensors. */
  readonly dataType: number | undefined;
  /** Dimensions: numbers, or the symbolic name of a free dimension; empty when unknown or not a tensor. */
  readonly shape: readonly (number | string)[];
}

/** An open model. Call release() when done: the native session holds the model's memory. */
export interface Session {
  readonly inputs: readonly SessionValueInfo[];
  readonly outputs: readonly SessionValueInfo[];
  /** Worker threads that died and were replaced (worker sessions only). */
  readonly workerRestarts?: number;
  /** Runs the model; returns every output, or only `outputNames` when given. */
  run(feeds: Readonly<Record<string, TensorValue>>, outputNames?: readonly string[]): Promise<Record<string, TensorValue>>;
  release(): Promise<void>;
}

/**
 * Opens a model from its bytes or its path. A path lets onnxruntime resolve external
 * data beside the model; bytes are passed to onnxruntime without a copy.
 */
export async function createSession(model: Uint8Array | string, options: SessionOptions = {}): Promise<Session> {
  if (options.workers !== undefined && options.workers > 0) return createWorkerSession(model, toOrtOptions(options), { workers: options.workers });
  const source = typeof model === 'string' ? { path: model } : { bytes: model.byteLength };
  let inner: ort.InferenceSession;
  try {
    inner =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, toOrtOptions(options))
        : await ort.InferenceSession.create(model, toOrtOptions(options));
  } catch (err) {
    throw new EdgevolveError('E_RUNTIME_SESSION_CREATE', `onnxruntime cannot load the model: ${firstLine(err)}`, {
      cause: err,
      context: source,
    });
  }
  return new OrtSession(inner, source);
}

class OrtSession implements Session {
  readonly inputs: readonly SessionValueInfo[];
  readonly outputs: readonly SessionValueInfo[];
  readonly #inner: ort.InferenceSession;
  readonly #source: Readonly<Record<string, unknown>>;
  /** Outputs onnxruntime-node cannot return (4-bit, see ort-tensor.ts): fetching one would abort the process. */
  readonly #unfetchable: ReadonlySet<string>;
  #released = false;

  constructor(inner: ort.InferenceSession, source: Readonly<Record<string, unknown>>) {
    this.#inner = inner;
    this.#source = source;
    this.inputs = inner.inputMetadata.map(toValueInfo);
    this.outputs = inner.outputMetadata.map(toValueInfo);
    this.#unfetchable = new Set(this.outputs.filter((o) => o.dataType !== undefined && !isPassableDataType(o.dataType)).map((o) => o.name));
  }

  async run(feeds: Readonly<Record<string, TensorValue>>, outputNames?: readonly string[]): Promise<Record<string, TensorValue>> {
    if (this.#released) throw new EdgevolveError('E_RUNTIME_RUN', 'the session was released', { context: this.#source });
    if (this.#unfetchable.size > 0) {
      const bad = (outputNames ?? this.outputs.map((o) => o.name)).find((n) => this.#unfetchable.has(n));
      if (bad !== undefined) {
        throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `output '${bad}' is a 4-bit tensor, which onnxruntime-node cannot return`, {
          context: { ...this.#source, output: bad },
        });
      }
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of Object.keys(feeds)) {
      try {
        ortFeeds[name] = toOrtTensor(feeds[name]!);
      } catch (err) {
        if (isEdgevolveError(err)) throw err;
        // ort.Tensor rejects data whose array class or length disagrees with the type and dims.
        throw new EdgevolveError('E_RUNTIME_RUN', `input '${name}': ${firstLine(err)}`, { cause: err, context: { ...this.#source, input: name } });
      }
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = outputNames === undefined ? await this.#inner.run(ortFeeds) : await this.#inner.run(ortFeeds, outputNames);
    } catch (err) {
      throw new EdgevolveError('E_RUNTIME_RUN', `onnxruntime failed to run the model: ${firstLine(err)}`, {
        cause: err,
        context: { ...this.#source, inputs: Object.keys(feeds) },
      });
    }
    const out: Record<string, TensorValue> = {};
    for (const name of Object.keys(results)) out[name] = fromOrtTensor(results[name]!);
    return out;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#inner.release();
  }
}

function toOrtOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  const out: ort.InferenceSession.SessionOptions = { logSeverityLevel: options.logSeverityLevel ?? 3 };
  if (options.threads !== undefined) out.intraOpNumThreads = options.threads;
  // onnxruntime's session config key session.intra_op.allow_spinning, passed as nested `extra` by onnxruntime-node.
  if (options.intraOpSpinning !== undefined) out.extra = { session: { intra_op: { allow_spinning: options.intraOpSpinning ? '1' : '0' } } };
  if (options.graphOptimizationLevel !== undefined) out.graphOptimizationLevel = options.graphOptimizationLevel;
  if (options.executionProviders !== undefined) out.executionProviders = options.executionProviders;
  if (options.externalData !== undefined && options.externalData.length > 0) out.externalData = options.externalData;
  return out;
}

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): SessionValueInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false, dataType: undefined, shape: [] };
  return { name: meta.name, isTensor: true, dataType: dataTypeOfOrtType(meta.type), shape: [...meta.shape] };
}

/** onnxruntime messages can span lines (stack of nested errors); the first is the reason. */
function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n', 1)[0] ?? message;
}
