/**
 * Typed access to TensorProto data: raw_data (little-endian), the typed fields
 * (float_data, int32_data, ...) and external files, for every element type.
 */
import os from 'node:os';
import { EdgevolveError } from '../errors/index.ts';
import { elementTypeInfo, dataTypeName, rawByteLength, type ElementTypeInfo } from './dtype.ts';
import { resolveExternalData, readExternalData } from './external.ts';
import { bfloat16ArrayToFloat32, float16ArrayToFloat32 } from './float16.ts';
import { float4e2m1BitsToFloat32, float8ArrayToFloat32, isFloat8 } from './float8.ts';
import { int64ToNumberClamped } from './int64.ts';
import { checkedElementCount, resolveLimits, type OnnxLimits } from './limits.ts';
import { DataType, type Int64, type TensorProto } from './types.ts';

/** The decoded elements of a tensor; see `readTensor` for which array each element type gets. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A tensor's element type, dims and elements, decoded. */
/** The numeric subset of TensorData (every element type but STRING). */
export type NumericTensorData = Exclude<TensorData, string[]>;

export interface TensorValue {
  dataType: number;
  dims: number[];
  data: TensorData;
}

export interface ReadTensorOptions {
  /** The model's directory, for external data; without it external data is refused. */
  baseDir?: string;
  limits?: Partial<OnnxLimits>;
}

// raw_data is little-endian by the ONNX spec; typed-array views use host order.
// Every board edgevolve targets (ARM, x86) is little-endian; refuse rather than misread.
const HOST_IS_LITTLE_ENDIAN = os.endianness() === 'LE';

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function tensorError(code: 'E_ONNX_TENSOR' | 'E_ONNX_UNSUPPORTED' | 'E_ONNX_TOO_LARGE', tensor: TensorProto, message: string): EdgevolveError {
  const name = tensor.name ?? '';
  return new EdgevolveError(code, `tensor '${name}' (${dataTypeName(tensor.dataType ?? 0)}): ${message}`, {
    context: { tensor: name, dataType: tensor.dataType ?? 0 },
  });
}

/** True when the tensor keeps its data in a file beside the model. */
export function isExternal(tensor: TensorProto): boolean {
  return tensor.dataLocation === 1;
}

/** True when the tensor's data is in raw_data (set and non-empty). */
export function hasRawData(tensor: TensorProto): boolean {
  return tensor.rawData !== undefined && tensor.rawData !== null && tensor.rawData.length > 0;
}

/** Dims as numbers (int64 values beyond 2^53 clamp; `checkedElementCount` rejects them). */
export function tensorDims(tensor: TensorProto): number[] {
  return (tensor.dims ?? []).map((d) => int64ToNumberClamped(d));
}

function typedFieldLength(tensor: TensorProto, info: ElementTypeInfo): number {
  const field = tensor[info.typedField];
  return field?.length ?? 0;
}

/** How many typed-field entries `elements` elements take: 4-bit types pack two per int32_data entry. */
function expectedTypedLength(info: ElementTypeInfo, elements: number): number {
  return info.bits === 4 ? Math.ceil(elements / 2) : elements * info.lanes;
}

/**
 * Describes what is wrong with a tensor's data without decoding it (for validation):
 * unknown type, bad dims, caps, data size disagreeing with dims, external data problems.
 * Returns the problems as errors, empty when the tensor is sound.
 */
export function tensorProblems(tensor: TensorProto, opts: ReadTensorOptions = {}): EdgevolveError[] {
  try {
    const { info, elements } = checkHeader(tensor, resolveLimits(opts.limits));
    locateData(tensor, info, elements, opts, false);
    return [];
  } catch (err) {
    if (err instanceof EdgevolveError) return [err];
    throw err;
  }
}

function checkHeader(tensor: TensorProto, limits: OnnxLimits): { info: ElementTypeInfo; elements: number } {
  const dataType = tensor.dataType ?? 0;
  const info = elementTypeInfo(dataType);
  if (info === undefined) {
    throw tensorError(dataType === 0 ? 'E_ONNX_TENSOR' : 'E_ONNX_UNSUPPORTED', tensor, `element type ${dataType} is not a known ONNX data type`);
  }
  const count = checkedElementCount(tensor.dims ?? [], limits);
  if (count.problem !== undefined) throw tensorError(count.problem.code, tensor, count.problem.message);
  const bytes = rawByteLength(dataType, count.elements);
  if (bytes !== undefined && bytes > limits.maxTensorBytes) {
    throw tensorError('E_ONNX_TOO_LARGE', tensor, `${bytes} bytes exceed limits.maxTensorBytes (${limits.maxTensorBytes})`);
  }
  return { info, elements: count.elements };
}

type DataSource = { kind: 'raw'; bytes: Uint8Array } | { kind: 'typed' } | { kind: 'empty' };

/** Finds where the data is and checks its size; reads external files only when `read`. */
function locateData(tensor: TensorProto, info: ElementTypeInfo, elements: number, opts: ReadTensorOptions, read: boolean): DataSource {
  const expectedBytes = rawByteLength(info.dataType, elements);
  if (isExternal(tensor)) {
    if (expectedBytes === undefined) throw tensorError('E_ONNX_TENSOR', tensor, 'STRING tensors cannot use external data');
    const where = resolveExternalData(tensor, opts.baseDir);
    if (where.length !== expectedBytes) {
      throw tensorError('E_ONNX_TENSOR', tensor, `external data has ${where.length} bytes, dims [${tensorDims(tensor).join(', ')}] need ${expectedBytes}`);
    }
    return read ? { kind: 'raw', bytes: readExternalData(tensor, where) } : { kind: 'empty' };
  }
  if (hasRawData(tensor)) {
    const raw = tensor.rawData!;
    if (expectedBytes === undefined) throw tensorError('E_ONNX_TENSOR', tensor, 'STRING tensors must use string_data, not raw_data');
    if (raw.length !== expectedBytes) {
      throw tensorError('E_ONNX_TENSOR', tensor, `raw_data has ${raw.length} bytes, dims [${tensorDims(tensor).join(', ')}] need ${expectedBytes}`);
    }
    return { kind: 'raw', bytes: raw };
  }
  const have = typedFieldLength(tensor, info);
  const want = expectedTypedLength(info, elements);
  if (have === 0 && want === 0) return { kind: 'empty' };
  if (have !== want) {
    throw tensorError('E_ONNX_TENSOR', tensor, `${info.typedField} has ${have} entries, dims [${tensorDims(tensor).join(', ')}] need ${want}`);
  }
  return { kind: 'typed' };
}

/**
 * Decodes a tensor's elements. FLOAT→Float32Array, DOUBLE→Float64Array,
 * INT8→Int8Array, UINT8/BOOL→Uint8Array, INT16→Int16Array, UINT16→Uint16Array,
 * INT32→Int32Array, UINT32→Uint32Array, INT64→BigInt64Array, UINT64→BigUint64Array,
 * FLOAT16/BFLOAT16→Uint16Array of bits, FLOAT8*→Uint8Array of bits,
 * INT4→Int8Array and UINT4/FLOAT4E2M1→Uint8Array (one element per entry),
 * COMPLEX64/128→Float32Array/Float64Array interleaved (re, im), STRING→string[].
 *
 * raw_data that is suitably aligned is returned as a VIEW of the model bytes (no
 * copy): writing to it changes the model. Everything else is a fresh array.
 */
export function readTensor(tensor: TensorProto, opts: ReadTensorOptions = {}): TensorValue {
  const { info, elements } = checkHeader(tensor, resolveLimits(opts.limits));
  const dims = tensorDims(tensor);
  const source = locateData(tensor, info, elements, opts, true);
  let data: TensorData;
  switch (source.kind) {
    case 'raw':
      data = fromRaw(tensor, info, elements, source.bytes);
      break;
    case 'typed':
      data = fromTypedField(tensor, info, elements);
      break;
    case 'empty':
      data = emptyArray(info, elements, tensor);
      break;
  }
  return { dataType: info.dataType, dims, data };
}

function emptyArray(info: ElementTypeInfo, elements: number, tensor: TensorProto): TensorData {
  if (elements !== 0) throw tensorError('E_ONNX_TENSOR', tensor, `has no data for ${elements} elements`);
  return info.typedArray === 'string[]' ? [] : allocate(info, 0);
}

function allocate(info: ElementTypeInfo, length: number): Exclude<TensorData, string[]> {
  switch (info.typedArray) {
    case 'Float32Array':
      return new Float32Array(length);
    case 'Float64Array':
      return new Float64Array(length);
    case 'Int8Array':
      return new Int8Array(length);
    case 'Uint8Array':
      return new Uint8Array(length);
    case 'Int16Array':
      return new Int16Array(length);
    case 'Uint16Array':
      return new Uint16Array(length);
    case 'Int32Array':
      return new Int32Array(length);
    case 'Uint32Array':
      return new Uint32Array(length);
    case 'BigInt64Array':
      return new BigInt64Array(length);
    case 'BigUint64Array':
      return new BigUint64Array(length);
    case 'string[]':
      throw new EdgevolveError('E_INTERNAL', 'allocate() called for STRING');
  }
}

function viewOf(info: ElementTypeInfo, buffer: ArrayBufferLike, byteOffset: number, length: number): Exclude<TensorData, string[]> {
  switch (info.typedArray) {
    case 'Float32Array':
      return new Float32Array(buffer, byteOffset, length);
    case 'Float64Array':
      return new Float64Array(buffer, byteOffset, length);
    case 'Int8Array':
      return new Int8Array(buffer, byteOffset, length);
    case 'Uint8Array':
      return new Uint8Array(buffer, byteOffset, length);
    case 'Int16Array':
      return new Int16Array(buffer, byteOffset, length);
    case 'Uint16Array':
      return new Uint16Array(buffer, byteOffset, length);
    case 'Int32Array':
      return new Int32Array(buffer, byteOffset, length);
    case 'Uint32Array':
      return new Uint32Array(buffer, byteOffset, length);
    case 'BigInt64Array':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'BigUint64Array':
      return new BigUint64Array(buffer, byteOffset, length);
    case 'string[]':
      throw new EdgevolveError('E_INTERNAL', 'viewOf() called for STRING');
  }
}

function fromRaw(tensor: TensorProto, info: ElementTypeInfo, elements: number, raw: Uint8Array): TensorData {
  if (info.bits === 4) return unpack4Bit(raw, elements, info.dataType === DataType.INT4);
  if (!HOST_IS_LITTLE_ENDIAN && info.bits > 8) {
    throw tensorError('E_ONNX_UNSUPPORTED', tensor, 'multi-byte tensors need a little-endian host');
  }
  const length = elements * info.lanes;
  const laneBytes = info.bits / 8 / info.lanes;
  if (raw.byteOffset % laneBytes === 0) return viewOf(info, raw.buffer, raw.byteOffset, length);
  // Unaligned inside the model buffer: copy once into a fresh, aligned buffer.
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return viewOf(info, copy.buffer, 0, length);
}

/** Two elements per byte, the first in the low nibble (ONNX spec); INT4 sign-extended. */
export function unpack4Bit(packed: Uint8Array, elements: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(elements) : new Uint8Array(elements);
  for (let i = 0; i < elements; i++) {
    const byte = packed[i >> 1]!;
    const nibble = i & 1 ? byte >> 4 : byte & 0xf;
    out[i] = signed ? (nibble << 28) >> 28 : nibble;
  }
  return out;
}

/** Packs one 4-bit element per entry into two per byte (low nibble first). */
export function pack4Bit(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const nibble = values[i]! & 0xf;
    out[i >> 1]! |= i & 1 ? nibble << 4 : nibble;
  }
  return out;
}

function int64EntryToBigInt(value: Int64, unsigned: boolean): bigint {
  if (typeof value === 'number') return unsigned ? BigInt.asUintN(64, BigInt(value)) : BigInt(value);
  const high = BigInt(value.high);
  const low = BigInt(value.low >>> 0);
  const combined = (high << 32n) | low;
  return unsigned ? BigInt.asUintN(64, combined) : BigInt.asIntN(64, combined);
}

function fromTypedField(tensor: TensorProto, info: ElementTypeInfo, elements: number): TensorData {
  switch (info.typedField) {
    case 'floatData':
      return Float32Array.from(tensor.floatData ?? []);
    case 'doubleData':
      return Float64Array.from(tensor.doubleData ?? []);
    case 'stringData':
      // Hand-built tensors sometimes carry JS strings where the proto has bytes; take them as they are.
      return (tensor.stringData ?? []).map((bytes) => (typeof bytes === 'string' ? bytes : utf8.decode(bytes)));
    case 'int64Data': {
      const src = tensor.int64Data ?? [];
      const out = new BigInt64Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = int64EntryToBigInt(src[i]!, false);
      return out;
    }
    case 'uint64Data': {
      const src = tensor.uint64Data ?? [];
      if (info.dataType === DataType.UINT32) {
        const out = new Uint32Array(src.length);
        for (let i = 0; i < src.length; i++) {
          const v = src[i]!;
          out[i] = typeof v === 'number' ? v : v.low >>> 0;
        }
        return out;
      }
      const out = new BigUint64Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = int64EntryToBigInt(src[i]!, true);
      return out;
    }
    case 'int32Data': {
      const src = tensor.int32Data ?? [];
      if (info.bits === 4) {
        // Two 4-bit elements per int32 entry, in its low byte.
        const bytes = new Uint8Array(src.length);
        for (let i = 0; i < src.length; i++) bytes[i] = src[i]! & 0xff;
        return unpack4Bit(bytes, elements, info.dataType === DataType.INT4);
      }
      // The TypedArray constructor applies the same truncation ONNX's readers do (low bits of each int32).
      const out = allocate(info, src.length) as Exclude<TensorData, string[] | BigInt64Array | BigUint64Array>;
      for (let i = 0; i < src.length; i++) out[i] = src[i]!;
      return out;
    }
  }
}

/**
 * Any numeric tensor as float32 values: float16, bfloat16, float8 and float4 decoded,
 * integers converted (int64 beyond 2^24 loses precision, as a float32 must). Always a
 * fresh array the caller owns. STRING and COMPLEX tensors are refused (E_ONNX_UNSUPPORTED).
 */
export function tensorToFloat32(tensor: TensorProto, opts: ReadTensorOptions = {}): Float32Array {
  const value = readTensor(tensor, opts);
  return valueToFloat32(value, tensor);
}

/** A decoded TensorValue as float32 values (see `tensorToFloat32`). */
export function valueToFloat32(value: TensorValue, tensor: TensorProto = {}): Float32Array {
  const { data, dataType } = value;
  if (Array.isArray(data) || dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128) {
    throw tensorError('E_ONNX_UNSUPPORTED', { ...tensor, dataType }, 'cannot be converted to float32');
  }
  if (dataType === DataType.FLOAT16) return float16ArrayToFloat32(data as Uint16Array);
  if (dataType === DataType.BFLOAT16) return bfloat16ArrayToFloat32(data as Uint16Array);
  if (isFloat8(dataType)) return float8ArrayToFloat32(data as Uint8Array, dataType);
  if (dataType === DataType.FLOAT4E2M1) {
    const src = data as Uint8Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = float4e2m1BitsToFloat32(src[i]!);
    return out;
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]!);
    return out;
  }
  return Float32Array.from(data);
}

/** Input accepted by `makeTensor`: a typed array, plain numbers/bigints, or strings for STRING. */
export type TensorInput = TensorData | readonly number[] | readonly bigint[] | readonly string[];

/**
 * Builds a TensorProto with its data in raw_data (strings in string_data). Data uses
 * the same representation `readTensor` returns: FLOAT16/BFLOAT16/FLOAT8 as raw bits,
 * 4-bit types one element per entry (packed here). The element count must match dims.
 */
export function makeTensor(name: string, dataType: number, dims: readonly number[], data: TensorInput): TensorProto {
  const info = elementTypeInfo(dataType);
  if (info === undefined) throw new EdgevolveError('E_ONNX_UNSUPPORTED', `makeTensor '${name}': unknown element type ${dataType}`);
  const elements = dims.reduce((a, b) => a * b, 1);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new EdgevolveError('E_ONNX_TENSOR', `makeTensor '${name}': dims [${dims.join(', ')}] must be non-negative integers`);
  }
  const expectedLength = elements * info.lanes;
  if (data.length !== expectedLength) {
    throw new EdgevolveError('E_ONNX_TENSOR', `makeTensor '${name}': ${data.length} values for dims [${dims.join(', ')}] (need ${expectedLength})`);
  }
  const tensor: TensorProto = { name, dataType, dims: [...dims] };
  if (info.typedArray === 'string[]') {
    tensor.stringData = (data as readonly unknown[]).map((s) => utf8Encoder.encode(String(s)));
    return tensor;
  }
  if (info.bits === 4) {
    tensor.rawData = pack4Bit(data as unknown as ArrayLike<number>);
    return tensor;
  }
  const typed = allocate(info, expectedLength);
  if (typed instanceof BigInt64Array || typed instanceof BigUint64Array) {
    for (let i = 0; i < expectedLength; i++) {
      const v = (data as ArrayLike<number | bigint>)[i]!;
      typed[i] = typeof v === 'bigint' ? v : BigInt(v);
    }
  } else {
    for (let i = 0; i < expectedLength; i++) typed[i] = Number((data as ArrayLike<number | bigint>)[i]!);
  }
  if (!HOST_IS_LITTLE_ENDIAN && info.bits > 8) {
    throw new EdgevolveError('E_ONNX_UNSUPPORTED', `makeTensor '${name}': multi-byte tensors need a little-endian host`);
  }
  tensor.rawData = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  return tensor;
}
