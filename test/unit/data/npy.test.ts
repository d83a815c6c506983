import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isEdgevolveError, type ErrorCode } from '../../../src/errors/index.ts';
import { encodeNpy, encodeNpyHeader, openNpy, parseNpy, readNpy, writeNpy } from '../../../src/data/npy.ts';

/** Builds an NPY v1 file from a header dict text and raw data bytes, padded as NumPy pads. */
function handMade(dict: string, data: Uint8Array = new Uint8Array(0), major = 1): Uint8Array {
  const preamble = major === 1 ? 10 : 12;
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, total - preamble, true);
  else view.setUint32(8, total - preamble, true);
  out.set(new TextEncoder().encode(dict.padEnd(total - preamble - 1, ' ') + '\n'), preamble);
  out.set(data, total);
  return out;
}

function expectCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(isEdgevolveError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  if (message) expect((error as Error).message).toMatch(message);
}

describe('parseNpy', () => {
  it('converts big-endian int32 data to native values', () => {
    const data = new Uint8Array([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]);
    const array = parseNpy(handMade("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", data));
    expect(array.dtype).toBe('int32');
    expect(Array.from(array.data as Int32Array)).toEqual([1, -2]);
  });

  it('returns a zero-copy view when the data is aligned and little-endian', () => {
    const bytes = handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(new Float32Array([1.5, -2]).buffer));
    const array = parseNpy(bytes);
    expect(array.data.buffer).toBe(bytes.buffer);
    expect(Array.from(array.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('copies when the data is not aligned to the element size, with the same values', () => {
    const file = handMade("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(new Float64Array([Math.PI]).buffer));
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const array = parseNpy(shifted.subarray(1));
    expect(array.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(array.data as Float64Array)).toEqual([Math.PI]);
  });

  it('accepts Python 2 long integers and a header without the trailing comma', () => {
    const array = parseNpy(handMade("{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 1L)}", new Uint8Array([7, 9])));
    expect(array.shape).toEqual([2, 1]);
  });

  it('reads a version 2.0 header', () => {
    const array = parseNpy(handMade("{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", new Uint8Array([1, 1]), 2));
    expect(Array.from(array.data as Int16Array)).toEqual([257]);
  });

  const bad: [string, Uint8Array, ErrorCode, RegExp][] = [
    ['a file without the magic', new TextEncoder().encode('PK\u0003\u0004 not numpy at all'), 'E_DATA_NPY_INVALID', /magic/],
    ['a file shorter than the preamble', new Uint8Array([0x93, 0x4e, 0x55]), 'E_DATA_NPY_TRUNCATED', /7 missing/],
    ['format version 4.0', handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", new Uint8Array(4), 4), 'E_DATA_NPY_UNSUPPORTED', /version 4\.0/],
    ['a header that is not a dict', handMade("['descr', '<f4']"), 'E_DATA_NPY_INVALID', /not a dict/],
    ['a header with an extra key', handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}"), 'E_DATA_NPY_INVALID', /exactly the keys/],
    ['a header with a missing key', handMade("{'descr': '<f4', 'shape': ()}"), 'E_DATA_NPY_INVALID', /it has descr, shape/],
    ['a header with a function call', handMade("{'descr': __import__('os'), 'fortran_order': False, 'shape': ()}"), 'E_DATA_NPY_INVALID', /unexpected character/],
    ['a float dimension', handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}"), 'E_DATA_NPY_INVALID', /only integers/],
    ['a negative dimension', handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), 'E_DATA_NPY_INVALID', /invalid dimension -1/],
    ['native byte order', handMade("{'descr': '=f4', 'fortran_order': False, 'shape': ()}", new Uint8Array(4)), 'E_DATA_NPY_INVALID', /byte order/],
    ['an unknown dtype', handMade("{'descr': '<f16', 'fortran_order': False, 'shape': ()}"), 'E_DATA_NPY_UNSUPPORTED', /'<f16' is not supported/],
    ['trailing bytes after the data', handMade("{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}", new Uint8Array(3)), 'E_DATA_NPY_INVALID', /2 bytes after the data/],
    ['Fortran order in 2-d', handMade("{'descr': '|u1', 'fortran_order': True, 'shape': (1, 2)}", new Uint8Array(2)), 'E_DATA_NPY_UNSUPPORTED', /Fortran order/],
    ['a truncated data section', handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", new Uint8Array(10)), 'E_DATA_NPY_TRUNCATED', /needs 16 data bytes, the file has 10 \(6 missing\)/],
  ];
  for (const [what, bytes, code, message] of bad) {
    it(`rejects ${what} with ${code}`, () => expectCode(() => parseNpy(bytes), code, message));
  }

  it('rejects a header cut short, saying how many bytes are missing', () => {
    const whole = handMade("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", new Uint8Array(4));
    expectCode(() => parseNpy(whole.subarray(0, 40)), 'E_DATA_NPY_TRUNCATED', /40 bytes, the header needs 128 \(88 missing\)/);
  });
});

describe('encodeNpy', () => {
  it('pads the header so the data starts on a 64-byte boundary and ends it with a newline', () => {
    for (const shape of [[], [3], [2, 3], Array.from({ length: 30 }, () => 1)]) {
      const header = encodeNpyHeader('float32', shape);
      expect(header.length % 64).toBe(0);
      expect(header[header.length - 1]).toBe(0x0a);
    }
  });

  it('round-trips through parseNpy with the same dtype, shape and values', () => {
    const array = { dtype: 'int64', shape: [2, 2], data: new BigInt64Array([1n, -2n, 2n ** 62n, -(2n ** 63n)]) } as const;
    const back = parseNpy(encodeNpy(array));
    expect(back.dtype).toBe('int64');
    expect(back.shape).toEqual([2, 2]);
    expect(Array.from(back.data as BigInt64Array)).toEqual([1n, -2n, 2n ** 62n, -(2n ** 63n)]);
  });

  it('writes the exact header NumPy writes for a 1-d array', () => {
    const text = new TextDecoder().decode(encodeNpyHeader('uint8', [5]).subarray(10)).trimEnd();
    expect(text).toBe("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }");
  });

  it('refuses data whose length disagrees with the shape', () => {
    expectCode(() => encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) }), 'E_DATA_SHAPE_MISMATCH', /holds 4 elements but the data has 3/);
  });

  it('refuses a typed array of the wrong class for the dtype', () => {
    expectCode(() => encodeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) }), 'E_DATA_DTYPE_MISMATCH', /Float32Array, got Float64Array/);
  });
});

describe('writeNpy, readNpy and openNpy on files', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-npy-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes atomically: no temp file is left behind and the file reads back', async () => {
    const file = path.join(dir, 'a.npy');
    await writeNpy(file, { dtype: 'float16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) });
    const back = await readNpy(file);
    expect(back.dtype).toBe('float16');
    expect(Array.from(back.data as Uint16Array)).toEqual([0x3c00, 0xc000]);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('reads rows with positional reads, giving each batch its own shape', async () => {
    const file = path.join(dir, 'rows.npy');
    const data = new Float32Array(5 * 2 * 3).map((_, i) => i);
    await writeNpy(file, { dtype: 'float32', shape: [5, 2, 3], data });
    const reader = await openNpy(file);
    try {
      expect(reader.rows).toBe(5);
      expect(reader.rowShape).toEqual([2, 3]);
      const rows = await reader.readRows(3, 2);
      expect(rows.shape).toEqual([2, 2, 3]);
      expect(Array.from(rows.data as Float32Array)).toEqual(Array.from(data.subarray(18, 30)));
      expect((await reader.readRows(5, 0)).data.length).toBe(0);
    } finally {
      await reader.close();
    }
  });

  it('converts big-endian rows when streaming', async () => {
    const file = path.join(dir, 'be.npy');
    writeFileSync(file, handMade("{'descr': '>u2', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([0, 1, 1, 0, 0xab, 0xcd])));
    const reader = await openNpy(file);
    try {
      expect(Array.from((await reader.readRows(1, 2)).data as Uint16Array)).toEqual([256, 0xabcd]);
    } finally {
      await reader.close();
    }
  });

  it('refuses rows past the end with E_DATA_RANGE', async () => {
    const reader = await openNpy(path.join(dir, 'rows.npy'));
    try {
      const error: unknown = await reader.readRows(4, 2).catch((err: unknown) => err);
      expect(isEdgevolveError(error, 'E_DATA_RANGE')).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it('detects a truncated file at open, before any row is read', async () => {
    const file = path.join(dir, 'cut.npy');
    const whole = readFileSync(path.join(dir, 'rows.npy'));
    writeFileSync(file, whole.subarray(0, whole.length - 12));
    const error: unknown = await openNpy(file).catch((err: unknown) => err);
    expect(isEdgevolveError(error, 'E_DATA_NPY_TRUNCATED')).toBe(true);
    expect((error as Error).message).toMatch(/\(12 missing\)/);
  });

  it('reports a missing file as E_IO naming the path', async () => {
    const file = path.join(dir, 'nope.npy');
    const error: unknown = await openNpy(file).catch((err: unknown) => err);
    expect(isEdgevolveError(error, 'E_IO')).toBe(true);
    expect((error as Error).message).toContain(file);
  });
});
