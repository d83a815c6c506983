/**
 * Checks a data set against the inputs of a model before anything runs, so that a
 * mismatch is one clear sentence naming the input, not an onnxruntime error in the
 * middle of an evaluation. Also decides how samples are fed: stacked along the
 * model's batch axis, one per run, or (ONNX test layout) each set as it is.
 */
import path from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { describeDataType, type Dataset, type DatasetInput } from './dataset.ts';

/** A model input as the runtime reports it (runtime's SessionValueInfo fits). */
export interface ModelInputSpec {
  readonly name: string;
  /** ONNX element type; undefined when unknown (the check then accepts any). */
  readonly dataType: number | undefined;
  /** Dimensions: a number, or a string (or negative number) for a symbolic dimension. */
  readonly shape: readonly (number | string)[];
  /** False for sequences, maps and optionals. */
  readonly isTensor?: boolean;
}

/**
 * How to feed a data set to the model.
 * - `batched`: samples are stacked along the model's first axis;
 * - `single`: one sample per run (the model's first dimension is fixed to 1, or it
 *   takes a sample without a batch axis);
 * - `whole`: the ONNX test layout, each set fed as it is.
 */
export type FeedMode = 'batched' | 'single' | 'whole';

export interface ModelBinding {
  /** The data set with inputs named as the model's. */
  readonly dataset: Dataset;
  readonly mode: FeedMode;
  /** A batch size the model's fixed first dimension demands (> 1), else undefined: the last batch is then padded. */
  readonly fixedBatch: number | undefined;
  /** Per model input name: false when the model takes the sample without a leading batch axis (feed `sampleShape`). */
  readonly hasBatchAxis: Readonly<Record<string, boolean>>;
}

/**
 * Verifies that the data set provides every model input with the model's element
 * type and per-sample shape (symbolic dimensions accept anything) and returns how
 * to feed it. Throws E_DATA_INPUT_MISSING, E_DATA_DTYPE_MISMATCH,
 * E_DATA_SHAPE_MISMATCH or E_DATA_SET_INVALID naming the input and the difference.
 */
export function checkAgainstModel(dataset: Dataset, modelInputs: readonly ModelInputSpec[]): ModelBinding {
  for (const input of modelInputs) {
    if (input.isTensor === false) {
      throw new EdgevolveError('E_DATA_SET_INVALID', `model input '${input.name}' is not a tensor (sequence, map or optional); data sets feed tensors only`, {
        context: { input: input.name },
      });
    }
  }
  return dataset.wholeFeeds ? bindByPosition(dataset, modelInputs) : bindByName(dataset, modelInputs);
}

function bindByName(dataset: Dataset, modelInputs: readonly ModelInputSpec[]): ModelBinding {
  const byName = new Map(dataset.inputs.map((i) => [i.name, i]));
  const modelNames = new Set(modelInputs.map((i) => i.name));
  const files = dataset.inputs.map((i) => path.basename(i.file)).join(', ');
  for (const input of modelInputs) {
    if (!byName.has(input.name)) {
      throw new EdgevolveError('E_DATA_INPUT_MISSING', `model input '${input.name}' has no data: expected ${input.name}.npy in ${dataset.dir} (it has ${files})`, {
        context: { input: input.name, path: dataset.dir },
      });
    }
  }
  for (const input of dataset.inputs) {
    if (!modelNames.has(input.name)) {
      throw new EdgevolveError(
        'E_DATA_SET_INVALID',
        `${path.basename(input.file)} matches no model input (the model takes ${[...modelNames].map((n) => `'${n}'`).join(', ')}); rename or remove it`,
        { context: { input: input.name, path: input.file } },
      );
    }
  }
  const hasBatchAxis: Record<string, boolean> = {};
  const fixed = new Set<number>();
  for (const spec of modelInputs) {
    const data = byName.get(spec.name) as DatasetInput;
    checkDataType(spec, data);
    const sample = data.sampleShape;
    if (spec.shape.length === sample.length + 1 && dimsFit(spec.shape.slice(1), sample)) {
      hasBatchAxis[spec.name] = true;
      const first = spec.shape[0];
      if (typeof first === 'number' && first > 0) fixed.add(first);
    } else if (spec.shape.length === sample.length && dimsFit(spec.shape, sample)) {
      hasBatchAxis[spec.name] = false;
    } else {
      throw new EdgevolveError(
        'E_DATA_SHAPE_MISMATCH',
        `input '${spec.name}': the model takes ${formatShape(spec.shape)}, so one sample must be ${formatShape(spec.shape.slice(1))}; ` +
          `${path.basename(data.file)} holds samples of ${formatShape(sample)}`,
        { context: { input: spec.name, modelShape: spec.shape, sampleShape: sample, path: data.file } },
      );
    }
  }
  if (fixed.size > 1) {
    throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `the model's inputs fix different batch sizes (${[...fixed].join(', ')})`, { context: { batchSizes: [...fixed] } });
  }
  const fixedBatch = fixed.values().next().value;
  const anyWithoutBatchAxis = Object.values(hasBatchAxis).includes(false);
  if (anyWithoutBatchAxis && fixedBatch !== undefined && fixedBatch !== 1) {
    throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `the model fixes a batch of ${fixedBatch} on some inputs and takes single samples on others`, {
      context: { fixedBatch },
    });
  }
  if (anyWithoutBatchAxis || fixedBatch === 1) return { dataset, mode: 'single', fixedBatch: undefined, hasBatchAxis };
  return { dataset, mode: 'batched', fixedBatch, hasBatchAxis };
}

/** ONNX's runner binds input_K.pb to the K-th graph input, whatever the tensor's name. */
function bindByPosition(dataset: Dataset, modelInputs: readonly ModelInputSpec[]): ModelBinding {
  const inputs = dataset.inputs;
  if (inputs.length !== modelInputs.length) {
    const missing = modelInputs.slice(inputs.length).map((i) => `'${i.name}'`);
    throw new EdgevolveError(
      inputs.length < modelInputs.length ? 'E_DATA_INPUT_MISSING' : 'E_DATA_SET_INVALID',
      inputs.length < modelInputs.length
        ? `the model takes ${modelInputs.length} inputs but the test data sets have ${inputs.length} (no data for ${missing.join(', ')})`
        : `the test data sets have ${inputs.length} inputs but the model takes ${modelInputs.length}`,
      { context: { path: dataset.dir } },
    );
  }
  const hasBatchAxis: Record<string, boolean> = {};
  modelInputs.forEach((spec, k) => {
    const data = inputs[k] as DatasetInput;
    checkDataType(spec, data);
    if (spec.shape.length !== data.sampleShape.length || !dimsFit(spec.shape, data.sampleShape)) {
      throw new EdgevolveError(
        'E_DATA_SHAPE_MISMATCH',
        `input '${spec.name}' (input_${k}.pb): the model takes ${formatShape(spec.shape)}, the file holds ${formatShape(data.sampleShape)}`,
        { context: { input: spec.name, modelShape: spec.shape, shape: data.sampleShape, path: data.file } },
      );
    }
    hasBatchAxis[spec.name] = true;
  });
  return { dataset: dataset.withInputNames(modelInputs.map((i) => i.name)), mode: 'whole', fixedBatch: undefined, hasBatchAxis };
}

function checkDataType(spec: ModelInputSpec, data: DatasetInput): void {
  if (spec.dataType === undefined || spec.dataType === data.dataType) return;
  throw new EdgevolveError(
    'E_DATA_DTYPE_MISMATCH',
    `input '${spec.name}': the model takes ${describeDataType(spec.dataType)}, ${path.basename(data.file)} holds ${describeDataType(data.dataType)}`,
    { context: { input: spec.name, modelDataType: spec.dataType, dataType: data.dataType, path: data.file } },
  );
}

function isSymbolic(dim: number | string): boolean {
  return typeof dim === 'string' || dim < 0;
}

function dimsFit(model: readonly (number | string)[], data: readonly number[]): boolean {
  return model.every((dim, i) => isSymbolic(dim) || dim === data[i]);
}

function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}
