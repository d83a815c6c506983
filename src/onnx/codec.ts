import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import protobuf from 'protobufjs';
import Long from 'long';
import { EdgevolveError } from '../errors/index.ts';
import { resolveLimits, type OnnxLimits } from './limits.ts';
import { ONNX_DESCRIPTOR } from './proto/onnx-descriptor.ts';
import type { ModelProto, TensorProto } from './types.ts';
import { scanWireFormat } from './wire.ts';

// protobufjs decodes int64 as Long only when it can find the `long` package; make
// that explicit rather than relying on its optional require.
protobuf.util.Long = Long;
protobuf.configure();

let schema: protobuf.Root | undefined;

/**
 * The protobufjs root for the official onnx.proto, built once per process from its
 * generated JSON descriptor: no file to find beside the code (the dist/ bundle has none),
 * and no .proto parsing at start-up.
 */
export function onnxSchema(): protobuf.Root {
  if (schema === undefined) {
    schema = protobuf.Root.fromJSON(ONNX_DESCRIPTOR);
    schema.resolveAll();
  }
  return schema;
}

export function modelType(): protobuf.Type {
  return onnxSchema().lookupType('onnx.ModelProto');
}

export interface DecodeOptions {
  limits?: Partial<OnnxLimits>;
}

/**
 * Decodes ModelProto bytes. Checks the size cap, pre-scans the wire format (nesting,
 * lengths, wire types; see wire.ts), then decodes with protobufjs. Malformed input
 * raises an EdgevolveError (E_ONNX_TOO_LARGE, E_ONNX_TRUNCATED, E_ONNX_DECODE,
 * E_ONNX_TOO_DEEP), never a raw exception.
 *
 * Byte fields (raw_data) are views into `bytes`, not copies: keep `bytes` alive and
 * unmodified while the model is in use.
 */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): ModelProto {
  const limits = resolveLimits(opts.limits);
  if (bytes.length > limits.maxModelBytes) {
    throw new EdgevolveError('E_ONNX_TOO_LARGE', `model is ${bytes.length} bytes, more than limits.maxModelBytes (${limits.maxModelBytes})`, {
      context: { size: bytes.length, maxModelBytes: limits.maxModelBytes },
    });
  }
  if (bytes.length === 0) throw new EdgevolveError('E_ONNX_DECODE', 'not a valid ONNX model: the file is empty', { context: { size: 0 } });
  const type = modelType();
  // A plain Uint8Array view (no copy) so raw_data fields come out as Uint8Array views,
  // not Node Buffers, whose slice() shares memory and would surprise callers.
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  scanWireFormat(plain, type, limits);
  try {
    return type.decode(plain) as unknown as ModelProto;
  } catch (err) {
    throw classifyDecodeError(err, bytes.length);
  }
}

/** Encodes a model to ModelProto bytes. Fields are written in field-number order, as onnx's C++ serializer does. */
export function encodeModel(model: ModelProto): Uint8Array {
  let out: Uint8Array;
  try {
    out = modelType().encode(model).finish();
  } catch (err) {
    throw new EdgevolveError('E_ONNX_INVALID', `cannot encode model: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // protobufjs returns a Node Buffer, small ones carved from a shared 8 KiB pool. Hand
  // out a plain Uint8Array that owns its ArrayBuffer: a view when the Buffer already
  // does (large models, no copy), a copy otherwise.
  if (out.byteOffset === 0 && out.buffer.byteLength === out.length) return new Uint8Array(out.buffer, 0, out.length);
  const copy = new Uint8Array(out.length);
  copy.set(out);
  return copy;
}

/**
 * Decodes a serialized TensorProto (the ONNX test layout's input_K.pb / output_K.pb).
 * A TensorProto cannot nest, so protobufjs' own bounds checks are enough here: every
 * length is checked against the buffer before anything is allocated.
 */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  try {
    return onnxSchema().lookupType('onnx.TensorProto').decode(bytes) as unknown as TensorProto;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = /index out of range/.test(message) ? 'E_ONNX_TRUNCATED' : 'E_ONNX_DECODE';
    throw new EdgevolveError(code, `not a valid TensorProto: ${message}`, { cause: err, context: { size: bytes.length } });
  }
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

function ioError(action: string, file: string, err: unknown): EdgevolveError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new EdgevolveError('E_IO', `cannot ${action} '${file}': ${code ?? (err instanceof Error ? err.message : String(err))}`, {
    cause: err,
    context: { path: file, errno: code },
  });
}

/** A model read from disk, with the bytes its raw_data views point into and the directory for external data. */
export interface LoadedModel {
  model: ModelProto;
  bytes: Uint8Array;
  baseDir: string;
}

/** Reads and decodes an .onnx file; the size cap is checked before reading. */
export async function readModelFile(file: string, opts: DecodeOptions = {}): Promise<LoadedModel> {
  const limits = resolveLimits(opts.limits);
  let bytes: Uint8Array;
  try {
    const handle = await fs.promises.open(file, 'r');
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new EdgevolveError('E_IO', `'${file}' is not a regular file`, { context: { path: file } });
      if (stat.size > limits.maxModelBytes) {
        throw new EdgevolveError('E_ONNX_TOO_LARGE', `'${file}' is ${stat.size} bytes, more than limits.maxModelBytes (${limits.maxModelBytes})`, {
          context: { path: file, size: stat.size, maxModelBytes: limits.maxModelBytes },
        });
      }
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof EdgevolveError) throw err;
    throw ioError('read', file, err);
  }
  try {
    const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    return { model: decodeModel(plain, { limits }), bytes: plain, baseDir: path.dirname(path.resolve(file)) };
  } catch (err) {
    if (err instanceof EdgevolveError) {
      throw new EdgevolveError(err.code, `${file}: ${err.message}`, { cause: err, context: { ...err.context, path: file } });
    }
    throw err;
  }
}

/**
 * Encodes and writes a model atomically: a temp file in the same directory, fsync,
 * rename over the target, fsync the directory. A crash leaves the old file or the
 * new one, never a torn one.
 */
export async function writeModelFile(file: string, model: ModelProto): Promise<void> {
  const bytes = encodeModel(model);
  await writeFileAtomic(file, bytes);
}

/** Atomic write of bytes (see writeModelFile). */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.promises.open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temp, file);
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw ioError('write', file, err);
  }
  await fsyncDirectory(dir);
}

async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some filesystems refuse fsync on directories (EINVAL/EISDIR); the rename is still durable there by their own rules.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw ioError('fsync directory', dir, err);
  } finally {
    await handle?.close();
  }
}
