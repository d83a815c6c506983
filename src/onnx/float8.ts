/**
 * float32 ↔ the four 8-bit float formats of ONNX (and 4-bit E2M1 decoding), bit-exact,
 * round-to-nearest-even, with the saturation rules of the ONNX Cast operator:
 * https://onnx.ai/onnx/technical/float8.html
 *
 * | format      | bias | Inf       | NaN              | -0  | max finite |
 * |-------------|------|-----------|------------------|-----|------------|
 * | E4M3FN      | 7    | none      | S.1111.111       | yes | 448        |
 * | E4M3FNUZ    | 8    | none      | 0x80             | no  | 240        |
 * | E5M2        | 15   | S.11111.00| S.11111.{01,10,11}| yes | 57344      |
 * | E5M2FNUZ    | 16   | none      | 0x80             | no  | 57344      |
 */
import { DataType } from './types.ts';
import { float32Bits } from './float16.ts';

export type Float8Type =
  | typeof DataType.FLOAT8E4M3FN
  | typeof DataType.FLOAT8E4M3FNUZ
  | typeof DataType.FLOAT8E5M2
  | typeof DataType.FLOAT8E5M2FNUZ;

interface Float8Format {
  readonly mantissaBits: number;
  readonly bias: number;
  readonly hasInfinity: boolean;
  /** UZ formats: no negative zero, 0x80 is the only NaN. */
  readonly unsignedZero: boolean;
  readonly maxFinite: number;
  readonly maxCode: number;
}

const FORMATS: Readonly<Record<Float8Type, Float8Format>> = {
  [DataType.FLOAT8E4M3FN]: { mantissaBits: 3, bias: 7, hasInfinity: false, unsignedZero: false, maxFinite: 448, maxCode: 0x7e },
  [DataType.FLOAT8E4M3FNUZ]: { mantissaBits: 3, bias: 8, hasInfinity: false, unsignedZero: true, maxFinite: 240, maxCode: 0x7f },
  [DataType.FLOAT8E5M2]: { mantissaBits: 2, bias: 15, hasInfinity: true, unsignedZero: false, maxFinite: 57344, maxCode: 0x7b },
  [DataType.FLOAT8E5M2FNUZ]: { mantissaBits: 2, bias: 16, hasInfinity: false, unsignedZero: true, maxFinite: 57344, maxCode: 0x7f },
};

export function isFloat8(dataType: number): dataType is Float8Type {
  return dataType in FORMATS;
}

function formatOf(type: Float8Type): Float8Format {
  return FORMATS[type];
}

function nanCode(fmt: Float8Format, sign: number): number {
  return fmt.unsignedZero ? 0x80 : sign | 0x7f;
}

/**
 * float32 → float8 bits. With `saturate` (the ONNX Cast default) values beyond the
 * largest finite value, and infinities, become ±max; without it they become Inf
 * (E5M2) or NaN (the formats without Inf). Overflow is judged after rounding, as in IEEE.
 */
export function float32ToFloat8Bits(value: number, type: Float8Type, saturate = true): number {
  const fmt = formatOf(type);
  const bits = float32Bits(value);
  const sign = (bits >>> 24) & 0x80;
  const magnitudeBits = bits & 0x7fffffff;
  if (magnitudeBits > 0x7f800000) return nanCode(fmt, sign);
  if (magnitudeBits === 0x7f800000) {
    if (saturate) return sign | fmt.maxCode;
    return fmt.hasInfinity ? sign | 0x7c : nanCode(fmt, sign);
  }
  const zero = fmt.unsignedZero ? 0 : sign;
  const exponentField = magnitudeBits >>> 23;
  if (exponentField === 0) return zero; // float32 subnormals are far below every float8 subnormal
  const magnitude = Math.abs(fround(value));
  const minNormalExponent = 1 - fmt.bias;
  // The quantum: the value of one unit in the last place at this magnitude (subnormals share the smallest).
  let quantumExponent = Math.max(exponentField - 127, minNormalExponent) - fmt.mantissaBits;
  const scaled = magnitude * 2 ** -quantumExponent; // exact: a power-of-two scale of a 24-bit significand
  let units = Math.floor(scaled);
  const fraction = scaled - units;
  if (fraction > 0.5 || (fraction === 0.5 && (units & 1) === 1)) units += 1;
  if (units === 0) return zero;
  if (units * 2 ** quantumExponent > fmt.maxFinite) {
    if (saturate) return sign | fmt.maxCode;
    return fmt.hasInfinity ? sign | 0x7c : nanCode(fmt, sign);
  }
  const implicitOne = 1 << fmt.mantissaBits;
  if (units >= implicitOne * 2) {
    // Rounding carried into the next binade.
    units /= 2;
    quantumExponent += 1;
  }
  if (units < implicitOne) return sign | units; // subnormal: exponent field 0
  const biasedExponent = quantumExponent + fmt.mantissaBits + fmt.bias;
  return sign | (biasedExponent << fmt.mantissaBits) | (units - implicitOne);
}

const scratch = new Float32Array(1);
function fround(value: number): number {
  scratch[0] = value;
  return scratch[0];
}

/** float8 bits → float32 value (exact). */
export function float8BitsToFloat32(code: number, type: Float8Type): number {
  const fmt = formatOf(type);
  const byte = code & 0xff;
  if (fmt.unsignedZero && byte === 0x80) return NaN;
  const negative = (byte & 0x80) !== 0;
  const exponentMask = (0x7f >>> fmt.mantissaBits) & 0x7f;
  const exponentField = (byte >>> fmt.mantissaBits) & exponentMask;
  const mantissa = byte & ((1 << fmt.mantissaBits) - 1);
  if (!fmt.unsignedZero) {
    if (fmt.hasInfinity && exponentField === exponentMask) {
      if (mantissa === 0) return negative ? -Infinity : Infinity;
      return NaN;
    }
    if (!fmt.hasInfinity && (byte & 0x7f) === 0x7f) return NaN;
  }
  const magnitude =
    exponentField === 0
      ? mantissa * 2 ** (1 - fmt.bias - fmt.mantissaBits)
      : (1 + mantissa / (1 << fmt.mantissaBits)) * 2 ** (exponentField - fmt.bias);
  return negative ? -magnitude : magnitude;
}

/** Bulk float8 → float32 through a 256-entry table per format. */
export function float8ArrayToFloat32(src: Uint8Array, type: Float8Type, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = decodeTable(type);
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
  return dst;
}

/** Bulk float32 → float8 bits. */
export function float32ArrayToFloat8(
  src: Float32Array | readonly number[],
  type: Float8Type,
  saturate = true,
  dst: Uint8Array = new Uint8Array(src.length),
): Uint8Array {
  for (let i = 0; i < src.length; i++) dst[i] = float32ToFloat8Bits(src[i]!, type, saturate);
  return dst;
}

const decodeTables = new Map<Float8Type, Float32Array>();
function decodeTable(type: Float8Type): Float32Array {
  let table = decodeTables.get(type);
  if (table === undefined) {
    table = new Float32Array(256);
    for (let i = 0; i < 256; i++) table[i] = float8BitsToFloat32(i, type);
    decodeTables.set(type, table);
  }
  return table;
}

/** FLOAT4E2M1 (bias 1, no Inf or NaN, max 6): the 16 values of a 4-bit code. */
const FLOAT4E2M1_VALUES = new Float32Array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);

export function float4e2m1BitsToFloat32(code: number): number {
  return FLOAT4E2M1_VALUES[code & 0xf]!;
}
