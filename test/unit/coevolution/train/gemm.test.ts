import { describe, expect, it } from 'vitest';
import { Rng, gemmNN, gemmNT, gemmTN, transpose } from '../../../../src/coevolution/train/index.ts';

function random(n: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return out;
}

/** Reference C = A[M,K] B[K,N] in float64, the textbook triple loop. */
function naive(m: number, n: number, k: number, a: Float32Array, b: Float32Array): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
    c[i * n + j] = s;
  }
  return c;
}

function expectAllClose(actual: Float32Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(1e-4);
}

// Sizes that are not multiples of the 4x2 register tile exercise the remainder loops.
const SHAPES: readonly [number, number, number][] = [[1, 1, 1], [4, 2, 8], [7, 5, 3], [9, 11, 13], [16, 6, 33]];

describe('gemm kernels agree with the textbook product', () => {
  for (const [m, n, k] of SHAPES) {
    it(`NN, NT and TN for M=${m} N=${n} K=${k}, overwriting and accumulating`, () => {
      const rng = new Rng(m * 100 + n * 10 + k);
      const a = random(m * k, rng);
      const b = random(k * n, rng);
      const expected = naive(m, n, k, a, b);
      const scratch = new Float32Array(k * (m + n));
      const c = new Float32Array(m * n).fill(Number.NaN);

      gemmNN(m, n, k, a, b, c, false, scratch);
      expectAllClose(c, expected);

      const bt = new Float32Array(n * k);
      transpose(k, n, b, bt);
      gemmNT(m, n, k, a, bt, c, false);
      expectAllClose(c, expected);

      const at = new Float32Array(k * m);
      transpose(m, k, a, at);
      gemmTN(m, n, k, at, b, c, true, scratch);
      expectAllClose(c, expected.map((v) => 2 * v));
    });
  }
});
