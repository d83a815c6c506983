/**
 * Encodes a KServe v2 inference response: JSON tensors written straight from the
 * TypedArrays (no intermediate arrays of numbers), or, for outputs asked as binary,
 * the JSON header followed by the raw little-endian bytes (binary-data extension).
 */
import { EdgevolveError } from '../errors/index.ts';
import { float16BitsToFloat32 } from '../onnx/float16.ts';
import type { TensorValue } from '../onnx/tensor.ts';
import { DataType } from '../onnx/types.ts';
import { kserveDatatypeOf } from './datatypes.ts';

export interface ResponseOutput {
  readonly name: string;
  readonly value: TensorValue;
  readonly binary: boolean;
}

export interface EncodedResponse {
  readonly body: Buffer;
  /** Set when binary data follows the JSON: the JSON's byte length (Inference-Header-Content-Length). */
  readonly jsonLength: number | undefined;
}

export interface ResponseHead {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly id: string | undefined;
  readonly parameters: Readonly<Record<string, string | number | boolean>>;
}

const utf8 = new TextEncoder();

export function encodeInferenceResponse(head: ResponseHead, outputs: readonly ResponseOutput[]): EncodedResponse {
  let json = `{"model_name":${JSON.stringify(head.modelName)},"model_version":${JSON.stringify(head.modelVersion)}`;
  if (head.id !== undefined) json += `,"id":${JSON.stringify(head.id)}`;
  json += `,"parameters":${JSON.stringify(head.parameters)},"outputs":`;
  return withTensors(json, outputs, '}');
}

/** What a client asks for: which outputs, and whether as binary data. */
export interface RequestOptions {
  readonly id?: string;
  /** Only these outputs (each binary or not); all when absent. */
  readonly outputs?: readonly { readonly name: string; readonly binary?: boolean }[];
  /** Every output as binary data (request parameter binary_data_output). */
  readonly binaryDataOutput?: boolean;
}

/** Encodes a KServe v2 inference request; inputs marked binary travel after the JSON (binary-data extension). */
export function encodeInferenceRequest(inputs: readonly ResponseOutput[], options: RequestOptions = {}): EncodedResponse {
  let json = '{';
  if (options.id !== undefined) json += `"id":${JSON.stringify(options.id)},`;
  if (options.binaryDataOutput === true) json += '"parameters":{"binary_data_output":true},';
  if (options.outputs !== undefined) {
    const outputs = options.outputs.map((o) => (o.binary === undefined ? { name: o.name } : { name: o.name, parameters: { binary_data: o.binary } }));
    json += `"outputs":${JSON.stringify(outputs)},`;
  }
  json += '"inputs":';
  return withTensors(json, inputs, '}');
}

/** Appends the tensor list and `tail` to `json`, then any binary tensors after it. */
function withTensors(json: string, tensors: readonly ResponseOutput[], tail: string): EncodedResponse {
  json += '[';
  const binaryParts: Uint8Array[] = [];
  for (let i = 0; i < tensors.length; i++) {
    const { name, value, binary } = tensors[i]!;
    const datatype = kserveDatatypeOf(value.dataType);
    if (datatype === undefined) {
      throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `tensor '${name}' has an element type the KServe protocol cannot carry (${value.dataType})`, {
        context: { tensor: name, dataType: value.dataType },
      });
    }
    if (i > 0) json += ',';
    json += `{"name":${JSON.stringify(name)},"datatype":"${datatype}","shape":[${value.dims.join(',')}]`;
    if (binary) {
      const bytes = binaryBytes(value);
      binaryParts.push(bytes);
      json += `,"parameters":{"binary_data_size":${bytes.byteLength}}}`;
    } else {
      json += `,"data":${jsonData(value)}}`;
    }
  }
  json += `]${tail}`;
  if (binaryParts.length === 0) return { body: Buffer.from(json, 'utf8'), jsonLength: undefined };
  const header = Buffer.from(json, 'utf8');
  return { body: Buffer.concat([header, ...binaryParts]), jsonLength: header.length };
}

/** A flat JSON array of the elements; non-finite floats become null (JSON has no NaN). */
function jsonData(value: TensorValue): string {
  const data = value.data;
  if (Array.isArray(data)) return JSON.stringify(data);
  const n = data.length;
  if (n === 0) return '[]';
  let out = '[';
  switch (value.dataType) {
    case DataType.FLOAT:
    case DataType.DOUBLE: {
      const array = data as Float32Array | Float64Array;
      for (let i = 0; i < n; i++) {
        const v = array[i]!;
        out += (i === 0 ? '' : ',') + (Number.isFinite(v) ? String(v) : 'null');
      }
      break;
    }
    case DataType.FLOAT16: {
      const array = data as Uint16Array;
      for (let i = 0; i < n; i++) {
        const v = float16BitsToFloat32(array[i]!);
        out += (i === 0 ? '' : ',') + (Number.isFinite(v) ? String(v) : 'null');
      }
      break;
    }
    case DataType.BOOL: {
      const array = data as Uint8Array;
      for (let i = 0; i < n; i++) out += (i === 0 ? '' : ',') + (array[i] !== 0 ? 'true' : 'false');
      break;
    }
    default:
      // Integers, including BigInt64 (exact: digits, not a lossy Number).
      return `[${Array.prototype.join.call(data, ',')}]`;
  }
  return `${out}]`;
}

/** The binary-data extension's bytes of a tensor: its elements little-endian; BYTES length-prefixed. */
export function binaryBytes(value: TensorValue): Uint8Array {
  const data = value.data;
  if (Array.isArray(data)) {
    const encoded = data.map((s) => utf8.encode(s));
    const total = encoded.reduce((sum, e) => sum + 4 + e.byteLength, 0);
    const out = Buffer.allocUnsafe(total);
    let offset = 0;
    for (const e of encoded) {
      out.writeUInt32LE(e.byteLength, offset);
      out.set(e, offset + 4);
      offset += 4 + e.byteLength;
    }
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
