/**
 * The evaluation harness: runs a model over a data set with onnxruntime and
 * scores it — accuracy against labels, fidelity against a reference model (or the
 * expected outputs of the ONNX test layout) — batch by batch, so that only one
 * batch of outputs is held at a time.
 *
 * How samples are fed follows checkAgainstModel: stacked along the batch axis,
 * one per run when the model fixes its batch to 1 or has no batch axis, padded
 * (last sample repeated, extra rows dropped) when it fixes a larger batch.
 */
import { performance } from 'node:perf_hooks';
import { checkAgainstModel, type Batch, type Dataset, type DatasetLayout, type FeedMode, type ModelBinding } from '../data/index.ts';
import { EdgevolveError, isEdgevolveError } from '../errors/index.ts';
import { DataType, valueToFloat32, type TensorValue } from '../onnx/index.ts';
import { createSession, type Session } from '../runtime/index.ts';
import { throwIfCancelled } from './cancel.ts';
import { AccuracyMeter, FidelityMeter, type AccuracyResult, type FidelityResult } from './metrics.ts';

export const DEFAULT_BATCH_SIZE = 32;

export interface EvaluateOptions {
  /** Samples per run when the model's batch axis is free (default 32). */
  readonly batchSize?: number;
  /** onnxruntime intra-op threads (its default when absent). */
  readonly threads?: number;
  /** Evaluate only the first N samples. */
  readonly limit?: number;
  /** The output scored against labels; the model's first output by default. */
  readonly labelsOutput?: string;
  /** Called after every batch with samples done and total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Stops the evaluation between batches (E_PLAN_CANCELLED). */
  readonly signal?: AbortSignal | undefined;
}

export interface OutputFidelity extends FidelityResult {
  readonly output: string;
}

/** What the evaluation found; plain data, printed by `edgevolve eval` and used by the planner. */
export interface EvaluationReport {
  readonly samples: number;
  readonly layout: DatasetLayout;
  readonly mode: FeedMode;
  /** Samples per onnxruntime run. */
  readonly batchSize: number;
  readonly accuracy: (AccuracyResult & { readonly output: string }) | null;
  readonly fidelity: { readonly against: 'reference-model' | 'expected-outputs'; readonly outputs: readonly OutputFidelity[] } | null;
  readonly timing: {
    /** Wall time inside the model's runs only (no reading, no metrics), after one untimed warm-up run. */
    readonly runMs: number;
    readonly samplesPerSecond: number;
    readonly referenceRunMs: number | null;
  };
}

/**
 * Opens the model (and the reference), evaluates, and releases the sessions.
 * `model` and `reference` are paths or ONNX bytes.
 */
export async function evaluateModel(
  model: string | Uint8Array,
  dataset: Dataset,
  options: EvaluateOptions & { readonly reference?: string | Uint8Array } = {},
): Promise<EvaluationReport> {
  const sessionOptions = options.threads === undefined ? {} : { threads: options.threads };
  const session = await createSession(model, sessionOptions);
  let reference: Session | undefined;
  try {
    if (options.reference !== undefined) reference = await createSession(options.reference, sessionOptions);
    return await evaluateSessions(session, reference, dataset, options);
  } finally {
    await reference?.release();
    await session.release();
  }
}

/** Evaluates with open sessions (the planner keeps the reference's open across candidates). */
export async function evaluateSessions(session: Session, reference: Session | undefined, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvaluationReport> {
  const view = options.limit === undefined ? dataset : dataset.take(options.limit);
  const binding = checkAgainstModel(view, session.inputs);
  if (reference !== undefined) checkReference(binding, reference, session);
  const outputNames = session.outputs.map((o) => o.name);

  const labelsOutput = options.labelsOutput ?? outputNames[0];
  if (labelsOutput === undefined || !outputNames.includes(labelsOutput)) {
    throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `the model has no output '${String(labelsOutput)}' (outputs: ${outputNames.join(', ')})`, {
      context: { output: labelsOutput },
    });
  }
  const accuracy = view.hasLabels ? new AccuracyMeter() : undefined;
  const against = reference !== undefined ? 'reference-model' : view.hasExpectedOutputs ? 'expected-outputs' : undefined;
  const fidelity = against === undefined ? undefined : new Map(outputNames.map((name) => [name, new FidelityMeter()]));

  const perRun = samplesPerRun(binding, options.batchSize);
  let runMs = 0;
  let referenceRunMs = 0;
  let done = 0;
  for await (const { batch, feeds, outputs, runRows, ms } of runOverDataset(session, binding, options.batchSize, { warmup: true })) {
    throwIfCancelled(options.signal);
    runMs += ms;
    if (done === 0 && reference !== undefined) await reference.run(feeds, outputNames);

    if (accuracy !== undefined && batch.labels !== undefined) {
      const scores = rowsOf(labelsOutput, outputs, batch.size, runRows);
      if (scores.rows !== batch.size) {
        throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `output '${labelsOutput}' does not hold one row per sample, so it cannot be scored against labels`, {
          context: { output: labelsOutput },
        });
      }
      accuracy.add(scores.data, batch.labels);
    }
    if (fidelity !== undefined) {
      let expected: Record<string, TensorValue>;
      if (reference !== undefined) {
        const refStarted = performance.now();
        expected = await reference.run(feeds, outputNames);
        referenceRunMs += performance.now() - refStarted;
      } else {
        expected = expectedByName(batch, outputNames);
      }
      for (const [name, meter] of fidelity) {
        if (expected[name] === undefined) continue;
        const actual = rowsOf(name, outputs, batch.size, runRows);
        const wanted = rowsOf(name, expected, batch.size, runRows);
        if (actual.data.length !== wanted.data.length) {
          throw new EdgevolveError(
            'E_EVAL_REFERENCE_MISMATCH',
            `output '${name}' has shape [${outputs[name]?.dims.join(', ')}], the reference [${expected[name]?.dims.join(', ')}]`,
            { context: { output: name } },
          );
        }
        const dims = outputs[name]?.dims ?? [];
        meter.add(actual.data, wanted.data, actual.rows, dims[dims.length - 1]);
      }
    }
    done += batch.size;
    options.onProgress?.(done, binding.dataset.size);
  }

  return {
    samples: done,
    layout: view.layout,
    mode: binding.mode,
    batchSize: perRun,
    accuracy: accuracy === undefined ? null : { output: labelsOutput, ...accuracy.result() },
    fidelity:
      against === undefined || fidelity === undefined
        ? null
        : { against, outputs: [...fidelity].filter(([, m]) => m.result().samples > 0).map(([output, m]) => ({ output, ...m.result() })) },
    timing: { runMs, samplesPerSecond: runMs > 0 ? (done * 1000) / runMs : 0, referenceRunMs: reference === undefined ? null : referenceRunMs },
  };
}

/** One run of the model over one batch of the data set. */
export interface RunStep {
  readonly batch: Batch;
  /** The feeds as the model took them (padded or without the batch axis when the model needs that). */
  readonly feeds: Record<string, TensorValue>;
  /** Every output, as onnxruntime returned it (padding rows included). */
  readonly outputs: Record<string, TensorValue>;
  /** Rows in the run: more than batch.size when a fixed batch was padded. */
  readonly runRows: number;
  /** Wall time of the run alone. */
  readonly ms: number;
}

/**
 * Runs the model over a checked data set batch by batch (see checkAgainstModel for
 * how samples are fed) and yields each run's outputs; the base of evaluation and
 * of collecting outputs (calibration, teacher labelling).
 */
export async function* runOverDataset(
  session: Session,
  binding: ModelBinding,
  batchSize?: number,
  options: { readonly warmup?: boolean } = {},
): AsyncGenerator<RunStep, void, undefined> {
  let first = true;
  for await (const batch of binding.dataset.batches(samplesPerRun(binding, batchSize))) {
    const { feeds, runRows } = feedsFor(binding, batch);
    // onnxruntime's first run allocates its arenas and prepares kernels: keep it out of the timing.
    if (first && options.warmup === true) await session.run(feeds);
    first = false;
    const started = performance.now();
    const outputs = await session.run(feeds);
    yield { batch, feeds, outputs, runRows, ms: performance.now() - started };
  }
}

/** The outputs of the model over a data set, as float32 with one row per sample: for data sets known to fit in memory. */
export async function collectOutputs(
  session: Session,
  dataset: Dataset,
  options: Pick<EvaluateOptions, 'batchSize' | 'limit'> = {},
): Promise<{ readonly samples: number; readonly outputs: Record<string, { readonly rowDims: readonly number[]; readonly data: Float32Array }> }> {
  const view = options.limit === undefined ? dataset : dataset.take(options.limit);
  const binding = checkAgainstModel(view, session.inputs);
  const chunks = new Map<string, { rowDims: number[]; parts: Float32Array[]; length: number }>();
  let samples = 0;
  for await (const { batch, outputs, runRows } of runOverDataset(session, binding, options.batchSize)) {
    for (const name of Object.keys(outputs)) {
      const rows = rowsOf(name, outputs, batch.size, runRows);
      const dims = outputs[name]?.dims ?? [];
      let entry = chunks.get(name);
      if (entry === undefined) {
        entry = { rowDims: rows.rows === batch.size && dims[0] === runRows ? dims.slice(1) : [...dims], parts: [], length: 0 };
        chunks.set(name, entry);
      }
      // Copy: the outputs' buffers belong to onnxruntime's tensors of this run.
      entry.parts.push(rows.data.slice());
      entry.length += rows.data.length;
    }
    samples += batch.size;
  }
  const collected: Record<string, { rowDims: readonly number[]; data: Float32Array }> = {};
  for (const [name, { rowDims, parts, length }] of chunks) {
    const data = new Float32Array(length);
    let offset = 0;
    for (const part of parts) {
      data.set(part, offset);
      offset += part.length;
    }
    collected[name] = { rowDims, data };
  }
  return { samples, outputs: collected };
}

function samplesPerRun(binding: ModelBinding, batchSize: number | undefined): number {
  return binding.mode === 'batched' ? (binding.fixedBatch ?? positive(batchSize ?? DEFAULT_BATCH_SIZE)) : 1;
}

function positive(batchSize: number): number {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new EdgevolveError('E_USAGE', `batch size must be a positive integer, got ${batchSize}`, { context: { batchSize } });
  }
  return batchSize;
}

/** The reference must take the data set the same way and produce every output of the model. */
function checkReference(binding: ModelBinding, reference: Session, session: Session): void {
  let refBinding: ModelBinding;
  try {
    refBinding = checkAgainstModel(binding.dataset, reference.inputs);
  } catch (err) {
    if (!isEdgevolveError(err)) throw err;
    throw new EdgevolveError('E_EVAL_REFERENCE_MISMATCH', `the reference model does not take this data set: ${err.message}`, { cause: err, context: err.context });
  }
  if (refBinding.mode !== binding.mode || refBinding.fixedBatch !== binding.fixedBatch) {
    throw new EdgevolveError(
      'E_EVAL_REFERENCE_MISMATCH',
      `the reference model takes its inputs differently (${describeFeeding(refBinding)}) from the model (${describeFeeding(binding)})`,
      {},
    );
  }
  const refOutputs = new Set(reference.outputs.map((o) => o.name));
  for (const output of session.outputs) {
    if (!refOutputs.has(output.name)) {
      throw new EdgevolveError('E_EVAL_REFERENCE_MISMATCH', `the reference model has no output '${output.name}' (it has ${[...refOutputs].join(', ')})`, {
        context: { output: output.name },
      });
    }
  }
}

function describeFeeding(binding: ModelBinding): string {
  return binding.fixedBatch === undefined ? binding.mode : `${binding.mode}, fixed batch ${binding.fixedBatch}`;
}

/**
 * The feeds for one batch as the model takes them, and how many rows one run
 * holds (more than the batch when a fixed batch size is padded).
 */
function feedsFor(binding: ModelBinding, batch: Batch): { feeds: Record<string, TensorValue>; runRows: number } {
  if (binding.mode === 'whole') return { feeds: batch.feeds, runRows: batch.size };
  const feeds: Record<string, TensorValue> = {};
  const padTo = binding.fixedBatch !== undefined && batch.size < binding.fixedBatch ? binding.fixedBatch : batch.size;
  for (const [name, value] of Object.entries(batch.feeds)) {
    if (binding.hasBatchAxis[name] === false) feeds[name] = { ...value, dims: value.dims.slice(1) };
    else feeds[name] = padTo > batch.size ? padRows(value, batch.size, padTo) : value;
  }
  return { feeds, runRows: padTo };
}

/** Repeats the last row so a partial batch fills a model's fixed batch size. */
function padRows(value: TensorValue, rows: number, padTo: number): TensorValue {
  const data = value.data;
  if (Array.isArray(data)) throw new EdgevolveError('E_INTERNAL', 'string tensors are not padded');
  const rowLength = data.length / rows;
  const Ctor = data.constructor as new (length: number) => typeof data;
  const padded = new Ctor(padTo * rowLength);
  (padded as typeof data).set(data as never, 0);
  const last = data.subarray((rows - 1) * rowLength, rows * rowLength);
  for (let r = rows; r < padTo; r++) (padded as typeof data).set(last as never, r * rowLength);
  return { dataType: value.dataType, dims: [padTo, ...value.dims.slice(1)], data: padded };
}

/**
 * One output as float32 rows: when its first axis is the run's batch axis, one row
 * per sample (padding rows dropped); otherwise (a single-sample run) the whole
 * output is one row.
 */
function rowsOf(name: string, outputs: Record<string, TensorValue>, samples: number, runRows: number): { data: Float32Array; rows: number } {
  const value = outputs[name];
  if (value === undefined) throw new EdgevolveError('E_INTERNAL', `onnxruntime returned no output '${name}'`);
  const data = value.dataType === DataType.FLOAT && value.data instanceof Float32Array ? value.data : valueToFloat32(value);
  if (value.dims.length > 0 && value.dims[0] === runRows) {
    return { data: runRows === samples ? data : data.subarray(0, (data.length / runRows) * samples), rows: samples };
  }
  if (runRows === 1) return { data, rows: 1 };
  throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `output '${name}' has shape [${value.dims.join(', ')}], which does not start with the batch of ${runRows}`, {
    context: { output: name, dims: value.dims },
  });
}

/** ONNX test layout: output_K.pb belongs to the model's K-th output. */
function expectedByName(batch: Batch, outputNames: readonly string[]): Record<string, TensorValue> {
  const expected: Record<string, TensorValue> = {};
  batch.expectedOutputs?.forEach((value, k) => {
    const name = outputNames[k];
    if (name !== undefined) expected[name] = value;
  });
  return expected;
}
