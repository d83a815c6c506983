/**
 * Conversion between the IR's TensorValue and onnxruntime-node's Tensor.
 *
 * Both sides keep element data in the same TypedArrays (FLOAT16 as raw Uint16 bits,
 * BOOL as Uint8, INT64 as BigInt64, STRING as string[]), so conversion wraps the
 * existing buffer instead of copying.
 *
 * INT4/UINT4 are refused although onnxruntime-common declares them: the 1.30 node
 * binding rejects them as feeds ("Tensor.type is not supported: int4") and aborts the
 * whole process (V8 out-of-memory in OrtValueToNapiValue) when a model returns one.
 */
import * as ort from 'onnxruntime-node';
import { EdgevolveError } from '../errors/index.ts';
import { DataType } from '../onnx/types.ts';
import { dataTypeName, type TensorValue } from '../onnx/index.ts';

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
]);

/** Also names the 4-bit types, which appear in session metadata though tensors of them cannot cross the binding. */
const DATA_TYPE_BY_ORT_TYPE: ReadonlyMap<string, number> = new Map<string, number>([
  ...[...ORT_TYPE_BY_DATA_TYPE].map(([dataType, ortType]) => [ortType, dataType] as const),
  ['uint4', DataType.UINT4],
  ['int4', DataType.INT4],
]);

/** True when onnxruntime-node can pass tensors of this ONNX element type in and out. */
export function isPassableDataType(dataType: number): boolean {
  return ORT_TYPE_BY_DATA_TYPE.has(dataType);
}

/** onnxruntime's type name for an ONNX element type, or undefined when onnxruntime-node cannot pass it (BFLOAT16, FLOAT8*, 4-bit, complex). */
export function ortTypeOf(dataType: number): ort.Tensor.Type | undefined {
  return ORT_TYPE_BY_DATA_TYPE.get(dataType);
}

/** The ONNX element type of an onnxruntime type name, or undefined for names it does not know. */
export function dataTypeOfOrtType(ortType: string): number | undefined {
  return DATA_TYPE_BY_ORT_TYPE.get(ortType);
}

/** Wraps a TensorValue as an onnxruntime tensor, sharing its buffer. */
export function toOrtTensor(value: TensorValue): ort.Tensor {
  const type = ORT_TYPE_BY_DATA_TYPE.get(value.dataType);
  if (type === undefined) {
    throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime-node cannot pass tensors of element type ${dataTypeName(value.dataType)}`, {
      context: { dataType: value.dataType },
    });
  }
  // The constructor checks that the array class matches the type and its length matches dims.
  return new ort.Tensor(type, value.data, value.dims);
}

/** Reads an onnxruntime tensor as a TensorValue, sharing its buffer. */
export function fromOrtTensor(tensor: ort.Tensor): TensorValue {
  const dataType = DATA_TYPE_BY_ORT_TYPE.get(tensor.type);
  if (dataType === undefined || !ORT_TYPE_BY_DATA_TYPE.has(dataType)) {
    throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `onnxruntime returned a tensor of unsupported type ${tensor.type}`, {
      context: { ortType: tensor.type },
    });
  }
  const data: TensorValue['data'] | ArrayBufferView = tensor.data;
  // Where the engine has Float16Array (Node 24+), onnxruntime-common returns float16
  // data in one; the IR keeps FLOAT16 as raw Uint16 bits, so view the same bytes.
  if (tensor.type === 'float16' && !(data instanceof Uint16Array) && ArrayBuffer.isView(data)) {
    return { dataType, dims: Array.from(tensor.dims), data: new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) };
  }
  return { dataType, dims: Array.from(tensor.dims), data: tensor.data };
}
