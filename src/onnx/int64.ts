import Long from 'long';
import type { Int64 } from './types.ts';

/** Reads an int64 field as a JS number; throws a RangeError when it is not exactly representable. */
export function int64ToNumber(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  const n = value.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`int64 value ${value.toString()} is outside the safe integer range`);
  return n;
}

/** Reads an int64 field as a number, clamping values beyond ±2^53 (for sizes and caps, where the exact value does not matter). */
export function int64ToNumberClamped(value: Int64 | undefined | null): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  return value.toNumber();
}

/** Reads an int64 field exactly. */
export function int64ToBigInt(value: Int64 | undefined | null): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'number') return BigInt(value);
  return BigInt(value.toString());
}

/** Makes an exact int64 from a bigint (for INT64_MAX-style sentinels). */
export function int64FromBigInt(value: bigint): Long {
  return Long.fromString(value.toString(), false);
}
