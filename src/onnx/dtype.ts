import { DataType } from './types.ts';

/** The TypedArray a decoded tensor of one element type lives in (see `readTensor`). */
export type TypedArrayKind =
  | 'Float32Array'
  | 'Float64Array'
  | 'Int8Array'
  | 'Uint8Array'
  | 'Int16Array'
  | 'Uint16Array'
  | 'Int32Array'
  | 'Uint32Array'
  | 'BigInt64Array'
  | 'BigUint64Array'
  | 'string[]';

/** What one element type is: its ONNX name, its storage size in bits (0 for strings), and its decoded array kind. */
export interface ElementTypeInfo {
  readonly dataType: number;
  readonly name: string;
  /** Bits per element in raw_data; 4 for the packed 4-bit types, 0 for STRING (variable). */
  readonly bits: number;
  readonly typedArray: TypedArrayKind;
  /** Array entries per element: 2 for the complex types (interleaved real, imaginary), else 1. */
  readonly lanes: number;
  /** Which typed field of TensorProto holds the data when raw_data is not used (ONNX spec, onnx.proto). */
  readonly typedField: 'floatData' | 'int32Data' | 'int64Data' | 'doubleData' | 'uint64Data' | 'stringData';
}

function info(
  dataType: number,
  name: string,
  bits: number,
  typedArray: TypedArrayKind,
  typedField: ElementTypeInfo['typedField'],
  lanes = 1,
): ElementTypeInfo {
  return Object.freeze({ dataType, name, bits, typedArray, lanes, typedField });
}

const TABLE: ReadonlyMap<number, ElementTypeInfo> = new Map(
  [
    info(DataType.FLOAT, 'FLOAT', 32, 'Float32Array', 'floatData'),
    info(DataType.UINT8, 'UINT8', 8, 'Uint8Array', 'int32Data'),
    info(DataType.INT8, 'INT8', 8, 'Int8Array', 'int32Data'),
    info(DataType.UINT16, 'UINT16', 16, 'Uint16Array', 'int32Data'),
    info(DataType.INT16, 'INT16', 16, 'Int16Array', 'int32Data'),
    info(DataType.INT32, 'INT32', 32, 'Int32Array', 'int32Data'),
    info(DataType.INT64, 'INT64', 64, 'BigInt64Array', 'int64Data'),
    info(DataType.STRING, 'STRING', 0, 'string[]', 'stringData'),
    info(DataType.BOOL, 'BOOL', 8, 'Uint8Array', 'int32Data'),
    info(DataType.FLOAT16, 'FLOAT16', 16, 'Uint16Array', 'int32Data'),
    info(DataType.DOUBLE, 'DOUBLE', 64, 'Float64Array', 'doubleData'),
    info(DataType.UINT32, 'UINT32', 32, 'Uint32Array', 'uint64Data'),
    info(DataType.UINT64, 'UINT64', 64, 'BigUint64Array', 'uint64Data'),
    info(DataType.COMPLEX64, 'COMPLEX64', 64, 'Float32Array', 'floatData', 2),
    info(DataType.COMPLEX128, 'COMPLEX128', 128, 'Float64Array', 'doubleData', 2),
    info(DataType.BFLOAT16, 'BFLOAT16', 16, 'Uint16Array', 'int32Data'),
    info(DataType.FLOAT8E4M3FN, 'FLOAT8E4M3FN', 8, 'Uint8Array', 'int32Data'),
    info(DataType.FLOAT8E4M3FNUZ, 'FLOAT8E4M3FNUZ', 8, 'Uint8Array', 'int32Data'),
    info(DataType.FLOAT8E5M2, 'FLOAT8E5M2', 8, 'Uint8Array', 'int32Data'),
    info(DataType.FLOAT8E5M2FNUZ, 'FLOAT8E5M2FNUZ', 8, 'Uint8Array', 'int32Data'),
    info(DataType.UINT4, 'UINT4', 4, 'Uint8Array', 'int32Data'),
    info(DataType.INT4, 'INT4', 4, 'Int8Array', 'int32Data'),
    info(DataType.FLOAT4E2M1, 'FLOAT4E2M1', 4, 'Uint8Array', 'int32Data'),
  ].map((i) => [i.dataType, i] as const),
);

/** The element type table entry, or undefined for UNDEFINED and unknown numbers. */
export function elementTypeInfo(dataType: number): ElementTypeInfo | undefined {
  return TABLE.get(dataType);
}

/** `FLOAT`, `INT64`, ...; `UNKNOWN(42)` for numbers outside the table. */
export function dataTypeName(dataType: number): string {
  if (dataType === DataType.UNDEFINED) return 'UNDEFINED';
  return TABLE.get(dataType)?.name ?? `UNKNOWN(${dataType})`;
}

/** True for the element types stored two per byte (INT4, UINT4, FLOAT4E2M1). */
export function isPacked4Bit(dataType: number): boolean {
  return TABLE.get(dataType)?.bits === 4;
}

/** All element types of the table, in DataType order. */
export function allElementTypes(): readonly ElementTypeInfo[] {
  return [...TABLE.values()].sort((a, b) => a.dataType - b.dataType);
}

/**
 * Bytes that `elements` elements of `dataType` occupy in raw_data, or undefined for
 * STRING/unknown types. Exact for counts below 2^53 (callers cap counts first).
 */
export function rawByteLength(dataType: number, elements: number): number | undefined {
  const entry = TABLE.get(dataType);
  if (entry === undefined || entry.bits === 0) return undefined;
  return entry.bits === 4 ? Math.ceil(elements / 2) : (elements * entry.bits) / 8;
}
