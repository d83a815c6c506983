/**
 * A tiny evaluator for the ops constant folding handles: shape plumbing (Shape,
 * Reshape, Unsqueeze, Squeeze, Transpose, Concat, Gather, Cast) and elementwise
 * Add/Sub/Mul/Div with broadcasting. Results follow onnxruntime's CPU kernels
 * (float32 arithmetic rounded once per element, integer division truncating, casts
 * truncating toward zero). Anything outside that set, or any input it is unsure
 * about, returns undefined and the node stays in the graph.
 */
import { DataType, getAttrInt, getAttrInts } from '../../onnx/index.ts';
import type { NodeProto, NumericTensorData } from '../../onnx/index.ts';
import { elementCount } from './graph-util.ts';

export type NumericArray = NumericTensorData;

/** A constant value during folding. */
export interface ConstValue {
  readonly dataType: number;
  readonly dims: readonly number[];
  readonly data: NumericArray;
}

/** What the evaluator knows about one node input. */
export interface KnownInput {
  /** The value, when it is a constant. */
  readonly value?: ConstValue;
  /** The static shape, when fully known (for Shape of a non-constant). */
  readonly shape?: readonly number[];
}

export interface EvaluateContext {
  readonly opset: number;
  /** Largest output (elements) folding may create; bigger results stay computed at run time. */
  readonly maxElements: number;
}

export const FOLDABLE_OPS: ReadonlySet<string> = new Set(['Shape', 'Reshape', 'Unsqueeze', 'Squeeze', 'Transpose', 'Concat', 'Gather', 'Cast', 'Add', 'Sub', 'Mul', 'Div']);

type ArrayCtor = new (length: number) => NumericArray;

function allocateLike(data: NumericArray, length: number): NumericArray {
  return new (data.constructor as ArrayCtor)(length);
}

function allocateType(dataType: number, length: number): NumericArray | undefined {
  switch (dataType) {
    case DataType.FLOAT:
      return new Float32Array(length);
    case DataType.DOUBLE:
      return new Float64Array(length);
    case DataType.INT8:
      return new Int8Array(length);
    case DataType.UINT8:
    case DataType.BOOL:
      return new Uint8Array(length);
    case DataType.INT16:
      return new Int16Array(length);
    case DataType.UINT16:
      return new Uint16Array(length);
    case DataType.INT32:
      return new Int32Array(length);
    case DataType.UINT32:
      return new Uint32Array(length);
    case DataType.INT64:
      return new BigInt64Array(length);
    case DataType.UINT64:
      return new BigUint64Array(length);
    default:
      return undefined;
  }
}

function stridesOf(dims: readonly number[]): number[] {
  const strides = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * dims[i + 1]!;
  return strides;
}

function normalizeAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/** int64/int32 constant as plain numbers (shape and axis inputs), or undefined. */
function asIntegers(v: ConstValue | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (v.dataType !== DataType.INT64 && v.dataType !== DataType.INT32) return undefined;
  const out: number[] = [];
  for (const x of v.data) {
    const n = Number(x);
    if (!Number.isSafeInteger(n)) return undefined;
    out.push(n);
  }
  return out;
}

function withDims(v: ConstValue, dims: readonly number[]): ConstValue {
  return { dataType: v.dataType, dims: [...dims], data: v.data };
}

// ------------------------------------------------------------------ ops

function shapeOp(node: NodeProto, input: KnownInput, ctx: EvaluateContext): ConstValue | undefined {
  const dims = input.value?.dims ?? input.shape;
  if (dims === undefined) return undefined;
  const rank = dims.length;
  let start = ctx.opset >= 15 ? getAttrInt(node, 'start', 0) : 0;
  let end = ctx.opset >= 15 ? getAttrInt(node, 'end', rank) : rank;
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = Math.min(Math.max(start, 0), rank);
  end = Math.min(Math.max(end, 0), rank);
  const picked = dims.slice(start, Math.max(start, end));
  return { dataType: DataType.INT64, dims: [picked.length], data: BigInt64Array.from(picked.map((d) => BigInt(d))) };
}

function reshapeOp(node: NodeProto, data: ConstValue, shapeValue: ConstValue | undefined, ctx: EvaluateContext): ConstValue | undefined {
  const requested = ctx.opset >= 5 ? asIntegers(shapeValue) : getAttrInts(node, 'shape');
  if (requested === undefined) return undefined;
  const allowZero = ctx.opset >= 14 && getAttrInt(node, 'allowzero', 0) === 1;
  const total = elementCount(data.dims);
  const dims = requested.map((d, i) => (d === 0 && !allowZero ? data.dims[i] : d));
  if (dims.some((d) => d === undefined || d < -1)) return undefined;
  const inferred = dims.filter((d) => d === -1).length;
  if (inferred > 1) return undefined;
  const known = (dims as number[]).reduce((a, d) => (d === -1 ? a : a * d), 1);
  if (inferred === 1) {
    if (known === 0 || total % known !== 0) return undefined;
    dims[dims.indexOf(-1)] = total / known;
  }
  if (elementCount(dims as number[]) !== total) return undefined;
  return withDims(data, dims as number[]);
}

function axesOf(node: NodeProto, axesInput: ConstValue | undefined, ctx: EvaluateContext, fromInputSince: number): number[] | undefined | null {
  if (ctx.opset >= fromInputSince) {
    if (axesInput === undefined) return node.input?.[1] ? undefined : null;
    return asIntegers(axesInput);
  }
  return getAttrInts(node, 'axes') ?? null;
}

function unsqueezeOp(node: NodeProto, data: ConstValue, axesInput: ConstValue | undefined, ctx: EvaluateContext): ConstValue | undefined {
  const axes = axesOf(node, axesInput, ctx, 13);
  if (!axes) return undefined;
  const rank = data.dims.length + axes.length;
  const normalized = axes.map((a) => normalizeAxis(a, rank));
  if (normalized.some((a) => a === undefined) || new Set(normalized).size !== normalized.length) return undefined;
  const dims: number[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) dims.push(normalized.includes(i) ? 1 : data.dims[next++]!);
  return withDims(data, dims);
}

function squeezeOp(node: NodeProto, data: ConstValue, axesInput: ConstValue | undefined, ctx: EvaluateContext): ConstValue | undefined {
  const axes = axesOf(node, axesInput, ctx, 13);
  if (axes === undefined) return undefined;
  const rank = data.dims.length;
  const drop = axes === null ? data.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0) : axes.map((a) => normalizeAxis(a, rank));
  if (drop.some((a) => a === undefined || data.dims[a] !== 1)) return undefined;
  return withDims(
    data,
    data.dims.filter((_, i) => !drop.includes(i)),
  );
}

function transposeOp(node: NodeProto, data: ConstValue): ConstValue | undefined {
  const rank = data.dims.length;
  const perm = getAttrInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank)) return undefined;
  const outDims = perm.map((p) => data.dims[p]!);
  const inStrides = stridesOf(data.dims);
  const stepFor = perm.map((p) => inStrides[p]!);
  const n = elementCount(outDims);
  const out = allocateLike(data.data, n);
  const counter = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    (out as unknown as unknown[])[i] = (data.data as unknown as unknown[])[src];
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]! += 1;
      src += stepFor[d]!;
      if (counter[d]! < outDims[d]!) break;
      src -= stepFor[d]! * outDims[d]!;
      counter[d] = 0;
    }
  }
  return { dataType: data.dataType, dims: outDims, data: out };
}

function concatOp(node: NodeProto, inputs: readonly ConstValue[]): ConstValue | undefined {
  const first = inputs[0];
  if (first === undefined) return undefined;
  const rank = first.dims.length;
  const axis = normalizeAxis(getAttrInt(node, 'axis', 0), rank);
  if (axis === undefined) return undefined;
  for (const v of inputs) {
    if (v.dataType !== first.dataType || v.dims.length !== rank) return undefined;
    if (v.dims.some((d, i) => i !== axis && d !== first.dims[i])) return undefined;
  }
  const outer = elementCount(first.dims.slice(0, axis));
  const dims = [...first.dims];
  dims[axis] = inputs.reduce((a, v) => a + v.dims[axis]!, 0);
  const out = allocateLike(first.data, elementCount(dims));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const v of inputs) {
      const block = elementCount(v.dims.slice(axis));
      (out as unknown as { set(a: ArrayLike<unknown>, at: number): void }).set(v.data.subarray(o * block, (o + 1) * block), at);
      at += block;
    }
  }
  return { dataType: first.dataType, dims, data: out };
}

function gatherOp(node: NodeProto, data: ConstValue, indices: ConstValue): ConstValue | undefined {
  const rank = data.dims.length;
  const axis = normalizeAxis(getAttrInt(node, 'axis', 0), rank);
  const idx = asIntegers(indices);
  if (axis === undefined || idx === undefined) return undefined;
  const size = data.dims[axis]!;
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]! < 0 ? idx[i]! + size : idx[i]!;
    if (v < 0 || v >= size) return undefined;
    idx[i] = v;
  }
  const outer = elementCount(data.dims.slice(0, axis));
  const inner = elementCount(data.dims.slice(axis + 1));
  const dims = [...data.dims.slice(0, axis), ...indices.dims, ...data.dims.slice(axis + 1)];
  const out = allocateLike(data.data, outer * idx.length * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of idx) {
      const start = (o * size + k) * inner;
      (out as unknown as { set(a: ArrayLike<unknown>, at: number): void }).set(data.data.subarray(start, start + inner), at);
      at += inner;
    }
  }
  return { dataType: data.dataType, dims, data: out };
}

const INTEGER_RANGES: Readonly<Record<number, readonly [number, number]>> = {
  [DataType.INT8]: [-128, 127],
  [DataType.UINT8]: [0, 255],
  [DataType.INT16]: [-32768, 32767],
  [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-2147483648, 2147483647],
  [DataType.UINT32]: [0, 4294967295],
};

function castOp(node: NodeProto, data: ConstValue): ConstValue | undefined {
  const to = getAttrInt(node, 'to');
  if (to === undefined) return undefined;
  const out = allocateType(to, data.data.length);
  if (out === undefined || allocateType(data.dataType, 0) === undefined) return undefined;
  const fromFloat = data.dataType === DataType.FLOAT || data.dataType === DataType.DOUBLE;
  for (let i = 0; i < data.data.length; i++) {
    const x = data.data[i]!;
    if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
      if (typeof x === 'bigint') out[i] = x;
      else {
        // Out-of-range float → int64 is undefined behaviour in onnxruntime; leave such nodes alone.
        if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 63) return undefined;
        out[i] = BigInt(Math.trunc(x));
      }
      continue;
    }
    const v = typeof x === 'bigint' ? Number(x) : x;
    if (to === DataType.BOOL) {
      out[i] = v !== 0 ? 1 : 0;
      continue;
    }
    const range = INTEGER_RANGES[to];
    if (range !== undefined) {
      if (fromFloat && (!Number.isFinite(v) || Math.trunc(v) < range[0] || Math.trunc(v) > range[1])) return undefined;
      if (typeof x === 'bigint' && (v < range[0] || v > range[1])) return undefined;
      out[i] = fromFloat ? Math.trunc(v) : v;
      continue;
    }
    out[i] = v;
  }
  return { dataType: to, dims: data.dims, data: out };
}

function broadcastDims(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each output element, the flat index into an input broadcast to `outDims`. */
function broadcastIndex(inDims: readonly number[], outDims: readonly number[]): Int32Array {
  const rank = outDims.length;
  const padded = [...new Array<number>(rank - inDims.length).fill(1), ...inDims];
  const inStrides = stridesOf(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  const n = elementCount(outDims);
  const index = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    index[i] = src;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]! += 1;
      src += inStrides[d]!;
      if (counter[d]! < outDims[d]!) break;
      src -= inStrides[d]! * outDims[d]!;
      counter[d] = 0;
    }
  }
  return index;
}

type BinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div';

function binaryOp(op: BinaryOp, a: ConstValue, b: ConstValue, ctx: EvaluateContext): ConstValue | undefined {
  if (a.dataType !== b.dataType) return undefined;
  const dt = a.dataType;
  if (dt !== DataType.FLOAT && dt !== DataType.DOUBLE && dt !== DataType.INT32 && dt !== DataType.INT64) return undefined;
  const dims = broadcastDims(a.dims, b.dims);
  if (dims === undefined) return undefined;
  const n = elementCount(dims);
  // Broadcasting can inflate constants (a [C] + [C,1] makes C²); such results stay computed at run time.
  if (n > ctx.maxElements || n > Math.max(a.data.length, b.data.length, 64)) return undefined;
  const ia = broadcastIndex(a.dims, dims);
  const ib = broadcastIndex(b.dims, dims);
  const out = allocateType(dt, n)!;
  if (out instanceof BigInt64Array) {
    const x = a.data as BigInt64Array;
    const y = b.data as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const p = x[ia[i]!]!;
      const q = y[ib[i]!]!;
      if (op === 'Div' && q === 0n) return undefined;
      out[i] = BigInt.asIntN(64, op === 'Add' ? p + q : op === 'Sub' ? p - q : op === 'Mul' ? p * q : p / q);
    }
  } else {
    const x = a.data as Float32Array | Float64Array | Int32Array;
    const y = b.data as Float32Array | Float64Array | Int32Array;
    const integer = dt === DataType.INT32;
    for (let i = 0; i < n; i++) {
      const p = x[ia[i]!]!;
      const q = y[ib[i]!]!;
      if (integer && op === 'Div' && q === 0) return undefined;
      let r: number;
      if (op === 'Add') r = p + q;
      else if (op === 'Sub') r = p - q;
      else if (op === 'Mul') r = integer ? Math.imul(p, q) : p * q;
      else r = integer ? Math.trunc(p / q) : p / q;
      // Typed-array stores round to float32 / wrap to int32 exactly as the C++ kernels do.
      (out as Float32Array)[i] = r;
    }
  }
  return { dataType: dt, dims, data: out };
}

/**
 * Evaluates `node` on known inputs; undefined when the op, a type or an input is not
 * supported, or the result would exceed `ctx.maxElements`.
 */
export function evaluateNode(node: NodeProto, inputs: readonly KnownInput[], ctx: EvaluateContext): ConstValue | undefined {
  const op = node.opType ?? '';
  if ((node.domain ?? '') !== '' || !FOLDABLE_OPS.has(op)) return undefined;
  if (op === 'Shape') return inputs[0] ? shapeOp(node, inputs[0], ctx) : undefined;
  const values = inputs.map((i) => i.value);
  const first = values[0];
  if (first === undefined) return undefined;
  let result: ConstValue | undefined;
  switch (op) {
    case 'Reshape':
      result = reshapeOp(node, first, values[1], ctx);
      break;
    case 'Unsqueeze':
      result = unsqueezeOp(node, first, values[1], ctx);
      break;
    case 'Squeeze':
      result = squeezeOp(node, first, values[1], ctx);
      break;
    case 'Transpose':
      result = transposeOp(node, first);
      break;
    case 'Concat':
      result = values.every((v) => v !== undefined) ? concatOp(node, values) : undefined;
      break;
    case 'Gather':
      result = values[1] ? gatherOp(node, first, values[1]) : undefined;
      break;
    case 'Cast':
      result = castOp(node, first);
      break;
    default:
      result = values[1] ? binaryOp(op as BinaryOp, first, values[1], ctx) : undefined;
  }
  if (result !== undefined && elementCount(result.dims) > ctx.maxElements) return undefined;
  return result;
}
