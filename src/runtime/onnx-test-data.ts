/**
 * The ONNX test-data layout: `<dir>/test_data_set_N/input_K.pb` and `output_K.pb`,
 * each a serialized TensorProto, read as ONNX's backend runner reads it (file K
 * belongs to the K-th graph input or output). Used by the conformance runner, and a
 * data-set format for evaluation (ARCHITECTURE.md, interchange formats).
 */
import fs from 'node:fs';
import path from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { decodeTensor, readTensor, type ModelProto, type TensorProto, type TensorValue, type TypeProto, type ValueInfoProto } from '../onnx/index.ts';

export interface NamedTensor {
  readonly name: string;
  readonly value: TensorValue;
}

/** One test_data_set_N: inputs by graph input name, outputs in graph output order. */
export interface TestDataSet {
  /** `test_data_set_0`. */
  readonly name: string;
  readonly inputs: Readonly<Record<string, TensorValue>>;
  readonly outputs: readonly NamedTensor[];
}

const PREFIX = 'test_data_set_';

/** The test_data_set_N directories of `dir`, in numeric order (test_data_set_10 after _9). */
export function listDataSetDirs(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith(PREFIX) && /^\d+$/.test(e.name.slice(PREFIX.length)))
    .map((e) => e.name)
    .sort((a, b) => Number(a.slice(PREFIX.length)) - Number(b.slice(PREFIX.length)));
}

/**
 * Reads every data set under `dir` against `model`'s graph inputs and outputs.
 * Non-tensor values (sequences, maps, optionals) are refused with
 * E_RUNTIME_UNSUPPORTED_TYPE; a file with no matching graph value with E_ONNX_INVALID.
 */
export function readTestDataSets(dir: string, model: ModelProto): TestDataSet[] {
  const graphInputs = model.graph?.input ?? [];
  const graphOutputs = model.graph?.output ?? [];
  return listDataSetDirs(dir).map((name) => {
    const setDir = path.join(dir, name);
    const inputs: Record<string, TensorValue> = {};
    for (const { info, file } of filesFor(setDir, 'input', graphInputs)) inputs[info.name ?? ''] = readTypedFile(file, info.type);
    const outputs = filesFor(setDir, 'output', graphOutputs).map(({ info, file }) => ({ name: info.name ?? '', value: readTypedFile(file, info.type) }));
    return { name, inputs, outputs };
  });
}

/** `<kind>_0.pb`, `<kind>_1.pb`, ... up to the first missing index, each paired with its graph value. */
function filesFor(setDir: string, kind: 'input' | 'output', values: readonly ValueInfoProto[]): { info: ValueInfoProto; file: string }[] {
  const out: { info: ValueInfoProto; file: string }[] = [];
  for (let k = 0; ; k++) {
    const file = path.join(setDir, `${kind}_${k}.pb`);
    if (!fs.existsSync(file)) return out;
    const info = values[k];
    if (info === undefined) {
      throw new EdgevolveError('E_ONNX_INVALID', `${file}: the model has no graph ${kind} ${k}`, { context: { file, graphValues: values.length } });
    }
    out.push({ info, file });
  }
}

function readTypedFile(file: string, type: TypeProto | null | undefined): TensorValue {
  if (!type?.tensorType) {
    const kind = type?.sequenceType ? 'sequence' : type?.optionalType ? 'optional' : type?.mapType ? 'map' : type?.sparseTensorType ? 'sparse tensor' : 'untyped';
    throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `${file} holds a ${kind} value; only tensors are supported`, { context: { file, kind } });
  }
  return readTensorFile(file);
}

/** Reads one serialized TensorProto file (external data resolved beside it). */
export function readTensorFile(file: string): TensorValue {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new EdgevolveError('E_IO', `cannot read '${file}': ${err instanceof Error ? err.message : String(err)}`, { cause: err, context: { file } });
  }
  let proto: TensorProto;
  try {
    proto = decodeTensor(bytes);
  } catch (err) {
    if (err instanceof EdgevolveError) throw new EdgevolveError(err.code, `${file}: ${err.message}`, { cause: err, context: { ...err.context, file } });
    throw err;
  }
  return readTensor(proto, { baseDir: path.dirname(file) });
}
