/**
 * NPY files written by real NumPy load bit-exactly, and NumPy reads ours back
 * bit-exactly: every dtype, both byte orders, format versions 1/2/3, 0-d and empty
 * arrays; Fortran order, object, string and structured arrays are refused.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { NPY_DTYPES, allocateNpyData, npyItemSize, readNpy, writeNpy, type NpyArray, type NpyDtype } from '../../../src/data/npy.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const hasNumpy = requireTool({
  name: 'NumPy for Python 3',
  check: () => {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  },
  debianPackage: 'python3-numpy',
});

function python(script: string, args: string[] = []): string {
  return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
}

function bytesOf(array: NpyArray): Uint8Array {
  return new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// Writes, for every case, `<case>.npy` with NumPy and `<case>.bin` with the same
// elements as little-endian bytes: the ground truth our reader must reproduce.
const WRITE_CASES = String.raw`
import sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
names = sys.argv[2].split(',')
def save(name, a, version=None):
    with open(f'{out}/{name}.npy', 'wb') as f:
        np.lib.format.write_array(f, a, version=version)
    a.astype(a.dtype.newbyteorder('<')).tofile(f'{out}/{name}.bin')
for name in names:
    dt = np.dtype(name)
    if dt == np.bool_:
        a = rng.integers(0, 2, size=(3, 4, 5)).astype(np.bool_)
    else:
        # Random bit patterns: every byte of every element matters (NaN payloads, signs, top bits).
        a = rng.integers(0, 256, size=60 * dt.itemsize, dtype=np.uint8).view(dt).reshape(3, 4, 5)
    save(f'{name}-le', a.astype(dt.newbyteorder('<')))
    save(f'{name}-be', a.astype(dt.newbyteorder('>')))
base = np.arange(24, dtype='<f4').reshape(2, 3, 4)
for v in (1, 2, 3):
    save(f'v{v}', base, version=(v, 0))
save('scalar', np.array(3.5, dtype='<f8'))
save('empty', np.zeros((0, 3), dtype='<f4'))
save('big-header', np.zeros((1,) * 40, dtype='<i2'))
np.save(f'{out}/fortran.npy', np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
np.save(f'{out}/fortran-1d.npy', np.asfortranarray(np.arange(6, dtype='<f4')))
np.save(f'{out}/object.npy', np.array([1, 'a', None], dtype=object), allow_pickle=True)
np.save(f'{out}/unicode.npy', np.array(['ab', 'cd']))
np.save(f'{out}/bytes.npy', np.array([b'ab']))
np.save(f'{out}/structured.npy', np.zeros(3, dtype=[('x', '<f4'), ('y', '<i4')]))
np.save(f'{out}/complex.npy', np.zeros(3, dtype='<c8'))
np.save(f'{out}/datetime.npy', np.zeros(3, dtype='<M8[ns]'))
`;

describe.runIf(hasNumpy)('NPY files written by NumPy', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-npy-'));
    python(WRITE_CASES, [dir, NPY_DTYPES.join(',')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const dtype of NPY_DTYPES) {
    for (const order of ['le', 'be'] as const) {
      it(`reads ${dtype} (${order === 'le' ? 'little' : 'big'} endian) bit-exactly`, async () => {
        const array = await readNpy(path.join(dir, `${dtype}-${order}.npy`));
        expect(array.dtype).toBe(dtype);
        expect(array.shape).toEqual([3, 4, 5]);
        expect(array.data.length).toBe(60);
        expect(Buffer.from(bytesOf(array)).equals(readFileSync(path.join(dir, `${dtype}-${order}.bin`)))).toBe(true);
      });
    }
  }

  for (const version of [1, 2, 3]) {
    it(`reads format version ${version}.0 headers`, async () => {
      const array = await readNpy(path.join(dir, `v${version}.npy`));
      expect(array.shape).toEqual([2, 3, 4]);
      expect(Array.from(array.data as Float32Array)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    });
  }

  it('reads a 0-d array as shape [] with one element', async () => {
    const array = await readNpy(path.join(dir, 'scalar.npy'));
    expect(array.shape).toEqual([]);
    expect(Array.from(array.data as Float64Array)).toEqual([3.5]);
  });

  it('reads an empty array with its shape', async () => {
    const array = await readNpy(path.join(dir, 'empty.npy'));
    expect(array.shape).toEqual([0, 3]);
    expect(array.data.length).toBe(0);
  });

  it('reads a 40-dimensional array (longer header)', async () => {
    const array = await readNpy(path.join(dir, 'big-header.npy'));
    expect(array.shape).toHaveLength(40);
    expect(array.dtype).toBe('int16');
  });

  it('accepts Fortran order for a 1-d array, where it is the same bytes as C order', async () => {
    const array = await readNpy(path.join(dir, 'fortran-1d.npy'));
    expect(Array.from(array.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  const rejected: [string, string, RegExp][] = [
    ['fortran', 'E_DATA_NPY_UNSUPPORTED', /Fortran order/],
    ['object', 'E_DATA_NPY_UNSUPPORTED', /dtype object/],
    ['unicode', 'E_DATA_NPY_UNSUPPORTED', /string dtype '<U2'/],
    ['bytes', 'E_DATA_NPY_UNSUPPORTED', /string dtype '\|S2'/],
    ['structured', 'E_DATA_NPY_UNSUPPORTED', /structured dtype/],
    ['complex', 'E_DATA_NPY_UNSUPPORTED', /complex dtype/],
    ['datetime', 'E_DATA_NPY_UNSUPPORTED', /datetime dtype/],
  ];
  for (const [name, code, message] of rejected) {
    it(`rejects ${name} arrays with ${code} naming the problem and the file`, async () => {
      const file = path.join(dir, `${name}.npy`);
      const error: unknown = await readNpy(file).catch((err: unknown) => err);
      expect(isEdgevolveError(error, code as 'E_DATA_NPY_UNSUPPORTED')).toBe(true);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(file);
    });
  }

  it('rejects a NumPy file cut short, saying how many bytes are missing', async () => {
    const whole = readFileSync(path.join(dir, 'float32-le.npy'));
    const file = path.join(dir, 'cut.npy');
    writeFileSync(file, whole.subarray(0, whole.length - 7));
    const error: unknown = await readNpy(file).catch((err: unknown) => err);
    expect(isEdgevolveError(error, 'E_DATA_NPY_TRUNCATED')).toBe(true);
    expect((error as Error).message).toMatch(/needs 240 data bytes, the file has 233 \(7 missing\)/);
  });
});

// NumPy loads each file and prints dtype, shape and the sha256 of its little-endian bytes.
const READ_BACK = String.raw`
import sys, json, hashlib, numpy as np
result = {}
for file in sys.argv[1:]:
    a = np.load(file, allow_pickle=False)
    result[file] = [a.dtype.name, list(a.shape), hashlib.sha256(a.astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest(), a.flags['C_CONTIGUOUS']]
print(json.dumps(result))
`;

describe.runIf(hasNumpy)('NPY files written by edgevolve, read by NumPy', () => {
  it('round-trips every dtype, a 0-d and an empty array bit-exactly through np.load', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-npy-'));
    try {
      const arrays = new Map<string, NpyArray>();
      for (const dtype of NPY_DTYPES) arrays.set(path.join(dir, `${dtype}.npy`), patterned(dtype, [2, 3, 5]));
      arrays.set(path.join(dir, 'scalar.npy'), { dtype: 'float32', shape: [], data: new Float32Array([-1.25]) });
      arrays.set(path.join(dir, 'empty.npy'), { dtype: 'int64', shape: [0, 4], data: new BigInt64Array(0) });
      for (const [file, array] of arrays) await writeNpy(file, array);

      const seen = JSON.parse(python(READ_BACK, [...arrays.keys()])) as Record<string, [string, number[], string, boolean]>;
      for (const [file, array] of arrays) {
        expect(seen[file]).toEqual([array.dtype, [...array.shape], sha256(bytesOf(array)), true]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Deterministic, full-range bit patterns for a dtype (bool as 0/1). */
function patterned(dtype: NpyDtype, shape: number[]): NpyArray {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = allocateNpyData(dtype, count);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, count * npyItemSize(dtype));
  for (let i = 0; i < bytes.length; i++) bytes[i] = dtype === 'bool' ? i % 2 : (i * 151 + 13) & 0xff;
  return { dtype, shape, data };
}
