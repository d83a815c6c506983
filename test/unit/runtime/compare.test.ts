import { describe, expect, it } from 'vitest';
import { DataType, float32ArrayToFloat16, type TensorValue } from '../../../src/onnx/index.ts';
import { compareTensors, EXACT, ONNX_BACKEND_TOLERANCE } from '../../../src/runtime/compare.ts';

const f32 = (...xs: number[]): TensorValue => ({ dataType: DataType.FLOAT, dims: [xs.length], data: new Float32Array(xs) });

describe('compareTensors (numpy assert_allclose semantics, rtol 1e-3, atol 1e-7)', () => {
  it('accepts |a - e| <= atol + rtol * |e| and rejects just beyond it', () => {
    expect(compareTensors(f32(1000.9), f32(1000))).toBeUndefined();
    expect(compareTensors(f32(1001.1), f32(1000))?.mismatched).toBe(1);
    // Near zero only atol applies.
    expect(compareTensors(f32(5e-8), f32(0))).toBeUndefined();
    expect(compareTensors(f32(2e-7), f32(0))).toBeDefined();
  });

  it('treats NaN as equal to NaN but not to a number, and infinities as equal only to themselves', () => {
    expect(compareTensors(f32(Number.NaN, Infinity, -Infinity), f32(Number.NaN, Infinity, -Infinity))).toBeUndefined();
    expect(compareTensors(f32(Number.NaN), f32(1))).toBeDefined();
    expect(compareTensors(f32(1), f32(Number.NaN))).toBeDefined();
    expect(compareTensors(f32(Infinity), f32(-Infinity))).toBeDefined();
    expect(compareTensors(f32(Infinity), f32(1e38))).toBeDefined();
  });

  it('reports how many elements differ, the first one, and the largest difference', () => {
    const m = compareTensors(f32(1, 2, 3.5, 4.25), f32(1, 2.5, 3, 4));
    expect(m).toEqual({ reason: '3/4 elements differ; first at 1: 2 vs 2.5; max |diff| 0.5', mismatched: 3, maxAbsDiff: 0.5 });
  });

  it('rejects a different element type or shape before looking at values', () => {
    expect(compareTensors(f32(1), { dataType: DataType.DOUBLE, dims: [1], data: new Float64Array([1]) })?.reason).toBe('element type FLOAT, expected DOUBLE');
    expect(compareTensors({ ...f32(1, 2), dims: [1, 2] }, f32(1, 2))?.reason).toBe('shape [1,2], expected [2]');
  });

  it('compares strings and booleans exactly', () => {
    const s = (...xs: string[]): TensorValue => ({ dataType: DataType.STRING, dims: [xs.length], data: xs });
    expect(compareTensors(s('a', 'b'), s('a', 'b'))).toBeUndefined();
    expect(compareTensors(s('0.60484552'), s('0.6048455'))?.mismatched).toBe(1);
    const b = (...xs: number[]): TensorValue => ({ dataType: DataType.BOOL, dims: [xs.length], data: new Uint8Array(xs) });
    expect(compareTensors(b(1, 0), b(1, 1))?.mismatched).toBe(1);
  });

  it('compares int64 exactly at the extremes and with tolerance in between, as numpy does', () => {
    const i64 = (...xs: bigint[]): TensorValue => ({ dataType: DataType.INT64, dims: [xs.length], data: new BigInt64Array(xs) });
    const max = 2n ** 63n - 1n;
    expect(compareTensors(i64(max, -max), i64(max, -max))).toBeUndefined();
    expect(compareTensors(i64(1000n), i64(1001n))).toBeUndefined(); // 1 <= 1e-3 * 1001
    expect(compareTensors(i64(10n), i64(11n))?.mismatched).toBe(1);
  });

  it('decodes FLOAT16 bits to values before comparing (1.0 vs 1.0009765625 is within rtol 1e-3)', () => {
    const h = (...xs: number[]): TensorValue => ({ dataType: DataType.FLOAT16, dims: [xs.length], data: float32ArrayToFloat16(new Float32Array(xs)) });
    expect(compareTensors(h(1.0009765625), h(1))).toBeUndefined();
    expect(compareTensors(h(1.5), h(1))?.mismatched).toBe(1);
  });

  it('EXACT tolerates nothing but NaN against NaN', () => {
    expect(compareTensors(f32(1, Number.NaN), f32(1, Number.NaN), EXACT)).toBeUndefined();
    expect(compareTensors(f32(1 + 2 ** -23), f32(1), EXACT)).toBeDefined();
    expect(compareTensors(f32(1 + 2 ** -23), f32(1), ONNX_BACKEND_TOLERANCE)).toBeUndefined();
  });
});
