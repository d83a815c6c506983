/**
 * Bit-exactness of the 16- and 8-bit float conversions, exhaustively over every bit
 * pattern, against references that share no code with src/onnx: numpy's float16 (when
 * python3-numpy is installed) and brute-force nearest-value searches written here.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  DataType,
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  float32ToFloat8Bits,
  float8BitsToFloat32,
  float16ArrayToFloat32,
  type Float8Type,
} from '../../../src/onnx/index.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number): number => {
  u32[0] = bits >>> 0;
  return f32[0]!;
};

/** A deterministic xorshift32 stream of float32 bit patterns. */
function randomFloat32Bits(count: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x;
  }
  return out;
}

/** Inputs that stress rounding: every float16 value, the midpoints between neighbours, ±1 ulp around them, and random patterns. */
function float16StressInputs(): Float32Array {
  const values: number[] = [];
  for (let h = 0; h < 0x7c00; h++) {
    const a = h === 0 ? 0 : float16ReferenceDecode(h);
    const b = float16ReferenceDecode(h + 1);
    const mid = (a + b) / 2;
    f32[0] = mid;
    const bits = u32[0]!;
    for (const v of [a, mid, fromBits(bits - 1), fromBits(bits + 1)]) values.push(v, -v);
  }
  for (const bits of randomFloat32Bits(100_000, 7)) values.push(fromBits(bits));
  values.push(65504, 65519.99, 65520, 1e9, Infinity, -Infinity, NaN, 2 ** -25, 2 ** -26, -0);
  return Float32Array.from(values);
}

/** IEEE binary16 by its definition: (-1)^s · 2^(e-15) · 1.m, subnormals 2^-14 · 0.m. */
function float16ReferenceDecode(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

const hasNumpy = requireTool({
  name: 'python3 with numpy',
  debianPackage: 'python3-numpy',
  check: () => spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0,
});

describe('float16', () => {
  it('decodes all 65,536 bit patterns to the value the binary16 definition gives', () => {
    const bad: number[] = [];
    const bulk = float16ArrayToFloat32(Uint16Array.from({ length: 0x10000 }, (_, i) => i));
    for (let h = 0; h < 0x10000; h++) {
      const want = float16ReferenceDecode(h);
      const got = float16BitsToFloat32(h);
      const same = (a: number) => (Number.isNaN(want) ? Number.isNaN(a) : Object.is(a, want));
      if (!same(got) || !same(bulk[h]!)) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('round-trips every non-NaN float16 through float32 exactly', () => {
    const bad: number[] = [];
    const isNaN16 = (b: number) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
    for (let h = 0; h < 0x10000; h++) {
      const back = float32ToFloat16Bits(float16BitsToFloat32(h));
      if (isNaN16(h) ? !isNaN16(back) : back !== h) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it.runIf(hasNumpy)('encodes float32 exactly as numpy does (every value, midpoint, midpoint±1ulp, 100k random)', () => {
    const inputs = float16StressInputs();
    const result = spawnSync(
      'python3',
      ['-c', 'import sys, numpy as np; x = np.frombuffer(sys.stdin.buffer.read(), dtype="<f4"); sys.stdout.buffer.write(x.astype(np.float16).view("<u2").tobytes())'],
      { input: Buffer.from(inputs.buffer), maxBuffer: 64 * 1024 * 1024 },
    );
    expect(result.status, result.stderr.toString()).toBe(0);
    const want = new Uint16Array(result.stdout.buffer, result.stdout.byteOffset, inputs.length);
    let mismatches = 0;
    for (let i = 0; i < inputs.length; i++) {
      const got = float32ToFloat16Bits(inputs[i]!);
      const isNaN16 = (b: number) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
      if (isNaN16(want[i]!) ? !isNaN16(got) : got !== want[i]) mismatches += 1;
    }
    expect(mismatches).toBe(0);
  });
});

describe('bfloat16', () => {
  it('decodes all 65,536 patterns as the top half of a float32', () => {
    const bad: number[] = [];
    for (let b = 0; b < 0x10000; b++) {
      const want = fromBits(b << 16);
      const got = bfloat16BitsToFloat32(b);
      if (Number.isNaN(want) ? !Number.isNaN(got) : !Object.is(got, want)) bad.push(b);
    }
    expect(bad).toEqual([]);
  });

  it('rounds to the nearest bfloat16, ties to even (brute-force reference over every midpoint and 100k randoms)', () => {
    const inputs: number[] = [];
    for (let b = 0; b < 0x7f80; b++) {
      const lo = fromBits(b << 16);
      const hi = fromBits((b + 1) << 16);
      inputs.push(lo, (lo + hi) / 2, -(lo + hi) / 2);
    }
    for (const bits of randomFloat32Bits(100_000, 11)) inputs.push(fromBits(bits));
    const mismatches: string[] = [];
    for (const x of inputs) {
      f32[0] = x;
      const bits = u32[0]!;
      const value = f32[0];
      const got = float32ToBfloat16Bits(x);
      if (Number.isNaN(value)) {
        if (!Number.isNaN(bfloat16BitsToFloat32(got))) mismatches.push(`NaN -> ${got}`);
        continue;
      }
      // Reference: the two neighbours (truncate, truncate+1 ulp), pick the nearer, tie to the even pattern.
      const down = bits >>> 16;
      const up = down + 1;
      const distanceDown = Math.abs(value - fromBits(down << 16));
      // Past the largest finite bfloat16 the next step is 2^128 (with an unbounded exponent), which then overflows to Inf.
      const upMagnitude = (up & 0x7fff) === 0x7f80 ? 2 ** 128 : Math.abs(fromBits(up << 16));
      const distanceUp = Math.abs(upMagnitude - Math.abs(value));
      const want = (distanceDown < distanceUp ? down : distanceDown > distanceUp ? up : down % 2 === 0 ? down : up) & 0xffff;
      if (got !== want) mismatches.push(`${value}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });
});

const FLOAT8_TYPES: { type: Float8Type; name: string; bias: number; mbits: number; inf: boolean; uz: boolean; max: number }[] = [
  { type: DataType.FLOAT8E4M3FN, name: 'E4M3FN', bias: 7, mbits: 3, inf: false, uz: false, max: 448 },
  { type: DataType.FLOAT8E4M3FNUZ, name: 'E4M3FNUZ', bias: 8, mbits: 3, inf: false, uz: true, max: 240 },
  { type: DataType.FLOAT8E5M2, name: 'E5M2', bias: 15, mbits: 2, inf: true, uz: false, max: 57344 },
  { type: DataType.FLOAT8E5M2FNUZ, name: 'E5M2FNUZ', bias: 16, mbits: 2, inf: false, uz: true, max: 57344 },
];

/** float8 by definition, written independently of src/onnx/float8.ts. */
function float8Reference(code: number, f: (typeof FLOAT8_TYPES)[number]): number {
  const ebits = 7 - f.mbits;
  const s = code & 0x80 ? -1 : 1;
  const e = (code >> f.mbits) & ((1 << ebits) - 1);
  const m = code & ((1 << f.mbits) - 1);
  if (f.uz && code === 0x80) return NaN;
  if (!f.uz && f.inf && e === (1 << ebits) - 1) return m === 0 ? s * Infinity : NaN;
  if (!f.uz && !f.inf && (code & 0x7f) === 0x7f) return NaN;
  const mag = e === 0 ? 2 ** (1 - f.bias) * (m / 2 ** f.mbits) : 2 ** (e - f.bias) * (1 + m / 2 ** f.mbits);
  return s * mag;
}

describe.each(FLOAT8_TYPES)('float8 $name', (f) => {
  const finite = Array.from({ length: 256 }, (_, c) => ({ code: c, value: float8Reference(c, f) })).filter((x) => Number.isFinite(x.value));

  it('decodes all 256 bit patterns as the format defines them', () => {
    for (let c = 0; c < 256; c++) {
      const want = float8Reference(c, f);
      const got = float8BitsToFloat32(c, f.type);
      if (Number.isNaN(want)) expect(got).toBeNaN();
      else expect(Object.is(got, want), `0x${c.toString(16)}`).toBe(true);
    }
  });

  it('round-trips every finite pattern through float32', () => {
    for (const { code, value } of finite) {
      const want = f.uz || code !== 0x80 ? code : 0x80; // -0 exists only in the non-UZ formats
      expect(float32ToFloat8Bits(value, f.type), `0x${code.toString(16)}`).toBe(want);
    }
  });

  it('rounds to nearest, ties to even, and saturates per the ONNX Cast rules (brute-force reference)', () => {
    const positive = finite.filter((x) => x.value > 0 || Object.is(x.value, 0)).sort((a, b) => a.value - b.value);
    const inputs: number[] = [];
    for (let i = 0; i + 1 < positive.length; i++) {
      const a = positive[i]!.value;
      const b = positive[i + 1]!.value;
      const mid = (a + b) / 2;
      f32[0] = mid;
      inputs.push(a, mid, fromBits(u32[0]! - 1), fromBits(u32[0]! + 1));
    }
    for (let h = 0; h < 0x7c00; h += 3) inputs.push(float16ReferenceDecode(h));
    inputs.push(f.max * 1.03, f.max * 1.07, f.max * 2, 1e30, Infinity, 2 ** -30);
    for (const bits of randomFloat32Bits(5_000, 5)) inputs.push(fromBits(bits & 0x7fffffff));
    const top = positive[positive.length - 1]!;
    const step = top.value - positive[positive.length - 2]!.value;
    // Beyond max + step/2 the nearest "value" would be the next binade's first code, which does not exist: overflow.
    // Exactly at max + step/2 the tie goes to even: overflow when max's code is odd.
    const overflows = (mag: number): boolean => mag > top.value + step / 2 || (mag === top.value + step / 2 && top.code % 2 === 1);
    const nearest = (mag: number): number => {
      let lo = 0;
      let hi = positive.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (positive[mid]!.value <= mag) lo = mid;
        else hi = mid;
      }
      const a = positive[lo]!;
      const b = positive[hi]!;
      const da = Math.abs(mag - a.value);
      const db = Math.abs(b.value - mag);
      return da < db ? a.code : db < da ? b.code : a.code % 2 === 0 ? a.code : b.code;
    };
    const mismatches: string[] = [];
    for (const x of inputs) {
      if (Number.isNaN(x)) continue;
      for (const saturate of [true, false]) {
        for (const sign of [1, -1]) {
          const v = sign * x;
          const mag = Math.abs(v);
          const signBit = sign < 0 ? 0x80 : 0;
          let want: number;
          if (mag === Infinity || overflows(mag)) {
            if (saturate) want = top.code | signBit;
            else if (f.inf) want = 0x7c | signBit;
            else want = f.uz ? 0x80 : 0x7f | signBit;
          } else {
            const code = nearest(mag);
            want = code === 0 && f.uz ? 0 : code | signBit;
          }
          const got = float32ToFloat8Bits(v, f.type, saturate);
          if (got !== want) mismatches.push(`x=${v} saturate=${saturate}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
        }
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('maps NaN to NaN', () => {
    expect(float8BitsToFloat32(float32ToFloat8Bits(NaN, f.type), f.type)).toBeNaN();
  });
});
