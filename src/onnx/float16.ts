/**
 * Bit-exact conversions between float32 and the 16-bit float formats, rounding to
 * nearest, ties to even (IEEE 754 roundTiesToEven). Values are passed as raw bit
 * patterns (0..0xffff) because JavaScript has no 16-bit float type on Node 20.
 */

// One shared scratch word: reinterpreting a float32 as its bits without allocating.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The float32 bit pattern of `value` (after rounding it to float32). */
export function float32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

/** The float32 value of a 32-bit pattern. */
export function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/**
 * float32 → IEEE binary16 bits, round-to-nearest-even; overflow gives ±Inf, NaN stays
 * NaN (quiet bit set, top payload bits kept, as x86 F16C and ARM FCVT do).
 */
export function float32ToFloat16Bits(value: number): number {
  const x = float32Bits(value);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal (or zero): shift the significand, implicit bit included, into place.
    if (e < -10) return sign;
    const significand = mant | 0x800000;
    const shift = 14 - e;
    let half = significand >>> shift;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half += 1;
    return sign | half;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and 65520+ to Inf).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** IEEE binary16 bits → the exact float32 (as a JS number). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return float32FromBits(((bits & 0x8000) << 16) | ((exp + 112) << 23) | (mant << 13));
}

/** float32 → bfloat16 bits, round-to-nearest-even; NaN stays a quiet NaN. */
export function float32ToBfloat16Bits(value: number): number {
  const x = float32Bits(value);
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  const roundingBias = 0x7fff + ((x >>> 16) & 1);
  return Math.floor((x + roundingBias) / 0x10000) & 0xffff;
}

/** bfloat16 bits → float32 (exact: bfloat16 is the top half of a float32). */
export function bfloat16BitsToFloat32(bits: number): number {
  return float32FromBits((bits & 0xffff) << 16);
}

let float16Table: Float32Array | undefined;

/** Bulk binary16 → float32 through a 65,536-entry table (256 KiB, built on first use). */
export function float16ArrayToFloat32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (float16Table === undefined) {
    float16Table = new Float32Array(0x10000);
    for (let i = 0; i < 0x10000; i++) float16Table[i] = float16BitsToFloat32(i);
  }
  const table = float16Table;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
  return dst;
}

/** Bulk float32 → binary16 bits. */
export function float32ArrayToFloat16(src: Float32Array | readonly number[], dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = float32ToFloat16Bits(src[i]!);
  return dst;
}

/** Bulk bfloat16 → float32: a shift per element, through a Uint32 view of the output. */
export function bfloat16ArrayToFloat32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return dst;
}

/** Bulk float32 → bfloat16 bits. */
export function float32ArrayToBfloat16(src: Float32Array | readonly number[], dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = float32ToBfloat16Bits(src[i]!);
  return dst;
}
