/**
 * KServe v2 tensor datatypes and the ONNX element types they map to, with the byte
 * size of one element in the binary-data extension (BYTES elements are
 * length-prefixed, so they have none).
 * https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md#tensor-data-types
 */
import { DataType } from '../onnx/types.ts';

export type KserveDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

interface DatatypeInfo {
  readonly dataType: number;
  /** Bytes per element in binary data; undefined for BYTES. */
  readonly elementBytes: number | undefined;
}

const BY_KSERVE: Readonly<Record<KserveDatatype, DatatypeInfo>> = {
  BOOL: { dataType: DataType.BOOL, elementBytes: 1 },
  UINT8: { dataType: DataType.UINT8, elementBytes: 1 },
  UINT16: { dataType: DataType.UINT16, elementBytes: 2 },
  UINT32: { dataType: DataType.UINT32, elementBytes: 4 },
  UINT64: { dataType: DataType.UINT64, elementBytes: 8 },
  INT8: { dataType: DataType.INT8, elementBytes: 1 },
  INT16: { dataType: DataType.INT16, elementBytes: 2 },
  INT32: { dataType: DataType.INT32, elementBytes: 4 },
  INT64: { dataType: DataType.INT64, elementBytes: 8 },
  FP16: { dataType: DataType.FLOAT16, elementBytes: 2 },
  FP32: { dataType: DataType.FLOAT, elementBytes: 4 },
  FP64: { dataType: DataType.DOUBLE, elementBytes: 8 },
  BYTES: { dataType: DataType.STRING, elementBytes: undefined },
};

const BY_ONNX: ReadonlyMap<number, KserveDatatype> = new Map(
  (Object.entries(BY_KSERVE) as [KserveDatatype, DatatypeInfo][]).map(([name, info]) => [info.dataType, name]),
);

export const KSERVE_DATATYPES: readonly KserveDatatype[] = Object.keys(BY_KSERVE) as KserveDatatype[];

export function kserveDatatypeInfo(name: string): DatatypeInfo | undefined {
  return Object.hasOwn(BY_KSERVE, name) ? BY_KSERVE[name as KserveDatatype] : undefined;
}

/** The KServe name of an ONNX element type, or undefined when the protocol has none (BFLOAT16, FLOAT8, complex...). */
export function kserveDatatypeOf(dataType: number): KserveDatatype | undefined {
  return BY_ONNX.get(dataType);
}
