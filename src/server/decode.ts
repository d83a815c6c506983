/**
 * Decodes a KServe v2 inference request (JSON, optionally followed by the binary-data
 * extension's raw tensors) into onnxruntime feeds. Every problem is an
 * E_SERVER_BAD_REQUEST naming the field. Element data goes straight into TypedArrays;
 * aligned binary tensors are viewed in place, not copied.
 * https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
 */
import { EdgevolveError } from '../errors/index.ts';
import { float32ToFloat16Bits } from '../onnx/float16.ts';
import type { TensorData, TensorValue } from '../onnx/tensor.ts';
import { DataType } from '../onnx/types.ts';
import { kserveDatatypeInfo } from './datatypes.ts';

/** An output the client asked for, and whether it wants it as binary data. */
export interface RequestedOutput {
  readonly name: string;
  /** True/false when the client said so for this output; undefined to follow `binaryDataOutput`. */
  readonly binary: boolean | undefined;
}

export interface DecodedRequest {
  readonly id: string | undefined;
  readonly feeds: Record<string, TensorValue>;
  /** Undefined when the request names no outputs (all are returned). */
  readonly outputs: readonly RequestedOutput[] | undefined;
  /** Request-level `binary_data_output`: every output as binary unless it says otherwise. */
  readonly binaryDataOutput: boolean;
}

/** Largest element count of one request tensor; the body limit bounds it too, this keeps shapes honest. */
const MAX_ELEMENTS = 2 ** 31 - 1;

const utf8 = new TextDecoder('utf-8');

/**
 * `jsonLength` is the `Inference-Header-Content-Length` header (binary-data extension):
 * the JSON is the first `jsonLength` bytes and the tensors follow; absent, the whole body is JSON.
 */
export function decodeInferenceRequest(body: Buffer, jsonLength: number | undefined): DecodedRequest {
  const { parsed, jsonEnd } = parseJsonHead(body, jsonLength, 'request');
  if (!isObject(parsed)) throw bad('the request body must be a JSON object with an "inputs" array');
  const id = parsed.id;
  if (id !== undefined && typeof id !== 'string') throw bad('"id" must be a string');
  const parameters = parsed.parameters;
  if (parameters !== undefined && !isObject(parameters)) throw bad('"parameters" must be an object');
  const binaryDataOutput = parameters?.binary_data_output === true;

  const feeds = decodeTensors(parsed.inputs, 'inputs', 'input', body, jsonEnd, jsonLength !== undefined);
  return { id, feeds, outputs: decodeOutputs(parsed.outputs), binaryDataOutput };
}

/**
 * Decodes a list of KServe tensors (request inputs or response outputs): JSON `data`,
 * or `binary_data_size` bytes taken in order from the body after the JSON.
 */
function decodeTensors(list: unknown, field: string, noun: string, body: Buffer, jsonEnd: number, hasBinary: boolean): Record<string, TensorValue> {
  if (!Array.isArray(list) || list.length === 0) throw bad(`"${field}" must be a non-empty array`);
  const tensors: Record<string, TensorValue> = {};
  let binaryOffset = jsonEnd;
  for (let i = 0; i < list.length; i++) {
    const entry: unknown = list[i];
    if (!isObject(entry)) throw bad(`${field}[${i}] must be an object`);
    const name = entry.name;
    if (typeof name !== 'string' || name.length === 0) throw bad(`${field}[${i}].name must be a non-empty string`);
    if (Object.hasOwn(tensors, name)) throw bad(`${noun} '${name}' appears twice`);
    const where = `${noun} '${name}'`;
    const datatype = entry.datatype;
    const info = typeof datatype === 'string' ? kserveDatatypeInfo(datatype) : undefined;
    if (info === undefined) throw bad(`${where}: datatype ${JSON.stringify(datatype)} is not one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES`);
    const dims = decodeShape(entry.shape, where);
    const count = dims.reduce((a, b) => a * b, 1);
    if (count > MAX_ELEMENTS) throw bad(`${where}: shape [${dims.join(', ')}] has too many elements`);

    const parameters = entry.parameters;
    if (parameters !== undefined && !isObject(parameters)) throw bad(`${where}: "parameters" must be an object`);
    const binarySize = parameters?.binary_data_size;
    let data: TensorData;
    if (binarySize !== undefined) {
      if (!hasBinary) throw bad(`${where} has binary_data_size but the message has no Inference-Header-Content-Length header`);
      if (typeof binarySize !== 'number' || !Number.isSafeInteger(binarySize) || binarySize < 0) throw bad(`${where}: binary_data_size must be a non-negative integer`);
      if (entry.data !== undefined) throw bad(`${where} has both "data" and binary_data_size`);
      if (binaryOffset + binarySize > body.length) {
        throw bad(`${where}: binary_data_size ${binarySize} runs past the end of the body (${body.length - binaryOffset} bytes left)`);
      }
      data = decodeBinary(body.subarray(binaryOffset, binaryOffset + binarySize), info.dataType, info.elementBytes, count, where);
      binaryOffset += binarySize;
    } else {
      if (entry.data === undefined) throw bad(`${where} has no "data" (and no binary_data_size)`);
      data = decodeJsonData(entry.data, info.dataType, count, Math.max(1, dims.length), where);
    }
    tensors[name] = { dataType: info.dataType, dims, data };
  }
  if (binaryOffset !== body.length) {
    throw bad(`the body has ${body.length - binaryOffset} bytes after the last binary ${noun} (binary_data_size values do not add up)`);
  }
  return tensors;
}

/** A decoded KServe v2 inference response. */
export interface DecodedResponse {
  readonly modelName: string;
  readonly modelVersion: string | undefined;
  readonly id: string | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly outputs: Record<string, TensorValue>;
}

/** Decodes a KServe v2 inference response (the client side); problems are E_SERVER_BAD_REQUEST naming the field. */
export function decodeInferenceResponse(body: Buffer, jsonLength: number | undefined): DecodedResponse {
  const { parsed, jsonEnd } = parseJsonHead(body, jsonLength, 'response');
  if (!isObject(parsed) || typeof parsed.model_name !== 'string') throw bad('the response is not a KServe v2 inference response (no "model_name")');
  const parameters = isObject(parsed.parameters) ? parsed.parameters : {};
  return {
    modelName: parsed.model_name,
    modelVersion: typeof parsed.model_version === 'string' ? parsed.model_version : undefined,
    id: typeof parsed.id === 'string' ? parsed.id : undefined,
    parameters,
    outputs: decodeTensors(parsed.outputs, 'outputs', 'output', body, jsonEnd, jsonLength !== undefined),
  };
}

function decodeShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape)) throw bad(`${where}: "shape" must be an array of non-negative integers`);
  const dims: number[] = new Array<number>(shape.length);
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw bad(`${where}: shape[${i}] is ${JSON.stringify(d)}, not a non-negative integer`);
    dims[i] = d;
  }
  return dims;
}

function decodeOutputs(outputs: unknown): RequestedOutput[] | undefined {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw bad('"outputs" must be an array');
  const seen = new Set<string>();
  return outputs.map((output: unknown, i) => {
    if (!isObject(output) || typeof output.name !== 'string' || output.name.length === 0) throw bad(`outputs[${i}] must be an object with a "name"`);
    if (seen.has(output.name)) throw bad(`output '${output.name}' is requested twice`);
    seen.add(output.name);
    const parameters = output.parameters;
    if (parameters !== undefined && !isObject(parameters)) throw bad(`output '${output.name}': "parameters" must be an object`);
    const binary = parameters?.binary_data;
    if (binary !== undefined && typeof binary !== 'boolean') throw bad(`output '${output.name}': binary_data must be true or false`);
    return { name: output.name, binary };
  });
}

/** Allocates the TypedArray of an element type (FLOAT16 as raw bits, BOOL as bytes). */
function allocate(dataType: number, count: number): TensorData {
  switch (dataType) {
    case DataType.BOOL:
    case DataType.UINT8: return new Uint8Array(count);
    case DataType.INT8: return new Int8Array(count);
    case DataType.UINT16:
    case DataType.FLOAT16: return new Uint16Array(count);
    case DataType.INT16: return new Int16Array(count);
    case DataType.UINT32: return new Uint32Array(count);
    case DataType.INT32: return new Int32Array(count);
    case DataType.UINT64: return new BigUint64Array(count);
    case DataType.INT64: return new BigInt64Array(count);
    case DataType.FLOAT: return new Float32Array(count);
    case DataType.DOUBLE: return new Float64Array(count);
    case DataType.STRING: return new Array<string>(count);
    default: throw new EdgevolveError('E_INTERNAL', `no array type for element type ${dataType}`);
  }
}

/** Integer ranges per element type, checked so that 300 is refused for UINT8 instead of wrapping to 44. */
const INT_RANGE: ReadonlyMap<number, readonly [number, number]> = new Map([
  [DataType.UINT8, [0, 255]],
  [DataType.INT8, [-128, 127]],
  [DataType.UINT16, [0, 65535]],
  [DataType.INT16, [-32768, 32767]],
  [DataType.UINT32, [0, 4294967295]],
  [DataType.INT32, [-2147483648, 2147483647]],
  [DataType.UINT64, [0, Number.MAX_SAFE_INTEGER]],
  [DataType.INT64, [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]],
] as const);

/**
 * Fills a TypedArray from `data`, flat or nested row-major (KServe allows both); the
 * element count must equal the shape's.
 */
function decodeJsonData(data: unknown, dataType: number, count: number, maxDepth: number, where: string): TensorData {
  if (!Array.isArray(data)) throw bad(`${where}: "data" must be an array`);
  const out = allocate(dataType, count);
  const write = elementWriter(out, dataType, where);
  let next = 0;
  // Nesting deeper than the shape's rank is malformed; the bound also keeps a hostile body from exhausting the stack.
  const visit = (values: unknown[], depth: number): void => {
    if (depth > maxDepth) throw bad(`${where}: "data" is nested deeper than the shape's ${maxDepth} dimensions`);
    for (let i = 0; i < values.length; i++) {
      const value: unknown = values[i];
      if (Array.isArray(value)) {
        visit(value, depth + 1);
        continue;
      }
      if (next >= count) throw bad(`${where}: "data" has more elements than the shape's ${count}`);
      write(next++, value);
    }
  };
  visit(data, 1);
  if (next !== count) throw bad(`${where}: "data" has ${next} elements, the shape needs ${count}`);
  return out;
}

type ElementWriter = (index: number, value: unknown) => void;

function elementWriter(out: TensorData, dataType: number, where: string): ElementWriter {
  const wrong = (index: number, value: unknown, expected: string): EdgevolveError =>
    bad(`${where}: element ${index} is ${JSON.stringify(value)}, expected ${expected}`);
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.DOUBLE: {
      const array = out as Float32Array | Float64Array;
      return (i, v) => {
        // null is how JSON writers (ours included) spell NaN and infinities.
        if (v === null) array[i] = Number.NaN;
        else if (typeof v !== 'number') throw wrong(i, v, 'a number');
        else array[i] = v;
      };
    }
    case DataType.FLOAT16: {
      const array = out as Uint16Array;
      return (i, v) => {
        if (typeof v !== 'number') throw wrong(i, v, 'a number');
        array[i] = float32ToFloat16Bits(v);
      };
    }
    case DataType.BOOL: {
      const array = out as Uint8Array;
      return (i, v) => {
        if (typeof v === 'boolean') array[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) array[i] = v;
        else throw wrong(i, v, 'true or false');
      };
    }
    case DataType.STRING: {
      const array = out as string[];
      return (i, v) => {
        if (typeof v !== 'string') throw wrong(i, v, 'a string');
        array[i] = v;
      };
    }
    case DataType.INT64:
    case DataType.UINT64: {
      const array = out as BigInt64Array | BigUint64Array;
      const [min, max] = INT_RANGE.get(dataType)!;
      return (i, v) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw wrong(i, v, `an integer in [${min}, ${max}]`);
        array[i] = BigInt(v);
      };
    }
    default: {
      const array = out as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
      const [min, max] = INT_RANGE.get(dataType)!;
      return (i, v) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw wrong(i, v, `an integer in [${min}, ${max}]`);
        array[i] = v;
      };
    }
  }
}

/** Raw little-endian elements (BOOL one byte each; BYTES as 4-byte length + bytes per element). */
function decodeBinary(bytes: Buffer, dataType: number, elementBytes: number | undefined, count: number, where: string): TensorData {
  if (elementBytes === undefined) return decodeBinaryStrings(bytes, count, where);
  if (bytes.length !== count * elementBytes) {
    throw bad(`${where}: binary_data_size is ${bytes.length} bytes, the shape needs ${count} × ${elementBytes} = ${count * elementBytes}`);
  }
  const out = allocate(dataType, 0) as Exclude<TensorData, string[]>;
  const ArrayType = out.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Exclude<TensorData, string[]>;
  let view: Exclude<TensorData, string[]>;
  if (bytes.byteOffset % elementBytes === 0) view = new ArrayType(bytes.buffer, bytes.byteOffset, count);
  else {
    // Misaligned inside the request buffer: a TypedArray view needs alignment, so copy.
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    view = new ArrayType(copy.buffer, 0, count);
  }
  if (dataType === DataType.BOOL) checkBools(view as Uint8Array, where);
  return view;
}

function checkBools(values: Uint8Array, where: string): void {
  for (let i = 0; i < values.length; i++) if (values[i]! > 1) throw bad(`${where}: BOOL element ${i} is byte ${values[i]}, expected 0 or 1`);
}

function decodeBinaryStrings(bytes: Buffer, count: number, where: string): string[] {
  const out = new Array<string>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.length) throw bad(`${where}: BYTES element ${i} has no 4-byte length prefix (binary data ends at ${bytes.length})`);
    const length = bytes.readUInt32LE(offset);
    offset += 4;
    if (offset + length > bytes.length) throw bad(`${where}: BYTES element ${i} claims ${length} bytes, only ${bytes.length - offset} are left`);
    out[i] = utf8.decode(bytes.subarray(offset, offset + length));
    offset += length;
  }
  if (offset !== bytes.length) throw bad(`${where}: ${bytes.length - offset} bytes follow the last BYTES element`);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(message: string): EdgevolveError {
  return new EdgevolveError('E_SERVER_BAD_REQUEST', message);
}

/**
 * The JSON head of a KServe v2 body: the first `jsonLength` bytes (binary-data extension,
 * `Inference-Header-Content-Length`), or the whole body when the header is absent.
 */
function parseJsonHead(body: Buffer, jsonLength: number | undefined, what: 'request' | 'response'): { parsed: unknown; jsonEnd: number } {
  if (jsonLength !== undefined && (jsonLength < 0 || jsonLength > body.length)) {
    throw bad(`Inference-Header-Content-Length is ${jsonLength}, but the body has ${body.length} bytes`);
  }
  const jsonEnd = jsonLength ?? body.length;
  try {
    return { parsed: JSON.parse(body.toString('utf8', 0, jsonEnd)), jsonEnd };
  } catch (err) {
    throw bad(`the ${what} body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}
