/**
 * Data sets for calibration and evaluation (ARCHITECTURE.md, interchange formats):
 *
 * - a directory of `.npy` files, one per model input (file name = input name, first
 *   axis = samples), plus optional `labels.npy` (integer class ids, shape [N] or [N, 1]);
 * - or the ONNX test layout (`test_data_set_N/input_K.pb`), where each set is one
 *   complete group of feeds.
 *
 * Everything streams: opening reads headers only, and each batch is read with
 * positional reads, so a data set larger than memory is never loaded whole.
 * Shuffling, splitting and taking make views that share the open files.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { DataType, dataTypeName, type TensorValue } from '../onnx/index.ts';
import { allocateNpyData, openNpy, readNpy, type NpyDtype, type NpyReader } from './npy.ts';
import { isOnnxTestLayout, listOnnxTestSets, readTensorFile, type OnnxTestSet } from './onnx-test-layout.ts';
import { shuffleInPlace } from './prng.ts';

export const LABELS_FILE = 'labels.npy';

/** Positional reads a batch keeps outstanding (libuv runs 4 at once by default; the rest queue). */
const READS_IN_FLIGHT = 64;

/** One input the data set provides. */
export interface DatasetInput {
  readonly name: string;
  /** ONNX element type (DataType). */
  readonly dataType: number;
  /**
   * Shape of one sample: the .npy file's shape without its first axis; in the ONNX
   * test layout, the whole tensor's dims (of the first set).
   */
  readonly sampleShape: readonly number[];
  /** The file it comes from (the first set's input_K.pb in the ONNX test layout). */
  readonly file: string;
}

/** A group of samples ready to feed. */
export interface Batch {
  /** Positions of the samples in the data set as opened (before shuffling or splitting). */
  readonly indices: Uint32Array;
  readonly size: number;
  /**
   * Tensors by input name. For .npy data sets: shape [size, ...sampleShape], samples
   * stacked along the first axis. For the ONNX test layout: the set's tensors as they are.
   */
  readonly feeds: Record<string, TensorValue>;
  /** Class ids of the samples, when the data set has labels. */
  readonly labels: Int32Array | undefined;
  /** ONNX test layout: the set's expected outputs (output_K.pb) in model output order. */
  readonly expectedOutputs: readonly TensorValue[] | undefined;
}

export type DatasetLayout = 'npy' | 'onnx-test';

/** An opened data set, or a shuffled/split/taken view of one. */
export interface Dataset {
  readonly dir: string;
  readonly layout: DatasetLayout;
  /** Samples in this view. */
  readonly size: number;
  readonly inputs: readonly DatasetInput[];
  readonly hasLabels: boolean;
  readonly hasExpectedOutputs: boolean;
  /**
   * True in the ONNX test layout: each sample is a complete set of feeds, so every
   * batch holds exactly one sample whatever batch size is asked for.
   */
  readonly wholeFeeds: boolean;
  /** Yields batches of `batchSize` samples in view order; the last may be smaller. */
  batches(batchSize: number): AsyncGenerator<Batch, void, undefined>;
  /** A view in a seeded random order: the same seed gives the same order on every machine. */
  shuffle(seed: number): Dataset;
  /**
   * Two disjoint views: the first `round(ratio × size)` samples and the rest, after a
   * seeded shuffle when `seed` is given (else in the current order).
   */
  split(ratio: number, seed?: number): [Dataset, Dataset];
  /** A view of the first `count` samples (all when the data set is smaller). */
  take(count: number): Dataset;
  /** The same view with inputs renamed positionally (the ONNX test layout binds files to inputs by position). */
  withInputNames(names: readonly string[]): Dataset;
  /** Reads every sample of the view into one batch: only when it is known to fit in memory. */
  readAll(): Promise<Batch>;
  /** Closes the files; shared by every view of the same opened data set. */
  close(): Promise<void>;
}

/** NumPy dtype → ONNX element type; the typed arrays are the same on both sides. */
export const DATA_TYPE_OF_NPY: Readonly<Record<NpyDtype, number>> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  float64: DataType.DOUBLE,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
};

/** NumPy's name for an ONNX element type, for messages ("float32 (FLOAT)"). */
export function describeDataType(dataType: number): string {
  const npy = (Object.keys(DATA_TYPE_OF_NPY) as NpyDtype[]).find((k) => DATA_TYPE_OF_NPY[k] === dataType);
  return npy === undefined ? dataTypeName(dataType) : `${npy} (${dataTypeName(dataType)})`;
}

/** Where samples come from: reads samples by position in the data set as opened. */
interface SampleSource {
  readonly dir: string;
  readonly layout: DatasetLayout;
  readonly size: number;
  readonly inputs: readonly DatasetInput[];
  readonly labels: Int32Array | undefined;
  readonly hasExpectedOutputs: boolean;
  read(indices: Uint32Array): Promise<{ feeds: TensorValue[]; expectedOutputs: TensorValue[] | undefined }>;
  close(): Promise<void>;
}

/**
 * Opens a data set directory: the ONNX test layout when it has test_data_set_N
 * directories, else one `.npy` per input. Reads headers (and labels) only.
 */
export async function openDataset(dir: string): Promise<Dataset> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new EdgevolveError('E_DATA_SET_INVALID', `data set ${dir} is not a directory`, { context: { path: dir } });
  } catch (err) {
    if (err instanceof EdgevolveError) throw err;
    throw new EdgevolveError('E_DATA_SET_INVALID', `data set directory ${dir} does not exist or cannot be read`, { cause: err, context: { path: dir } });
  }
  const npyFiles = (await readdir(dir)).filter((f) => f.endsWith('.npy') && !f.startsWith('.')).sort();
  if (await isOnnxTestLayout(dir)) {
    if (npyFiles.length > 0) {
      throw new EdgevolveError('E_DATA_SET_INVALID', `data set ${dir} mixes test_data_set_N directories with .npy files (${npyFiles.join(', ')}); use one layout`, {
        context: { path: dir },
      });
    }
    return view(await openOnnxTestSource(dir));
  }
  return view(await openNpySource(dir, npyFiles));
}

function view(source: SampleSource): Dataset {
  const order = new Uint32Array(source.size);
  for (let i = 0; i < order.length; i++) order[i] = i;
  return new DatasetView(source, order, source.inputs.map((i) => i.name));
}

class DatasetView implements Dataset {
  constructor(
    private readonly source: SampleSource,
    private readonly order: Uint32Array,
    private readonly names: readonly string[],
  ) {}

  get dir(): string {
    return this.source.dir;
  }
  get layout(): DatasetLayout {
    return this.source.layout;
  }
  get size(): number {
    return this.order.length;
  }
  get inputs(): readonly DatasetInput[] {
    return this.source.inputs.map((input, k) => ({ ...input, name: this.names[k] ?? input.name }));
  }
  get hasLabels(): boolean {
    return this.source.labels !== undefined;
  }
  get hasExpectedOutputs(): boolean {
    return this.source.hasExpectedOutputs;
  }
  get wholeFeeds(): boolean {
    return this.source.layout === 'onnx-test';
  }

  async *batches(batchSize: number): AsyncGenerator<Batch, void, undefined> {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new EdgevolveError('E_DATA_RANGE', `batch size must be a positive integer, got ${batchSize}`, { context: { batchSize } });
    }
    const step = this.wholeFeeds ? 1 : batchSize;
    for (let start = 0; start < this.order.length; start += step) {
      yield await this.readBatch(this.order.subarray(start, Math.min(start + step, this.order.length)));
    }
  }

  async readAll(): Promise<Batch> {
    if (this.wholeFeeds && this.order.length !== 1) {
      throw new EdgevolveError('E_DATA_SET_INVALID', `${this.dir}: the ONNX test layout is read one test_data_set at a time, not whole`, { context: { path: this.dir } });
    }
    return this.readBatch(this.order);
  }

  private async readBatch(indices: Uint32Array): Promise<Batch> {
    const { feeds, expectedOutputs } = await this.source.read(indices);
    const named: Record<string, TensorValue> = {};
    feeds.forEach((value, k) => {
      named[this.names[k] as string] = value;
    });
    const allLabels = this.source.labels;
    let labels: Int32Array | undefined;
    if (allLabels !== undefined) {
      labels = new Int32Array(indices.length);
      for (let i = 0; i < indices.length; i++) labels[i] = allLabels[indices[i] as number] as number;
    }
    return { indices: indices.slice(), size: indices.length, feeds: named, labels, expectedOutputs };
  }

  shuffle(seed: number): Dataset {
    return new DatasetView(this.source, shuffleInPlace(this.order.slice(), seed), this.names);
  }

  split(ratio: number, seed?: number): [Dataset, Dataset] {
    if (!(ratio >= 0 && ratio <= 1)) throw new EdgevolveError('E_DATA_RANGE', `split ratio must be between 0 and 1, got ${ratio}`, { context: { ratio } });
    const order = seed === undefined ? this.order : shuffleInPlace(this.order.slice(), seed);
    const cut = Math.round(ratio * order.length);
    return [new DatasetView(this.source, order.slice(0, cut), this.names), new DatasetView(this.source, order.slice(cut), this.names)];
  }

  take(count: number): Dataset {
    if (!Number.isSafeInteger(count) || count < 0) throw new EdgevolveError('E_DATA_RANGE', `sample count must be a non-negative integer, got ${count}`, { context: { count } });
    return new DatasetView(this.source, this.order.slice(0, Math.min(count, this.order.length)), this.names);
  }

  withInputNames(names: readonly string[]): Dataset {
    if (names.length !== this.source.inputs.length) {
      throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `${names.length} names for the ${this.source.inputs.length} inputs of the data set`, { context: { path: this.dir } });
    }
    return new DatasetView(this.source, this.order, [...names]);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

async function openNpySource(dir: string, npyFiles: readonly string[]): Promise<SampleSource> {
  const inputFiles = npyFiles.filter((f) => f !== LABELS_FILE);
  if (inputFiles.length === 0) {
    throw new EdgevolveError('E_DATA_SET_INVALID', `data set ${dir} has no input files: expected one <input name>.npy per model input, or test_data_set_N directories`, {
      context: { path: dir },
    });
  }
  const readers: NpyReader[] = [];
  try {
    for (const file of inputFiles) readers.push(await openNpy(path.join(dir, file)));
    const first = readers[0] as NpyReader;
    for (const reader of readers) {
      if (reader.rows !== first.rows) {
        throw new EdgevolveError(
          'E_DATA_SHAPE_MISMATCH',
          `data set ${dir}: ${path.basename(reader.path)} has ${reader.rows} samples but ${path.basename(first.path)} has ${first.rows}; every file needs the same first axis`,
          { context: { path: dir } },
        );
      }
    }
    const labels = npyFiles.includes(LABELS_FILE) ? await readLabels(path.join(dir, LABELS_FILE), first) : undefined;
    return new NpySource(dir, readers, labels);
  } catch (err) {
    await Promise.all(readers.map((r) => r.close()));
    throw err;
  }
}

/** Labels are small (one integer per sample), so they are read whole and kept as Int32Array. */
async function readLabels(file: string, first: NpyReader): Promise<Int32Array> {
  const array = await readNpy(file);
  const { dtype, shape, data } = array;
  if (dtype === 'float16' || dtype === 'float32' || dtype === 'float64' || dtype === 'bool') {
    throw new EdgevolveError('E_DATA_DTYPE_MISMATCH', `${file} holds ${dtype}; labels must be integer class ids (save labels.astype(np.int64))`, { context: { path: file, dtype } });
  }
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `${file} has shape (${shape.join(', ')}); labels must have shape (N,) or (N, 1)`, { context: { path: file, shape } });
  }
  if (shape[0] !== first.rows) {
    throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `${file} has ${shape[0]} labels but ${path.basename(first.path)} has ${first.rows} samples`, { context: { path: file } });
  }
  const labels = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const value = Number(data[i]);
    if (value < 0 || value > 0x7fffffff) {
      throw new EdgevolveError('E_DATA_RANGE', `${file}: label ${i} is ${value}; class ids must be between 0 and 2^31-1`, { context: { path: file, index: i } });
    }
    labels[i] = value;
  }
  return labels;
}

class NpySource implements SampleSource {
  readonly layout = 'npy';
  readonly hasExpectedOutputs = false;
  readonly inputs: readonly DatasetInput[];
  readonly size: number;

  constructor(
    readonly dir: string,
    private readonly readers: readonly NpyReader[],
    readonly labels: Int32Array | undefined,
  ) {
    this.inputs = readers.map((r) => ({
      name: path.basename(r.path, '.npy'),
      dataType: DATA_TYPE_OF_NPY[r.dtype],
      sampleShape: r.rowShape,
      file: r.path,
    }));
    this.size = readers[0]?.rows ?? 0;
  }

  async read(indices: Uint32Array): Promise<{ feeds: TensorValue[]; expectedOutputs: undefined }> {
    const feeds: TensorValue[] = [];
    for (const reader of this.readers) {
      const data = allocateNpyData(reader.dtype, indices.length * reader.rowElements);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      // Coalesce runs of consecutive rows into one positional read each, and keep up
      // to READS_IN_FLIGHT reads outstanding: a shuffled batch is many small reads,
      // and one at a time each waits a full trip through libuv's thread pool.
      const reads: Promise<void>[] = [];
      for (let i = 0; i < indices.length; ) {
        const start = indices[i] as number;
        let run = 1;
        while (i + run < indices.length && indices[i + run] === start + run) run++;
        reads.push(reader.readRowsInto(start, run, bytes, i * reader.rowBytes));
        if (reads.length >= READS_IN_FLIGHT) await Promise.all(reads.splice(0));
        i += run;
      }
      await Promise.all(reads);
      feeds.push({ dataType: DATA_TYPE_OF_NPY[reader.dtype], dims: [indices.length, ...reader.rowShape], data });
    }
    return { feeds, expectedOutputs: undefined };
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

async function openOnnxTestSource(dir: string): Promise<SampleSource> {
  const sets = await listOnnxTestSets(dir);
  const first = sets[0] as OnnxTestSet;
  // The first set's tensors give names, types and shapes; later sets are checked as they are read.
  const inputs: DatasetInput[] = [];
  for (const [k, file] of first.inputFiles.entries()) {
    const { name, value } = await readTensorFile(file);
    inputs.push({ name: name === '' ? `input_${k}` : name, dataType: value.dataType, sampleShape: value.dims, file });
  }
  return new OnnxTestSource(dir, sets, inputs);
}

class OnnxTestSource implements SampleSource {
  readonly layout = 'onnx-test';
  readonly labels = undefined;
  readonly size: number;
  readonly hasExpectedOutputs: boolean;

  constructor(
    readonly dir: string,
    private readonly sets: readonly OnnxTestSet[],
    readonly inputs: readonly DatasetInput[],
  ) {
    this.size = sets.length;
    this.hasExpectedOutputs = (sets[0]?.outputFiles.length ?? 0) > 0;
  }

  async read(indices: Uint32Array): Promise<{ feeds: TensorValue[]; expectedOutputs: TensorValue[] | undefined }> {
    if (indices.length !== 1) throw new EdgevolveError('E_INTERNAL', 'the ONNX test layout is read one set at a time');
    const set = this.sets[indices[0] as number];
    if (set === undefined) throw new EdgevolveError('E_DATA_RANGE', `${this.dir}: no test data set at position ${indices[0]}`, { context: { path: this.dir } });
    const feeds: TensorValue[] = [];
    for (const [k, file] of set.inputFiles.entries()) {
      const { value } = await readTensorFile(file);
      const input = this.inputs[k] as DatasetInput;
      if (value.dataType !== input.dataType) {
        throw new EdgevolveError(
          'E_DATA_DTYPE_MISMATCH',
          `${file} holds ${describeDataType(value.dataType)} but ${path.basename(path.dirname(input.file))} has ${describeDataType(input.dataType)} for input ${k}`,
          { context: { path: file } },
        );
      }
      feeds.push(value);
    }
    const expectedOutputs = this.hasExpectedOutputs ? await Promise.all(set.outputFiles.map(async (f) => (await readTensorFile(f)).value)) : undefined;
    return { feeds, expectedOutputs };
  }

  async close(): Promise<void> {
    // Files are opened per read; nothing stays open.
  }
}
