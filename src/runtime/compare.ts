/**
 * Output comparison with the semantics of ONNX's backend tests
 * (onnx/backend/test/runner: `np.testing.assert_allclose(actual, expected, rtol, atol)`
 * after checking dtype): same element type, same shape, and per element
 * |actual - expected| <= atol + rtol * |expected|, NaN equal to NaN, infinities equal
 * only to themselves. Strings and booleans compare exactly. Used by the conformance
 * runner and, for fidelity, by the evaluation harness.
 */
import { DataType, type TensorValue } from '../onnx/index.ts';
import { dataTypeName, valueToFloat32 } from '../onnx/index.ts';

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

/** ONNX's backend-test defaults. */
export const ONNX_BACKEND_TOLERANCE: Tolerance = Object.freeze({ rtol: 1e-3, atol: 1e-7 });

/** Exact equality (NaN equal to NaN, -0 equal to 0): for two runs that must agree exactly. */
export const EXACT: Tolerance = Object.freeze({ rtol: 0, atol: 0 });

/** Why two tensors differ; undefined from compareTensors means they agree. */
export interface Mismatch {
  readonly reason: string;
  /** Elements outside tolerance (0 for type or shape mismatches). */
  readonly mismatched: number;
  readonly maxAbsDiff: number;
}

/** Compares `actual` with `expected`; undefined when they agree within `tolerance`. */
export function compareTensors(actual: TensorValue, expected: TensorValue, tolerance: Tolerance = ONNX_BACKEND_TOLERANCE): Mismatch | undefined {
  if (actual.dataType !== expected.dataType) {
    return mismatch(`element type ${dataTypeName(actual.dataType)}, expected ${dataTypeName(expected.dataType)}`);
  }
  if (!sameDims(actual.dims, expected.dims)) {
    return mismatch(`shape [${actual.dims.join(',')}], expected [${expected.dims.join(',')}]`);
  }
  const a = actual.data;
  const e = expected.data;
  if (Array.isArray(a) || Array.isArray(e)) return compareExact(a, e);
  if (actual.dataType === DataType.BOOL) return compareExact(a, e);
  if (a instanceof BigInt64Array || a instanceof BigUint64Array) {
    return compareBigInts(a, e as BigInt64Array | BigUint64Array, tolerance);
  }
  if (isEncodedFloat(actual.dataType)) {
    return compareNumbers(valueToFloat32(actual), valueToFloat32(expected), tolerance);
  }
  return compareNumbers(a, e as ArrayLike<number>, tolerance);
}

/** Element types whose TypedArray holds encoded bits rather than values (FLOAT16 as Uint16, FLOAT8 as Uint8, ...). */
function isEncodedFloat(dataType: number): boolean {
  return (
    dataType === DataType.FLOAT16 ||
    dataType === DataType.BFLOAT16 ||
    dataType === DataType.FLOAT8E4M3FN ||
    dataType === DataType.FLOAT8E4M3FNUZ ||
    dataType === DataType.FLOAT8E5M2 ||
    dataType === DataType.FLOAT8E5M2FNUZ ||
    dataType === DataType.FLOAT4E2M1
  );
}

function compareNumbers(a: ArrayLike<number>, e: ArrayLike<number>, { rtol, atol }: Tolerance): Mismatch | undefined {
  if (a.length !== e.length) return mismatch(`${a.length} elements, expected ${e.length}`);
  let mismatched = 0;
  let first = -1;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (x === y) continue;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    const diff = Math.abs(x - y);
    // An infinity equals only itself (x === y above): with |y| infinite the tolerance
    // would be too. NaN against a number fails because its diff is NaN.
    if (Number.isFinite(y) && diff <= atol + rtol * Math.abs(y)) continue;
    mismatched++;
    if (first < 0) first = i;
    if (!(diff <= maxAbsDiff)) maxAbsDiff = diff;
  }
  if (mismatched === 0) return undefined;
  return {
    reason: `${mismatched}/${a.length} elements differ; first at ${first}: ${a[first]} vs ${e[first]}; max |diff| ${maxAbsDiff}`,
    mismatched,
    maxAbsDiff,
  };
}

function compareBigInts(a: BigInt64Array | BigUint64Array, e: BigInt64Array | BigUint64Array, { rtol, atol }: Tolerance): Mismatch | undefined {
  if (a.length !== e.length) return mismatch(`${a.length} elements, expected ${e.length}`);
  let mismatched = 0;
  let first = -1;
  let maxAbsDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (x === y) continue;
    // Tolerance is checked in float64, as numpy does for integer arrays.
    const diff = Math.abs(Number(x - y));
    if (diff <= atol + rtol * Math.abs(Number(y))) continue;
    mismatched++;
    if (first < 0) first = i;
    if (diff > maxAbsDiff) maxAbsDiff = diff;
  }
  if (mismatched === 0) return undefined;
  return {
    reason: `${mismatched}/${a.length} elements differ; first at ${first}: ${a[first]} vs ${e[first]}`,
    mismatched,
    maxAbsDiff,
  };
}

function compareExact(a: ArrayLike<unknown>, e: ArrayLike<unknown>): Mismatch | undefined {
  if (a.length !== e.length) return mismatch(`${a.length} elements, expected ${e.length}`);
  let mismatched = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i]) continue;
    mismatched++;
    if (first < 0) first = i;
  }
  if (mismatched === 0) return undefined;
  return {
    reason: `${mismatched}/${a.length} elements differ; first at ${first}: ${JSON.stringify(a[first])} vs ${JSON.stringify(e[first])}`,
    mismatched,
    maxAbsDiff: Number.NaN,
  };
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function mismatch(reason: string): Mismatch {
  return { reason, mismatched: 0, maxAbsDiff: Number.NaN };
}
