import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import Long from 'long';
import { EdgevolveError } from '../errors/index.ts';
import type { ModelProto } from './types.ts';

// protobufjs decodes int64 as Long only when it can find the `long` package; make
// that explicit rather than relying on its optional require.
protobuf.util.Long = Long;
protobuf.configure();

const PROTO_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto', 'onnx.proto');

let schema: protobuf.Root | undefined;

/** The protobufjs root for the official onnx.proto, loaded once per process. */
export function onnxSchema(): protobuf.Root {
  schema ??= protobuf.loadSync(PROTO_PATH);
  return schema;
}

export function modelType(): protobuf.Type {
  return onnxSchema().lookupType('onnx.ModelProto');
}

/**
 * Decodes ModelProto bytes. Malformed input raises an EdgevolveError
 * (E_ONNX_TRUNCATED, E_ONNX_DECODE, E_ONNX_TOO_DEEP), never a raw exception.
 * Byte fields (raw_data) are views into `bytes`, not copies: keep `bytes` alive
 * and unmodified while the model is in use.
 */
export function decodeModelBytes(bytes: Uint8Array): ModelProto {
  try {
    return modelType().decode(bytes) as unknown as ModelProto;
  } catch (err) {
    throw classifyDecodeError(err, bytes.length);
  }
}

/** Encodes a model to ModelProto bytes. */
export function encodeModelBytes(model: ModelProto): Uint8Array {
  return modelType().encode(model).finish();
}

function classifyDecodeError(err: unknown, size: number): EdgevolveError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError && /call stack/i.test(message)) {
    return new EdgevolveError('E_ONNX_TOO_DEEP', 'model nesting is too deep to decode', { cause: err, context: { size } });
  }
  if (/index out of range/.test(message)) {
    return new EdgevolveError('E_ONNX_TRUNCATED', `model is truncated: ${message}`, { cause: err, context: { size } });
  }
  return new EdgevolveError('E_ONNX_DECODE', `not a valid ONNX model: ${message}`, { cause: err, context: { size } });
}
