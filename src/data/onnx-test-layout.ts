/**
 * The ONNX test layout: `test_data_set_N/input_K.pb` and `output_K.pb`, each a
 * serialized TensorProto (onnx/backend/test). As in ONNX's own runner, file K
 * belongs to the model's K-th input (output), whatever name the tensor carries;
 * each test_data_set_N is one complete set of feeds, run as it is.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { decodeTensor, readTensor, type TensorValue } from '../onnx/index.ts';

const SET_PREFIX = 'test_data_set_';

/** One test_data_set_N directory: where its input and output files are. */
export interface OnnxTestSet {
  readonly name: string;
  readonly dir: string;
  /** input_0.pb, input_1.pb, ... in order. */
  readonly inputFiles: readonly string[];
  readonly outputFiles: readonly string[];
}

/** True when `dir` holds at least one test_data_set_N directory. */
export async function isOnnxTestLayout(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.some((e) => e.isDirectory() && e.name.startsWith(SET_PREFIX));
}

/**
 * Lists the test data sets of `dir`, sorted by N. Files are numbered from 0 without
 * gaps; a gap (input_0.pb, input_2.pb) or a set without inputs is an error, as is a
 * set whose input or output count differs from the first set's.
 */
export async function listOnnxTestSets(dir: string): Promise<OnnxTestSet[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory() && e.name.startsWith(SET_PREFIX) && /^\d+$/.test(e.name.slice(SET_PREFIX.length)))
    .map((e) => e.name)
    .sort((a, b) => Number(a.slice(SET_PREFIX.length)) - Number(b.slice(SET_PREFIX.length)));
  const sets: OnnxTestSet[] = [];
  for (const name of names) {
    const setDir = path.join(dir, name);
    const files = await readdir(setDir);
    const inputFiles = numbered(files, 'input', setDir);
    const outputFiles = numbered(files, 'output', setDir);
    if (inputFiles.length === 0) throw setError(`${setDir} has no input_0.pb`, setDir);
    const first = sets[0];
    if (first !== undefined && (first.inputFiles.length !== inputFiles.length || first.outputFiles.length !== outputFiles.length)) {
      throw setError(
        `${setDir} has ${inputFiles.length} inputs and ${outputFiles.length} outputs, ${first.name} has ${first.inputFiles.length} and ${first.outputFiles.length}`,
        setDir,
      );
    }
    sets.push({ name, dir: setDir, inputFiles, outputFiles });
  }
  if (sets.length === 0) throw setError(`${dir} has no test_data_set_N directories`, dir);
  return sets;
}

function numbered(files: readonly string[], kind: 'input' | 'output', dir: string): string[] {
  const pattern = new RegExp(`^${kind}_(\\d+)\\.pb$`);
  const indices = files
    .map((f) => pattern.exec(f)?.[1])
    .filter((k): k is string => k !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  indices.forEach((k, i) => {
    if (k !== i) throw setError(`${dir} has ${kind}_${k}.pb but no ${kind}_${i}.pb`, dir);
  });
  return indices.map((k) => path.join(dir, `${kind}_${k}.pb`));
}

function setError(message: string, dir: string): EdgevolveError {
  return new EdgevolveError('E_DATA_SET_INVALID', message, { context: { path: dir } });
}

/** A tensor read from a .pb file, with the name it carries ('' when unnamed). */
export interface NamedTensor {
  readonly name: string;
  readonly value: TensorValue;
}

/** Reads one input_K.pb / output_K.pb file (external data resolves beside it). */
export async function readTensorFile(file: string): Promise<NamedTensor> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new EdgevolveError('E_IO', `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, context: { path: file } });
  }
  try {
    const proto = decodeTensor(bytes);
    return { name: proto.name ?? '', value: readTensor(proto, { baseDir: path.dirname(file) }) };
  } catch (err) {
    if (err instanceof EdgevolveError) throw new EdgevolveError(err.code, `${file}: ${err.message}`, { cause: err, context: { ...err.context, path: file } });
    throw err;
  }
}
