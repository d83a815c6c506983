/**
 * NumPy `.npy` files: parse, encode, and stream rows from disk.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * Supported: format versions 1.0, 2.0 and 3.0; little, big and "not applicable"
 * byte order (big-endian data is converted to the host's order on read); C order.
 * Rejected with a named reason: Fortran order (for arrays of 2+ dimensions),
 * object, string, structured, complex and datetime dtypes.
 */
import { open, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { EdgevolveError } from '../errors/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import { parsePyLiteral } from './py-literal.ts';

/** The element types we read and write; float16 is kept as raw IEEE bits. */
export type NpyDtype =
  | 'float32'
  | 'float16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

/** Which typed array holds each dtype: float16 as Uint16Array bits, bool as Uint8Array of 0/1. */
export interface NpyDataByDtype {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

export type NpyData = NpyDataByDtype[NpyDtype];

/** An n-dimensional array in C order; `shape` `[]` is a 0-d scalar holding one element. */
export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly data: NpyData;
}

interface DtypeInfo {
  readonly descrCode: string;
  readonly itemSize: number;
  readonly create: (buffer: ArrayBufferLike, byteOffset: number, length: number) => NpyData;
  readonly matches: (data: NpyData) => boolean;
  /** The typed array class name, for messages. */
  readonly arrayName: string;
}

const DTYPES: Readonly<Record<NpyDtype, DtypeInfo>> = {
  float32: dtype('f4', 4, Float32Array),
  float16: dtype('f2', 2, Uint16Array),
  float64: dtype('f8', 8, Float64Array),
  int8: dtype('i1', 1, Int8Array),
  uint8: dtype('u1', 1, Uint8Array),
  int16: dtype('i2', 2, Int16Array),
  uint16: dtype('u2', 2, Uint16Array),
  int32: dtype('i4', 4, Int32Array),
  uint32: dtype('u4', 4, Uint32Array),
  int64: dtype('i8', 8, BigInt64Array),
  uint64: dtype('u8', 8, BigUint64Array),
  bool: dtype('b1', 1, Uint8Array),
};

function dtype(
  descrCode: string,
  itemSize: number,
  ctor: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => NpyData,
): DtypeInfo {
  return {
    descrCode,
    itemSize,
    create: (buffer, byteOffset, length) => new ctor(buffer, byteOffset, length),
    matches: (data) => data instanceof ctor,
    arrayName: ctor.name,
  };
}

const DTYPE_BY_CODE: ReadonlyMap<string, NpyDtype> = new Map(
  (Object.keys(DTYPES) as NpyDtype[]).map((name) => [DTYPES[name].descrCode, name]),
);

export const NPY_DTYPES: readonly NpyDtype[] = Object.keys(DTYPES) as NpyDtype[];

export function npyItemSize(dtype: NpyDtype): number {
  return DTYPES[dtype].itemSize;
}

/** Allocates a zero-filled typed array of the class that holds `dtype`. */
export function allocateNpyData(dtype: NpyDtype, length: number): NpyData {
  const info = DTYPES[dtype];
  return info.create(new ArrayBuffer(length * info.itemSize), 0, length);
}

const HOST_LITTLE_ENDIAN = endianness() === 'LE';
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** The fixed part before the header dict: magic, version, and the header length (2 bytes in v1, 4 in v2/v3). */
const PREAMBLE_V1 = 10;
const PREAMBLE_V2 = 12;
/** NumPy pads the header so that data starts on a 64-byte boundary (numpy.lib.format.ARRAY_ALIGN). */
const ARRAY_ALIGN = 64;

/** What the header says, plus where the data starts. */
export interface NpyHeader {
  readonly version: string;
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly littleEndian: boolean;
  readonly dataOffset: number;
  /** Elements in the array: the product of `shape` (1 for a 0-d array). */
  readonly elementCount: number;
  readonly dataBytes: number;
}

function invalid(message: string, context: Record<string, unknown> = {}): EdgevolveError {
  return new EdgevolveError('E_DATA_NPY_INVALID', message, { context });
}

function unsupported(message: string, context: Record<string, unknown> = {}): EdgevolveError {
  return new EdgevolveError('E_DATA_NPY_UNSUPPORTED', message, { context });
}

/**
 * Reads the preamble and tells how many bytes the whole header (preamble + dict)
 * takes, given at least the first 12 bytes of the file (fewer if the file is shorter).
 */
export function npyHeaderLength(start: Uint8Array): { version: string; headerEnd: number; preamble: number } {
  for (let i = 0; i < MAGIC.length; i++) {
    if (i >= start.length) throw truncatedHeader(start.length, PREAMBLE_V1);
    if (start[i] !== MAGIC[i]) throw invalid('not an NPY file: it does not start with the magic bytes \\x93NUMPY');
  }
  if (start.length < 8) throw truncatedHeader(start.length, PREAMBLE_V1);
  const major = start[6] as number;
  const minor = start[7] as number;
  const version = `${major}.${minor}`;
  if (minor !== 0 || major < 1 || major > 3) throw unsupported(`NPY format version ${version} is not supported (1.0, 2.0, 3.0 are)`, { version });
  const preamble = major === 1 ? PREAMBLE_V1 : PREAMBLE_V2;
  if (start.length < preamble) throw truncatedHeader(start.length, preamble);
  const view = new DataView(start.buffer, start.byteOffset, start.byteLength);
  const dictLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  return { version, headerEnd: preamble + dictLength, preamble };
}

function truncatedHeader(have: number, need: number): EdgevolveError {
  return new EdgevolveError('E_DATA_NPY_TRUNCATED', `NPY file is truncated inside its header: ${have} bytes, the header needs ${need} (${need - have} missing)`, {
    context: { have, need, missing: need - have },
  });
}

/** Parses the header of an NPY file; `bytes` must hold at least the whole header. */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  const { version, headerEnd, preamble } = npyHeaderLength(bytes.subarray(0, PREAMBLE_V2));
  if (bytes.length < headerEnd) throw truncatedHeader(bytes.length, headerEnd);
  // v1/v2 headers are latin1 by the spec; v3 allows utf8 (for structured field names).
  const text = new TextDecoder(version === '3.0' ? 'utf-8' : 'latin1').decode(bytes.subarray(preamble, headerEnd));
  const dict = parsePyLiteral(text);
  if (!(dict instanceof Map)) throw invalid('NPY header is not a dict', { header: text });
  const keys = [...dict.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw invalid(`NPY header must have exactly the keys descr, fortran_order, shape; it has ${keys || 'none'}`, { header: text });
  }
  const shape = parseShape(dict.get('shape'), text);
  const fortranOrder = dict.get('fortran_order');
  if (typeof fortranOrder !== 'boolean') throw invalid('NPY header fortran_order is not True or False', { header: text });
  // For 0-d and 1-d arrays Fortran and C order are the same bytes.
  if (fortranOrder && shape.length > 1) {
    throw unsupported(`NPY array of shape (${shape.join(', ')}) is in Fortran order; only C order is supported (save np.ascontiguousarray(a))`, {
      shape,
    });
  }
  const { dtype, littleEndian } = parseDescr(dict.get('descr'));
  let elementCount = 1;
  for (const dim of shape) elementCount *= dim;
  const dataBytes = elementCount * DTYPES[dtype].itemSize;
  if (!Number.isSafeInteger(dataBytes)) throw invalid(`NPY shape (${shape.join(', ')}) is too large`, { shape });
  return { version, dtype, shape, littleEndian, dataOffset: headerEnd, elementCount, dataBytes };
}

function parseShape(value: unknown, header: string): number[] {
  if (!Array.isArray(value)) throw invalid('NPY header shape is not a tuple', { header });
  const shape: number[] = [];
  for (const dim of value) {
    if (typeof dim !== 'number' || dim < 0) throw invalid(`NPY header shape has an invalid dimension ${String(dim)}`, { header });
    shape.push(dim);
  }
  return shape;
}

function parseDescr(descr: unknown): { dtype: NpyDtype; littleEndian: boolean } {
  if (Array.isArray(descr)) throw unsupported('NPY array has a structured dtype (record fields); only plain numeric and bool arrays are supported');
  if (typeof descr !== 'string') throw invalid('NPY header descr is not a string');
  const match = /^([<>|=])([a-zA-Z?])(\d*)(.*)$/.exec(descr);
  if (!match) throw invalid(`NPY header descr '${descr}' is not a dtype string`, { descr });
  const [, order, kind, size, rest] = match as unknown as [string, string, string, string, string];
  switch (kind) {
    case 'O':
      throw unsupported('NPY array has dtype object (pickled Python objects); save a numeric array instead', { descr });
    case 'U':
    case 'S':
    case 'a':
      throw unsupported(`NPY array has a string dtype '${descr}'; only numeric and bool arrays are supported`, { descr });
    case 'V':
      throw unsupported(`NPY array has a void/structured dtype '${descr}'; only numeric and bool arrays are supported`, { descr });
    case 'c':
      throw unsupported(`NPY array has a complex dtype '${descr}'; only real numeric arrays are supported`, { descr });
    case 'M':
    case 'm':
      throw unsupported(`NPY array has a datetime dtype '${descr}'; only numeric and bool arrays are supported`, { descr });
    default:
      break;
  }
  const dtypeName = rest === '' ? DTYPE_BY_CODE.get(`${kind}${size}`) : undefined;
  if (dtypeName === undefined) throw unsupported(`NPY dtype '${descr}' is not supported (supported: ${NPY_DTYPES.join(', ')})`, { descr });
  const itemSize = DTYPES[dtypeName].itemSize;
  if (itemSize === 1) return { dtype: dtypeName, littleEndian: true };
  if (order === '<') return { dtype: dtypeName, littleEndian: true };
  if (order === '>') return { dtype: dtypeName, littleEndian: false };
  // '=' means "the writer's native order", which the file does not record; NumPy itself never writes it.
  throw invalid(`NPY dtype '${descr}' has no definite byte order`, { descr });
}

/**
 * Parses a whole NPY file. When the data is little-endian (on a little-endian host)
 * and suitably aligned, the returned typed array is a view into `bytes` (no copy):
 * keep `bytes` unmodified while the array is in use.
 */
export function parseNpy(bytes: Uint8Array): NpyArray {
  const header = parseNpyHeader(bytes);
  const available = bytes.length - header.dataOffset;
  if (available < header.dataBytes) throw truncatedData(header, available);
  if (available > header.dataBytes) {
    throw invalid(`NPY file has ${available - header.dataBytes} bytes after the data of shape (${header.shape.join(', ')}) ${header.dtype}`, {
      extra: available - header.dataBytes,
    });
  }
  const data = typedView(header, bytes.subarray(header.dataOffset, header.dataOffset + header.dataBytes));
  return { dtype: header.dtype, shape: header.shape, data };
}

function truncatedData(header: NpyHeader, available: number): EdgevolveError {
  const missing = header.dataBytes - available;
  return new EdgevolveError(
    'E_DATA_NPY_TRUNCATED',
    `NPY file is truncated: shape (${header.shape.join(', ')}) ${header.dtype} needs ${header.dataBytes} data bytes, the file has ${available} (${missing} missing)`,
    { context: { expected: header.dataBytes, actual: available, missing } },
  );
}

/**
 * Interprets raw element bytes as the dtype's typed array: a view when byte order
 * and alignment allow, else a copy (byte-swapped if needed).
 */
function typedView(header: Pick<NpyHeader, 'dtype' | 'littleEndian'>, raw: Uint8Array): NpyData {
  const info = DTYPES[header.dtype];
  const length = raw.byteLength / info.itemSize;
  const swap = info.itemSize > 1 && header.littleEndian !== HOST_LITTLE_ENDIAN;
  if (!swap && raw.byteOffset % info.itemSize === 0) return info.create(raw.buffer, raw.byteOffset, length);
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  if (swap) swapBytes(copy, info.itemSize);
  return info.create(copy.buffer, 0, length);
}

function swapBytes(bytes: Uint8Array, itemSize: number): void {
  for (let i = 0; i < bytes.length; i += itemSize) {
    for (let lo = i, hi = i + itemSize - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo] as number;
      bytes[lo] = bytes[hi] as number;
      bytes[hi] = t;
    }
  }
}

export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw ioError(`cannot read ${path}`, err, path);
  }
  try {
    return parseNpy(bytes);
  } catch (err) {
    throw withPath(err, path);
  }
}

function ioError(message: string, err: unknown, path: string): EdgevolveError {
  return new EdgevolveError('E_IO', `${message}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, context: { path } });
}

/** Prefixes a parse error with the file it came from, keeping the code. */
function withPath(err: unknown, path: string): unknown {
  if (!(err instanceof EdgevolveError)) return err;
  return new EdgevolveError(err.code, `${path}: ${err.message}`, { cause: err, context: { ...err.context, path } });
}

/** Validates that `array` is self-consistent: data class matches dtype, length matches shape. */
export function checkNpyArray(array: NpyArray): void {
  const info = DTYPES[array.dtype];
  if (info === undefined) throw new EdgevolveError('E_DATA_NPY_UNSUPPORTED', `dtype '${String(array.dtype)}' is not supported`);
  if (!info.matches(array.data)) {
    throw new EdgevolveError('E_DATA_DTYPE_MISMATCH', `dtype ${array.dtype} needs a ${info.arrayName}, got ${array.data.constructor.name}`);
  }
  let count = 1;
  for (const dim of array.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `shape (${array.shape.join(', ')}) has an invalid dimension ${dim}`);
    count *= dim;
  }
  if (count !== array.data.length) {
    throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `shape (${array.shape.join(', ')}) holds ${count} elements but the data has ${array.data.length}`, {
      context: { shape: array.shape, elements: array.data.length },
    });
  }
}

/** The header bytes NumPy would write for this dtype and shape: version 1.0 unless the dict needs more than 64 KiB. */
export function encodeNpyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  const info = DTYPES[dtype];
  const order = info.itemSize === 1 ? '|' : '<';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${order}${info.descrCode}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let preamble = PREAMBLE_V1;
  let total = Math.ceil((preamble + dict.length + 1) / ARRAY_ALIGN) * ARRAY_ALIGN;
  if (total - preamble > 0xffff) {
    preamble = PREAMBLE_V2;
    total = Math.ceil((preamble + dict.length + 1) / ARRAY_ALIGN) * ARRAY_ALIGN;
  }
  const dictLength = total - preamble;
  const bytes = new Uint8Array(total);
  bytes.set(MAGIC, 0);
  bytes[6] = preamble === PREAMBLE_V1 ? 1 : 2;
  bytes[7] = 0;
  const view = new DataView(bytes.buffer);
  if (preamble === PREAMBLE_V1) view.setUint16(8, dictLength, true);
  else view.setUint32(8, dictLength, true);
  // The dict is ASCII (dtype codes and integers), valid latin1 for v1/v2.
  writeAscii(bytes, preamble, dict.padEnd(dictLength - 1, ' ') + '\n');
  return bytes;
}

function writeAscii(target: Uint8Array, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) target[offset + i] = text.charCodeAt(i);
}

/** The array's elements as little-endian bytes: a view on little-endian hosts, a swapped copy otherwise. */
function littleEndianBytes(array: NpyArray): Uint8Array {
  const raw = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  if (HOST_LITTLE_ENDIAN || DTYPES[array.dtype].itemSize === 1) return raw;
  const copy = raw.slice();
  swapBytes(copy, DTYPES[array.dtype].itemSize);
  return copy;
}

/** Encodes an array as a complete NPY file (little-endian, C order), as `np.save` would. */
export function encodeNpy(array: NpyArray): Uint8Array {
  checkNpyArray(array);
  const header = encodeNpyHeader(array.dtype, array.shape);
  const data = littleEndianBytes(array);
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}

/** Writes an NPY file atomically (temp file, fsync, rename; host/writeFileAtomic). */
export async function writeNpy(path: string, array: NpyArray): Promise<void> {
  const bytes = encodeNpy(array);
  try {
    await writeFileAtomic(path, bytes);
  } catch (err) {
    throw ioError(`cannot write ${path}`, err, path);
  }
}

/**
 * An NPY file opened for reading rows along its first axis, so that arrays larger
 * than memory are read a batch at a time with positional reads.
 */
export interface NpyReader {
  readonly path: string;
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  /** The shape of one row: `shape` without its first axis. */
  readonly rowShape: readonly number[];
  /** Length of the first axis. */
  readonly rows: number;
  /** Elements in one row. */
  readonly rowElements: number;
  /** Bytes in one row. */
  readonly rowBytes: number;
  /** Reads rows [start, start + count) into a fresh array of shape [count, ...rowShape]. */
  readRows(start: number, count: number): Promise<NpyArray>;
  /**
   * Reads rows [start, start + count) as host-order element bytes into `target` at
   * `offset` (which must leave room for count × rowBytes): batches gather shuffled
   * rows into one buffer without an intermediate copy.
   */
  readRowsInto(start: number, count: number, target: Uint8Array, offset: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens an NPY file and reads only its header; the data stays on disk until
 * `readRows`. The file length is checked against the header at open time, so a
 * truncated file fails here rather than in the middle of an evaluation.
 */
export async function openNpy(path: string): Promise<NpyReader> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError(`cannot open ${path}`, err, path);
  }
  try {
    const size = (await handle.stat()).size;
    const start = await readAt(handle, 0, Math.min(size, PREAMBLE_V2));
    const { headerEnd } = npyHeaderLength(start);
    const header = parseNpyHeader(await readAt(handle, 0, Math.min(size, headerEnd)));
    const available = size - header.dataOffset;
    if (available < header.dataBytes) throw truncatedData(header, available);
    if (available > header.dataBytes) throw invalid(`NPY file has ${available - header.dataBytes} bytes after its data`, { extra: available - header.dataBytes });
    if (header.shape.length === 0) throw new EdgevolveError('E_DATA_SHAPE_MISMATCH', `${path} holds a 0-d scalar, which has no rows`, { context: { path } });
    return new FileNpyReader(path, handle, header);
  } catch (err) {
    await handle.close();
    throw withPath(err, path);
  }
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function readAt(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const target = new Uint8Array(length);
  const filled = await readInto(handle, position, target);
  return filled === length ? target : target.subarray(0, filled);
}

/** Fills `target` from `position` with positional reads; returns the bytes read (fewer at end of file). */
async function readInto(handle: FileHandle, position: number, target: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < target.length) {
    const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

class FileNpyReader implements NpyReader {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly rowShape: readonly number[];
  readonly rows: number;
  readonly rowElements: number;
  readonly rowBytes: number;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly header: NpyHeader,
  ) {
    this.dtype = header.dtype;
    this.shape = header.shape;
    this.rowShape = header.shape.slice(1);
    this.rows = header.shape[0] as number;
    this.rowElements = this.rowShape.reduce((a, b) => a * b, 1);
    this.rowBytes = this.rowElements * DTYPES[header.dtype].itemSize;
  }

  async readRows(start: number, count: number): Promise<NpyArray> {
    const data = allocateNpyData(this.dtype, count * this.rowElements);
    await this.readRowsInto(start, count, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0);
    return { dtype: this.dtype, shape: [count, ...this.rowShape], data };
  }

  async readRowsInto(start: number, count: number, target: Uint8Array, offset: number): Promise<void> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > this.rows) {
      throw new EdgevolveError('E_DATA_RANGE', `${this.path}: rows [${start}, ${start + count}) are outside the ${this.rows} rows of the array`, {
        context: { path: this.path, start, count, rows: this.rows },
      });
    }
    const length = count * this.rowBytes;
    if (offset < 0 || offset + length > target.length) {
      throw new EdgevolveError('E_DATA_RANGE', `${this.path}: ${count} rows do not fit the target buffer at offset ${offset}`, { context: { path: this.path } });
    }
    const slice = target.subarray(offset, offset + length);
    const filled = await readInto(this.handle, this.header.dataOffset + start * this.rowBytes, slice);
    if (filled < length) {
      // The file shrank after open: someone is rewriting it under us.
      throw new EdgevolveError('E_DATA_NPY_TRUNCATED', `${this.path}: file ended while reading rows (${length - filled} bytes missing)`, {
        context: { path: this.path, missing: length - filled },
      });
    }
    const itemSize = DTYPES[this.dtype].itemSize;
    if (itemSize > 1 && this.header.littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(slice, itemSize);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
