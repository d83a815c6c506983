/**
 * Inputs for a benchmark: each model input's shape resolved from its declared dims,
 * the user's --shape and --batch, and defaults; then data generated to match. Pure
 * except for the allocation of the tensors themselves.
 */
import { mulberry32 } from '../../data/prng.ts';
import { EdgevolveError } from '../../errors/index.ts';
// Leaf modules rather than onnx/index.ts: the child loads these at start-up, and the index pulls in protobufjs.
import { dataTypeName, elementTypeInfo } from '../../onnx/dtype.ts';
import { float32ToFloat16Bits } from '../../onnx/float16.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import { DataType } from '../../onnx/types.ts';

/** What the benchmark needs to know of a model input (runtime's SessionValueInfo fits). */
export interface BenchInputSpec {
  readonly name: string;
  readonly isTensor: boolean;
  readonly dataType: number | undefined;
  /** Numbers, or a symbolic name (or a negative number) for a free dimension. */
  readonly shape: readonly (number | string)[];
}

export interface ShapeRequest {
  /** Whole shapes by input name, from `--shape name=1x3x224x224`. */
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  /** The first dimension of inputs whose first dimension is free. Default 1. */
  readonly batch?: number;
}

export interface ResolvedInput {
  readonly name: string;
  readonly dataType: number;
  readonly dims: readonly number[];
  /** Free dimensions that took a default rather than a user's value, e.g. ["height=224"]. */
  readonly defaulted: readonly string[];
}

/** The side of image inputs whose height and width are free: what ImageNet-style models expect. */
export const DEFAULT_IMAGE_SIDE = 224;

/**
 * Resolves every input's dims. A free first dimension takes `batch`; a free spatial
 * dimension of a rank-4 input with 1 or 3 channels takes 224; any other free dimension
 * takes 1 and is listed in `defaulted` so the report shows what was assumed.
 */
export function resolveInputShapes(inputs: readonly BenchInputSpec[], request: ShapeRequest): ResolvedInput[] {
  const known = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(request.shapes)) {
    if (!known.has(name)) {
      throw new EdgevolveError('E_USAGE', `--shape names '${name}', which is not an input of the model (inputs: ${[...known].join(', ')})`, { context: { input: name } });
    }
  }
  return inputs.map((input) => {
    if (!input.isTensor || input.dataType === undefined) {
      throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `input '${input.name}' is not a tensor; the benchmark can only generate tensors`, { context: { input: input.name } });
    }
    const given = request.shapes[input.name];
    if (given !== undefined) {
      checkGivenShape(input, given);
      return { name: input.name, dataType: input.dataType, dims: [...given], defaulted: [] };
    }
    const defaulted: string[] = [];
    const isFixed = (d: number | string | undefined): d is number => typeof d === 'number' && d >= 0;
    const imageLike = input.shape.length === 4 && (input.shape[1] === 1 || input.shape[1] === 3);
    const dims = input.shape.map((d, axis) => {
      if (isFixed(d)) return d;
      const label = typeof d === 'string' && d.length > 0 ? d : `dim${axis}`;
      if (axis === 0) {
        if (request.batch === undefined) defaulted.push(`${label}=1`);
        return request.batch ?? 1;
      }
      const value = imageLike && axis >= 2 ? DEFAULT_IMAGE_SIDE : 1;
      defaulted.push(`${label}=${value}`);
      return value;
    });
    const first = input.shape[0];
    if (request.batch !== undefined && isFixed(first) && first !== request.batch) {
      throw new EdgevolveError('E_USAGE', `--batch ${request.batch}: input '${input.name}' has a fixed first dimension of ${first}`, {
        context: { input: input.name, shape: input.shape },
      });
    }
    return { name: input.name, dataType: input.dataType, dims, defaulted };
  });
}

function checkGivenShape(input: BenchInputSpec, given: readonly number[]): void {
  const problem =
    input.shape.length > 0 && given.length !== input.shape.length
      ? `has rank ${input.shape.length}, --shape gives ${given.length} dimensions`
      : input.shape.map((d, i) => (typeof d === 'number' && d >= 0 && d !== given[i] ? `dimension ${i} is fixed to ${d}, --shape gives ${given[i]}` : undefined)).find((p) => p !== undefined);
  if (problem !== undefined) {
    throw new EdgevolveError('E_USAGE', `input '${input.name}' [${input.shape.join(', ')}] ${problem}`, { context: { input: input.name, shape: input.shape, given } });
  }
}

/**
 * Parses `name=1x3x224x224` (repeatable --shape). Names may contain '=' only before
 * the last one; dimensions are positive integers.
 */
export function parseShapeArgument(text: string): [string, number[]] {
  const eq = text.lastIndexOf('=');
  const name = text.slice(0, eq);
  const dims = text.slice(eq + 1).split(/[x,]/).map((d) => Number(d));
  if (eq <= 0 || dims.length === 0 || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new EdgevolveError('E_USAGE', `--shape '${text}': expected name=DxDx… with non-negative integers, e.g. input=1x3x224x224`);
  }
  return [name, dims];
}

/**
 * Data for one input: floats uniform in [0, 1) from a seeded generator (the range of
 * normalised pixels), integers and booleans zero (valid ids and masks for any
 * embedding or gather). The same seed gives the same data on every machine.
 */
export function generateInput(input: ResolvedInput, seed: number): TensorValue {
  const count = input.dims.reduce((a, b) => a * b, 1);
  const info = elementTypeInfo(input.dataType);
  const dims = [...input.dims];
  // mulberry32 yields uint32 values; each case scales them to [0, 1).
  const random = mulberry32(seed);
  switch (input.dataType) {
    case DataType.FLOAT: {
      const data = new Float32Array(count);
      // The top 24 bits of the uint32: exact in float32, so rounding never reaches 1.
      for (let i = 0; i < count; i++) data[i] = (random() >>> 8) / 0x1000000;
      return { dataType: input.dataType, dims, data };
    }
    case DataType.DOUBLE: {
      const data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = random() / 0x100000000;
      return { dataType: input.dataType, dims, data };
    }
    case DataType.FLOAT16: {
      const data = new Uint16Array(count);
      // The top 11 bits: exact in float16, for the same reason.
      for (let i = 0; i < count; i++) data[i] = float32ToFloat16Bits((random() >>> 21) / 2048);
      return { dataType: input.dataType, dims, data };
    }
    default:
      break;
  }
  switch (info?.typedArray) {
    case 'Int8Array': return { dataType: input.dataType, dims, data: new Int8Array(count) };
    case 'Uint8Array': return { dataType: input.dataType, dims, data: new Uint8Array(count) };
    case 'Int16Array': return { dataType: input.dataType, dims, data: new Int16Array(count) };
    case 'Uint16Array': return { dataType: input.dataType, dims, data: new Uint16Array(count) };
    case 'Int32Array': return { dataType: input.dataType, dims, data: new Int32Array(count) };
    case 'Uint32Array': return { dataType: input.dataType, dims, data: new Uint32Array(count) };
    case 'BigInt64Array': return { dataType: input.dataType, dims, data: new BigInt64Array(count) };
    case 'BigUint64Array': return { dataType: input.dataType, dims, data: new BigUint64Array(count) };
    case 'Float32Array':
    case 'Float64Array':
    case 'string[]':
    case undefined:
      throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `cannot generate data for input '${input.name}' of type ${dataTypeName(input.dataType)}; pass --data`, {
        context: { input: input.name, dataType: input.dataType },
      });
  }
}
