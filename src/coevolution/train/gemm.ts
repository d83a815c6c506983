/**
 * Single-precision matrix products for training, row-major, on Float32Arrays.
 *
 * One kernel does the work: C[M,N] (+)= A[M,K] * Bt[N,K]^T, as dot products over rows
 * that are both contiguous in K, computed four rows of A by two rows of Bt at a time so
 * that eight running sums live in registers and every element loaded feeds two or four
 * multiply-adds. Measured on this project's 2-core build machine (V8, scalar code) that is
 * ~1.1 G multiply-adds/s, twice the i-k-j streaming loop, whose stores to C dominate.
 * The other layouts transpose their operands into a scratch buffer first: O(K(M+N))
 * copies against O(MNK) arithmetic. The summation order is fixed, so results are
 * bit-identical from run to run.
 */

/** C[M,N] = (accumulate ? C : 0) + A[M,K] * B^T, where B is stored [N,K]. */
export function gemmNT(
  m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
): void {
  dotKernel(m, n, k, a, b, c, accumulate);
}

/**
 * C[M,N] = (accumulate ? C : 0) + A[M,K] * B[K,N].
 * `scratch` must hold K*N elements (B is transposed into it).
 */
export function gemmNN(
  m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
  scratch: Float32Array,
): void {
  transpose(k, n, b, scratch);
  dotKernel(m, n, k, a, scratch, c, accumulate);
}

/**
 * C[M,N] = (accumulate ? C : 0) + A^T * B, where A is stored [K,M] and B [K,N].
 * `scratch` must hold K*(M+N) elements (both operands are transposed into it).
 */
export function gemmTN(
  m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
  scratch: Float32Array,
): void {
  const at = scratch.subarray(0, k * m);
  const bt = scratch.subarray(k * m, k * (m + n));
  transpose(k, m, a, at);
  transpose(k, n, b, bt);
  dotKernel(m, n, k, at, bt, c, accumulate);
}

/** out[cols,rows] = in[rows,cols]^T. */
export function transpose(rows: number, cols: number, input: Float32Array, out: Float32Array): void {
  // Tiles keep both the read and the write side inside the cache.
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(r0 + tile, rows);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(c0 + tile, cols);
      for (let r = r0; r < r1; r++) {
        const rowBase = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = input[rowBase + c]!;
      }
    }
  }
}

function dotKernel(
  m: number, n: number, k: number,
  a: Float32Array, bt: Float32Array, c: Float32Array, accumulate: boolean,
): void {
  if (!accumulate) c.fill(0, 0, m * n);
  const mBlocked = m - (m % 4);
  const nBlocked = n - (n % 2);
  for (let i = 0; i < mBlocked; i += 4) {
    const a0 = i * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    for (let j = 0; j < nBlocked; j += 2) {
      const b0 = j * k;
      const b1 = b0 + k;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = bt[b0 + p]!;
        const x1 = bt[b1 + p]!;
        const y0 = a[a0 + p]!;
        const y1 = a[a1 + p]!;
        const y2 = a[a2 + p]!;
        const y3 = a[a3 + p]!;
        s00 += y0 * x0; s01 += y0 * x1;
        s10 += y1 * x0; s11 += y1 * x1;
        s20 += y2 * x0; s21 += y2 * x1;
        s30 += y3 * x0; s31 += y3 * x1;
      }
      let o = i * n + j;
      c[o] = c[o]! + s00; c[o + 1] = c[o + 1]! + s01; o += n;
      c[o] = c[o]! + s10; c[o + 1] = c[o + 1]! + s11; o += n;
      c[o] = c[o]! + s20; c[o + 1] = c[o + 1]! + s21; o += n;
      c[o] = c[o]! + s30; c[o + 1] = c[o + 1]! + s31;
    }
    for (let j = nBlocked; j < n; j++) {
      for (let r = i; r < i + 4; r++) dotOne(r, j, k, n, a, bt, c);
    }
  }
  for (let i = mBlocked; i < m; i++) {
    for (let j = 0; j < n; j++) dotOne(i, j, k, n, a, bt, c);
  }
}

function dotOne(
  i: number, j: number, k: number, n: number,
  a: Float32Array, bt: Float32Array, c: Float32Array,
): void {
  const aRow = i * k;
  const bRow = j * k;
  let sum = 0;
  for (let p = 0; p < k; p++) sum += a[aRow + p]! * bt[bRow + p]!;
  const o = i * n + j;
  c[o] = c[o]! + sum;
}
