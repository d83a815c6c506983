/**
 * Scale and zero-point arithmetic, exactly as onnxruntime's quantization tool does it
 * (quant_utils.py: compute_scale_zp, get_qmin_qmax_for_qType, quantize_nparray,
 * quantize_bias_static_impl; see shared/reference/compression.md §1.6):
 * the range always includes 0, rounding is half to even (numpy.round), scale is
 * computed in float64 and stored as float32, values clip to the FULL type range.
 */
import { DataType } from '../../onnx/types.ts';

/** The quantized element types the passes emit. */
export type QuantType = 'int8' | 'uint8';

export function quantDataType(type: QuantType): number {
  return type === 'int8' ? DataType.INT8 : DataType.UINT8;
}

/** numpy.round: to nearest, ties to even. `Math.round` rounds ties up and differs on exact halves. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round(x) = floor(x + 0.5): on an exact tie it went up; step back to the even neighbour.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface QRange {
  readonly qmin: number;
  readonly qmax: number;
}

/** The full range of the type: what values are clipped to. */
export function fullRange(type: QuantType): QRange {
  return type === 'int8' ? { qmin: -128, qmax: 127 } : { qmin: 0, qmax: 255 };
}

/** get_qmin_qmax_for_qType: reduce_range wins over symmetric, which wins over the full range. */
export function quantRange(type: QuantType, opts: { symmetric: boolean; reduceRange: boolean }): QRange {
  if (type === 'int8') {
    if (opts.reduceRange) return { qmin: -64, qmax: 64 };
    if (opts.symmetric) return { qmin: -127, qmax: 127 };
    return { qmin: -128, qmax: 127 };
  }
  if (opts.reduceRange) return { qmin: 0, qmax: 127 };
  if (opts.symmetric) return { qmin: 0, qmax: 254 };
  return { qmin: 0, qmax: 255 };
}

export interface ScaleZeroPoint {
  /** Rounded to float32, as it is stored. */
  readonly scale: number;
  readonly zeroPoint: number;
}

const FLOAT32_MIN_NORMAL = 2 ** -126;

/** compute_scale_zp for a real range and an integer range (ORT quant_utils.py). */
export function computeScaleZeroPoint(rmin: number, rmax: number, range: QRange, symmetric: boolean, minRealRange = 0): ScaleZeroPoint {
  let lo = Math.min(rmin, 0);
  let hi = Math.max(rmax, 0);
  if (minRealRange > 0) hi = Math.max(hi, lo + minRealRange);
  if (symmetric) {
    const a = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -a;
    hi = a;
  }
  const { qmin, qmax } = range;
  const scale64 = (hi - lo) / (qmax - qmin);
  if (!(scale64 >= FLOAT32_MIN_NORMAL) || !Number.isFinite(scale64)) {
    // All-zero tensor (or a degenerate range): ORT uses scale 1, zero point 0.
    return { scale: 1, zeroPoint: 0 };
  }
  const zeroPoint = symmetric ? roundHalfEven((qmin + qmax) / 2) : roundHalfEven(qmin - lo / scale64);
  return { scale: Math.fround(scale64), zeroPoint };
}

/** Min and max of a float array (NaN ignored); [0, 0] when empty. */
export function minMax(data: Float32Array, start = 0, end = data.length, stride = 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i += stride) {
    const v = data[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === Infinity ? [0, 0] : [lo, hi];
}

/**
 * quantize_nparray: q = clip(round(float32(x) / scale) + zp, full range), into `out`
 * starting at `offset`, for elements start, start+stride, ... below end.
 */
export function quantizeInto(
  data: Float32Array,
  out: Int8Array | Uint8Array,
  scale: number,
  zeroPoint: number,
  type: QuantType,
  indices: { start: number; end: number; stride: number } = { start: 0, end: data.length, stride: 1 },
): void {
  const { qmin, qmax } = fullRange(type);
  // The division is in float32 in numpy (x is float32, scale a float32 scalar).
  const s = Math.fround(scale);
  for (let i = indices.start; i < indices.end; i += indices.stride) {
    let q = roundHalfEven(Math.fround(data[i]! / s)) + zeroPoint;
    if (q < qmin) q = qmin;
    else if (q > qmax) q = qmax;
    out[i] = q;
  }
}

export interface QuantizedWeight {
  readonly data: Int8Array | Uint8Array;
  readonly type: QuantType;
  /** One per channel when per-channel, else length 1. */
  readonly scales: Float32Array;
  readonly zeroPoints: Int32Array;
  /** The channel axis, or undefined for per-tensor. */
  readonly axis: number | undefined;
}

export interface WeightQuantOptions {
  readonly type: QuantType;
  readonly symmetric: boolean;
  readonly reduceRange: boolean;
  /** Per-channel along this axis (negative counts from the end); undefined for per-tensor. */
  readonly axis?: number | undefined;
}

/** compute_data_quant_params + quantize_nparray for a weight, per tensor or per channel (`weights.take(i, axis)`). */
export function quantizeWeight(data: Float32Array, dims: readonly number[], opts: WeightQuantOptions): QuantizedWeight {
  const range = quantRange(opts.type, opts);
  const out = opts.type === 'int8' ? new Int8Array(data.length) : new Uint8Array(data.length);
  if (opts.axis === undefined) {
    const [lo, hi] = minMax(data);
    const p = computeScaleZeroPoint(lo, hi, range, opts.symmetric);
    quantizeInto(data, out, p.scale, p.zeroPoint, opts.type);
    return { data: out, type: opts.type, scales: Float32Array.of(p.scale), zeroPoints: Int32Array.of(p.zeroPoint), axis: undefined };
  }
  const axis = opts.axis < 0 ? opts.axis + dims.length : opts.axis;
  const channels = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const scales = new Float32Array(channels);
  const zeroPoints = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let o = 0; o < outer; o++) {
      const base = (o * channels + c) * inner;
      for (let i = base; i < base + inner; i++) {
        const v = data[i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) lo = hi = 0;
    const p = computeScaleZeroPoint(lo, hi, range, opts.symmetric);
    scales[c] = p.scale;
    zeroPoints[c] = p.zeroPoint;
    for (let o = 0; o < outer; o++) {
      const base = (o * channels + c) * inner;
      quantizeInto(data, out, p.scale, p.zeroPoint, opts.type, { start: base, end: base + inner, stride: 1 });
    }
  }
  return { data: out, type: opts.type, scales, zeroPoints, axis };
}

export interface QuantizedBias {
  readonly data: Int32Array;
  readonly scales: Float32Array;
  /** Values that hit the int32 limits. */
  readonly saturated: number;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * quantize_bias_static_impl: scale = input_scale * weight_scale (per channel when the
 * weight is), q = clip(round(float64(bias) / float64(scale)), int32).
 */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): QuantizedBias {
  const perChannel = weightScales.length > 1;
  const scales = new Float32Array(weightScales.length);
  for (let c = 0; c < weightScales.length; c++) scales[c] = Math.fround(Math.fround(inputScale) * weightScales[c]!);
  const data = new Int32Array(bias.length);
  let saturated = 0;
  for (let i = 0; i < bias.length; i++) {
    const s = perChannel ? scales[i]! : scales[0]!;
    let q = s === 0 ? 0 : roundHalfEven(bias[i]! / s);
    if (q < INT32_MIN) {
      q = INT32_MIN;
      saturated += 1;
    } else if (q > INT32_MAX) {
      q = INT32_MAX;
      saturated += 1;
    }
    data[i] = q;
  }
  return { data, scales, saturated };
}

/**
 * onnxruntime's `_adjust_weight_scale_for_int32_bias` (on by default in its QDQ
 * quantizer): where input_scale × weight_scale is too small for the bias to fit in
 * int32 (a channel whose weights are all near zero but whose bias is not, common
 * after BatchNormalization folding), the weight scale grows to the smallest valid
 * one. Returns the channels whose scale changed; `scales` is updated in place.
 */
export function adjustWeightScalesForBias(inputScale: number, scales: Float32Array, bias: Float32Array): number[] {
  const epsilon = 1.0001;
  const qrange = 2147483647 - (-2147483648 + 1);
  const changed: number[] = [];
  const fix = (c: number, absmax: number): void => {
    const smallest = (epsilon * 2 * absmax) / qrange;
    const candidate = inputScale * scales[c]!;
    if (candidate < smallest && candidate > 0) {
      scales[c] = Math.fround(scales[c]! * (smallest / candidate));
      changed.push(c);
    }
  };
  if (scales.length === 1) {
    let absmax = 0;
    for (const b of bias) absmax = Math.max(absmax, Math.abs(b));
    fix(0, absmax);
  } else {
    for (let c = 0; c < scales.length; c++) fix(c, Math.abs(bias[c] ?? 0));
  }
  return changed;
}

/** Re-quantizes the given channels of a weight with the (already changed) scales in `q`. */
export function requantizeChannels(data: Float32Array, dims: readonly number[], q: QuantizedWeight, channels: readonly number[]): void {
  const out = q.data;
  if (q.axis === undefined) {
    quantizeInto(data, out, q.scales[0]!, q.zeroPoints[0]!, q.type);
    return;
  }
  const axis = q.axis;
  const count = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  for (const c of channels) {
    for (let o = 0; o < outer; o++) {
      const base = (o * count + c) * inner;
      quantizeInto(data, out, q.scales[c]!, q.zeroPoints[c]!, q.type, { start: base, end: base + inner, stride: 1 });
    }
  }
}
