/**
 * Conversion between the IR's TensorValue and onnxruntime-node's Tensor.
 *
 * Both sides keep element data in the same TypedArrays (FLOAT16 as raw Uint16 bits,
 * BOOL as Uint8, INT64 as BigInt64, STRING as string[]), so conversion wraps the
 * existing buffer instead of copying. The 4-bit types are the exception: the IR
 * holds one element per byte, onnxruntime two per byte, so they are (un)packed.
 */
import * as ort from 'onnxruntime-node';
import { EdgevolveError } from '../errors/index.ts';
import { DataType } from '../onnx/types.ts';
import { pack4Bit, unpack4Bit, type TensorValue } from '../onnx/index.ts';

/** onnxruntime's name of each ONNX element type it can hold in a tensor. */
const ORT_TYPE_BY_DATA_TYPE: ReadonlyMap<number, ort.Tensor.Type> = new Map<number, ort.Tensor.Type>([
  [DataType.FLOAT, 'float32'],
  [DataType.UINT8, 'uint8'],
  [DataType.INT8, 'int8'],
  [DataType.UINT16, 'uint16'],
  [DataType.INT16, 'int16'],
  [DataType.INT32, 'int32'],
  [DataType.INT64, 'int64'],
  [DataType.STRING, 'string'],
  [DataType.BOOL, 'bool'],
  [DataType.FLOAT16, 'float16'],
  [DataType.DOUBLE, 'float64'],
  [DataType.UINT32, 'uint32'],
  [DataType.UINT64, 'uint64'],
  [DataType.UINT4, 'uint4'],
  [DataType.INT4, 'int4'],
]);

const DATA_TYPE_BY_ORT_TYPE: ReadonlyMap<string, number> = new Map(
  [...ORT_TYPE_BY_DATA_TYPE].map(([dataType, ortType]) => [ortType, dataType] as const),
);

/** onnxruntime's type name for an ONNX element type, or undefined when onnxruntime-node cannot hold it (BFLOAT16, FLOAT8*, complex). */
export function ortTypeOf(dataType: number): ort.Tensor.Type | undefined {
  return ORT_TYPE_BY_DATA_TYPE.get(dataType);
}

/** The ONNX element type of an onnxruntime type name, or undefined for names it does not know. */
export function dataTypeOfOrtType(ortType: string): number | undefined {
  return DATA_TYPE_BY_ORT_TYPE.get(ortType);
}

/** Wraps a TensorValue as an onnxruntime tensor, sharing its buffer (4-bit types are packed into a new one). */
export function toOrtTensor(value: TensorValue): ort.Tensor {
  const type = ORT_TYPE_BY_DATA_TYPE.get(value.dataType);
  if (type === undefined) {
    throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime-node cannot hold tensors of element type ${value.dataType}`, {
      context: { dataType: value.dataType },
    });
  }
  const data = value.data;
  if (type === 'uint4' || type === 'int4') {
    return new ort.Tensor(type, pack4Bit(data as Uint8Array | Int8Array), value.dims);
  }
  // The constructor checks that the array class matches the type and its length matches dims.
  return new ort.Tensor(type, data, value.dims);
}

/** Reads an onnxruntime tensor as a TensorValue, sharing its buffer (4-bit types are unpacked into a new one). */
export function fromOrtTensor(tensor: ort.Tensor): TensorValue {
  const dataType = DATA_TYPE_BY_ORT_TYPE.get(tensor.type);
  if (dataType === undefined) {
    throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime returned a tensor of unsupported type ${tensor.type}`, {
      context: { ortType: tensor.type },
    });
  }
  const dims = Array.from(tensor.dims);
  if (tensor.type === 'uint4' || tensor.type === 'int4') {
    return { dataType, dims, data: unpack4Bit(tensor.data as Uint8Array, tensor.size, tensor.type === 'int4') };
  }
  return { dataType, dims, data: tensor.data };
}
