/**
 * The ONNX model IR: decode/encode, typed tensor access, graph queries and edits,
 * builders and validation. Everything else in edgevolve reaches models through here.
 */
export * from './types.ts';
export { int64ToNumber, int64ToNumberClamped, int64ToBigInt, int64FromBigInt } from './int64.ts';
export { DEFAULT_ONNX_LIMITS, resolveLimits, checkedElementCount, type OnnxLimits } from './limits.ts';
export {
  decodeModel,
  encodeModel,
  readModelFile,
  writeModelFile,
  writeFileAtomic,
  onnxSchema,
  modelType,
  decodeTensor,
  type DecodeOptions,
  type LoadedModel,
} from './codec.ts';
export { elementTypeInfo, dataTypeName, rawByteLength, isPacked4Bit, allElementTypes, type ElementTypeInfo, type TypedArrayKind } from './dtype.ts';
export * from './float16.ts';
export * from './float8.ts';
export {
  readTensor,
  tensorToFloat32,
  valueToFloat32,
  makeTensor,
  tensorProblems,
  tensorDims,
  isExternal,
  hasRawData,
  pack4Bit,
  unpack4Bit,
  type TensorData,
  type NumericTensorData,
  type TensorValue,
  type TensorInput,
  type ReadTensorOptions,
} from './tensor.ts';
export { resolveExternalData, readExternalData, externalDataEntries, type ExternalDataLocation } from './external.ts';
export * from './builder.ts';
export * from './graph.ts';
export { validateModel, assertValidModel, type Finding, type ValidateOptions } from './validate.ts';
