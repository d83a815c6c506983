/**
 * What `edgevolve infer` needs beyond the client: turning `--input [name=]file.npy`
 * arguments into named tensors (asking the server for the input name when the model
 * has one input and the argument names none), and a top-k summary of class scores.
 */
import { DATA_TYPE_OF_NPY, readNpy } from '../data/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/tensor.ts';
import { DataType } from '../onnx/types.ts';
import { float16BitsToFloat32 } from '../onnx/float16.ts';

export interface InputArgument {
  /** Undefined for a bare path: the model's only input. */
  readonly name: string | undefined;
  readonly path: string;
}

/** `name=file.npy` or `file.npy`; a '=' counts only when the part before it is a plausible tensor name. */
export function parseInputArgument(text: string): InputArgument {
  const eq = text.indexOf('=');
  if (eq > 0 && /^[A-Za-z0-9_.:-]+$/.test(text.slice(0, eq))) {
    return { name: text.slice(0, eq), path: text.slice(eq + 1) };
  }
  return { name: undefined, path: text };
}

/** The `inputs` of GET /v2/models/<name>, as much as this needs. */
export interface ModelMetadataInputs {
  readonly inputs: readonly { readonly name: string }[];
}

export async function loadInputs(args: readonly InputArgument[], metadata: () => Promise<ModelMetadataInputs>): Promise<Record<string, TensorValue>> {
  if (args.length === 0) throw new EdgevolveError('E_USAGE', 'give at least one --input [name=]file.npy');
  const unnamed = args.filter((a) => a.name === undefined);
  let onlyInput: string | undefined;
  if (unnamed.length > 0) {
    const meta = await metadata();
    if (unnamed.length > 1 || meta.inputs.length !== 1) {
      throw new EdgevolveError('E_USAGE', `the model has inputs ${meta.inputs.map((i) => i.name).join(', ')}: name each one, --input <name>=<file.npy>`);
    }
    onlyInput = meta.inputs[0]!.name;
  }
  const inputs: Record<string, TensorValue> = {};
  for (const arg of args) {
    const name = arg.name ?? onlyInput!;
    if (Object.hasOwn(inputs, name)) throw new EdgevolveError('E_USAGE', `input '${name}' is given twice`);
    const npy = await readNpy(arg.path);
    inputs[name] = { dataType: DATA_TYPE_OF_NPY[npy.dtype], dims: [...npy.shape], data: npy.data };
  }
  return inputs;
}

export interface TopK {
  /** Per row (first axis), the k best classes, best first. */
  readonly rows: readonly { readonly index: number; readonly score: number }[][];
}

/**
 * The k highest scores per row of a [N, C] (or [C]) floating-point output; undefined
 * for anything that does not look like class scores (other ranks or element types).
 */
export function topK(value: TensorValue, k: number): TopK | undefined {
  if (value.dims.length < 1 || value.dims.length > 2) return undefined;
  const read = scoreReader(value);
  if (read === undefined) return undefined;
  const classes = value.dims[value.dims.length - 1]!;
  const rowCount = value.dims.length === 2 ? value.dims[0]! : 1;
  if (classes < 2) return undefined;
  const rows: { index: number; score: number }[][] = [];
  for (let r = 0; r < rowCount; r++) {
    const best: { index: number; score: number }[] = [];
    for (let c = 0; c < classes; c++) {
      const score = read(r * classes + c);
      if (best.length < k || score > best[best.length - 1]!.score) {
        best.push({ index: c, score });
        best.sort((a, b) => b.score - a.score);
        if (best.length > k) best.pop();
      }
    }
    rows.push(best);
  }
  return { rows };
}

function scoreReader(value: TensorValue): ((i: number) => number) | undefined {
  const data = value.data;
  switch (value.dataType) {
    case DataType.FLOAT:
    case DataType.DOUBLE: {
      const array = data as Float32Array | Float64Array;
      return (i) => array[i]!;
    }
    case DataType.FLOAT16: {
      const array = data as Uint16Array;
      return (i) => float16BitsToFloat32(array[i]!);
    }
    default:
      return undefined;
  }
}
