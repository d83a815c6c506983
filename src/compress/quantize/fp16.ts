/**
 * float32 → float16: initializers and compute in half precision, with Casts where a
 * value crosses between a half-precision node and a float32 one (a blocked op, a
 * node left out by a mixed-precision plan, or a graph input/output that keeps its
 * type). After onnxconverter-common's convert_float_to_float16 and onnxruntime's
 * transformers/float16.py (compression.md §2): default op block list, values outside
 * the float16 range clamped (counted in the report), Resize's scales kept float32.
 *
 * On onnxruntime's CPU execution provider float16 is usually SLOWER than float32
 * (kernels missing in fp16 make it insert casts; ORT #25824, #16778): this is a size
 * option, and the report says so.
 */
import { cloneModel } from '../clone.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import { NameScope, float32ToFloat16Bits, getAttrInt, makeNode, makeTensor, removeUnusedInitializers, setAttribute, tensorDims, tensorToFloat32 } from '../../onnx/index.ts';
import { DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../../onnx/types.ts';
import { graphOf, nodeKey, parameterBytes } from './common.ts';
import { inferElemTypes } from './elem-types.ts';

export interface Fp16Options {
  /** Graph inputs and outputs stay float32, with Casts inside (default true). */
  readonly keepIoTypes: boolean;
  /** Op types left in float32 (replaces the default list when given). */
  readonly opBlockList?: readonly string[];
  /** Node names (see nodeKey) left in float32. */
  readonly nodeBlockList?: readonly string[];
  /** Convert only these nodes (a mixed-precision plan); all others stay float32. */
  readonly onlyNodes?: readonly string[];
  /** Smallest magnitude kept (smaller non-zero values become ±this). Default 5.96e-8, fp16's smallest subnormal. */
  readonly minPositive?: number;
  /** Largest magnitude kept (larger finite values become ±this). Default 65504, fp16's largest finite. */
  readonly maxFinite?: number;
}

/** onnxconverter-common's DEFAULT_OP_BLOCK_LIST: ops without fp16 definitions or unsafe in fp16. */
export const DEFAULT_FP16_OP_BLOCK_LIST: readonly string[] = [
  'ArrayFeatureExtractor', 'Binarizer', 'CastMap', 'CategoryMapper', 'DictVectorizer', 'FeatureVectorizer', 'Imputer',
  'LabelEncoder', 'LinearClassifier', 'LinearRegressor', 'Normalizer', 'OneHotEncoder', 'RandomUniformLike', 'SVMClassifier',
  'SVMRegressor', 'Scaler', 'TreeEnsembleClassifier', 'TreeEnsembleRegressor', 'ZipMap', 'NonMaxSuppression', 'TopK',
  'RoiAlign', 'Resize', 'Range', 'CumSum', 'Min', 'Max', 'Upsample',
  // Random generators and EyeLike pick their type from an attribute: left alone.
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'EyeLike', 'Multinomial',
  // Control flow: subgraphs would need converting level by level.
  'If', 'Loop', 'Scan',
];

/** Inputs that must stay float32 even in a float16 node (onnxruntime's ALWAYS_FLOAT_INPUTS). */
const ALWAYS_FLOAT_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [2] };

const FP16_MIN_SUBNORMAL = 5.96e-8;
const FP16_MAX = 65504;

export const fp16Pass: Pass<Fp16Options> = {
  name: 'fp16',
  run: (model, options) => convertToFp16(model, options),
};

type Precision = 'fp16' | 'fp32';

export function convertToFp16(input: ModelProto, options: Fp16Options): PassResult {
  const model = cloneModel(input);
  const graph = graphOf(model, 'fp16');
  const bytesBefore = parameterBytes(graph);
  const types = inferElemTypes(graph);
  const isFloat = (v: string): boolean => types.get(v) === DataType.FLOAT;
  const blockedOps = new Set(options.opBlockList ?? DEFAULT_FP16_OP_BLOCK_LIST);
  const blockedNodes = new Set(options.nodeBlockList ?? []);
  const only = options.onlyNodes === undefined ? undefined : new Set(options.onlyNodes);
  const names = new NameScope(graph);
  const changes: Change[] = [];
  const warnings: string[] = [];
  const minPositive = options.minPositive ?? FP16_MIN_SUBNORMAL;
  const maxFinite = options.maxFinite ?? FP16_MAX;

  const converted = new Set<NodeProto>();
  for (const node of graph.node ?? []) {
    const key = nodeKey(node);
    const touchesFloat = [...(node.input ?? []), ...(node.output ?? [])].some((v) => v !== '' && isFloat(v)) || isFloatCast(node);
    if (!touchesFloat) continue;
    let reason: string | undefined;
    if (node.domain && node.domain !== 'ai.onnx') reason = `custom domain '${node.domain}'`;
    else if (only !== undefined && !only.has(key)) reason = 'not in the plan for fp16';
    else if (blockedNodes.has(key)) reason = 'node block list';
    else if (blockedOps.has(node.opType ?? '')) reason = 'op block list';
    if (reason === undefined) converted.add(node);
    else if (only === undefined || only.has(key)) changes.push({ target: key, action: 'kept-float', detail: `${node.opType}: ${reason}` });
  }

  // Where each float32 value lives after conversion.
  const home = new Map<string, Precision>();
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const v of graph.input ?? []) if (v.name && isFloat(v.name) && !initializers.has(v.name)) home.set(v.name, options.keepIoTypes ? 'fp32' : 'fp16');
  for (const node of graph.node ?? []) {
    for (const o of node.output ?? []) if (o && (isFloat(o) || (isFloatCast(node) && converted.has(node)))) home.set(o, converted.has(node) ? 'fp16' : 'fp32');
  }
  // An initializer is stored in fp16 when any converted node reads it in a float16 slot.
  const initPrecision = new Map<string, Precision>();
  for (const node of converted) {
    (node.input ?? []).forEach((i, slot) => {
      if (initializers.get(i)?.dataType === DataType.FLOAT && !isAlwaysFloat(node, slot)) initPrecision.set(i, 'fp16');
    });
  }
  const graphInputInit = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  let clamped = 0;
  let convertedInits = 0;
  const fp16Init = new Map<string, string>();
  for (const [name, t] of initializers) {
    if (t.dataType !== DataType.FLOAT || initPrecision.get(name) !== 'fp16') {
      if (t.dataType === DataType.FLOAT) home.set(name, 'fp32');
      continue;
    }
    const { tensor, clampedCount } = toFloat16Tensor(t, graphInputInit.has(name) ? names.fresh(`${name}_fp16`) : name, minPositive, maxFinite);
    clamped += clampedCount;
    convertedInits += 1;
    if (tensor.name === name) {
      initializers.set(name, tensor);
      home.set(name, 'fp16');
    } else {
      // An initializer that is also a graph input may be overridden by the caller: keep it, convert a copy.
      (graph.initializer ??= []).push(tensor);
      fp16Init.set(name, tensor.name!);
      home.set(name, 'fp32');
    }
  }
  graph.initializer = (graph.initializer ?? []).map((t) => initializers.get(t.name ?? '') ?? t);

  // Casts at the boundaries, one per (value, direction), placed right after the value's producer.
  const castOf = new Map<string, string>();
  const after = new Map<NodeProto | null, NodeProto[]>();
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) for (const o of node.output ?? []) if (o) producer.set(o, node);
  const cast = (value: string, to: Precision): string => {
    const key = `${value}|${to}`;
    const known = castOf.get(key);
    if (known !== undefined) return known;
    if (to === 'fp16' && fp16Init.has(value)) return fp16Init.get(value)!;
    const out = names.fresh(`${value}_cast_to_${to}`);
    const node = makeNode('Cast', [value], [out], { to: to === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT }, { name: names.fresh(`${value}_cast_to_${to}_node`) });
    const anchor = producer.get(value) ?? null;
    const list = after.get(anchor) ?? [];
    list.push(node);
    after.set(anchor, list);
    castOf.set(key, out);
    return out;
  };
  let castsAdded = 0;
  for (const node of graph.node ?? []) {
    const mine: Precision = converted.has(node) ? 'fp16' : 'fp32';
    node.input = (node.input ?? []).map((i, slot) => {
      const h = home.get(i);
      if (i === '' || h === undefined) return i;
      const want: Precision = mine === 'fp16' && !isAlwaysFloat(node, slot) ? 'fp16' : 'fp32';
      if (h === want) return i;
      castsAdded += 1;
      return cast(i, want);
    });
    if (converted.has(node)) retypeAttributes(node);
  }
  // Graph outputs: keep float32 (a Cast writes the original name) or become float16.
  for (const out of graph.output ?? []) {
    const name = out.name ?? '';
    if (home.get(name) !== 'fp16') continue;
    if (!options.keepIoTypes) {
      out.type = retype(out, DataType.FLOAT16);
      continue;
    }
    const renamed = names.fresh(`${name}_fp16`);
    const p = producer.get(name);
    if (p !== undefined) p.output = (p.output ?? []).map((o) => (o === name ? renamed : o));
    for (const node of graph.node ?? []) node.input = (node.input ?? []).map((i) => (i === name ? renamed : i));
    for (const list of after.values()) for (const c of list) c.input = (c.input ?? []).map((i) => (i === name ? renamed : i));
    const castNode = makeNode('Cast', [renamed], [name], { to: DataType.FLOAT }, { name: names.fresh(`${name}_cast_to_fp32_node`) });
    const list = after.get(p ?? null) ?? [];
    list.push(castNode);
    after.set(p ?? null, list);
    castsAdded += 1;
  }
  if (!options.keepIoTypes) for (const v of graph.input ?? []) if (home.get(v.name ?? '') === 'fp16') v.type = retype(v, DataType.FLOAT16);
  graph.valueInfo = (graph.valueInfo ?? []).map((v) => (home.get(v.name ?? '') === 'fp16' ? { ...v, type: retype(v, DataType.FLOAT16) } : v));

  const assembled: NodeProto[] = [...(after.get(null) ?? [])];
  for (const node of graph.node ?? []) assembled.push(node, ...(after.get(node) ?? []));
  graph.node = assembled;
  removeUnusedInitializers(graph);
  for (const node of converted) changes.push({ target: nodeKey(node), action: 'converted', detail: `${node.opType} → float16` });
  if (clamped > 0) warnings.push(`${clamped} initializer value(s) outside the float16 range were clamped to [${minPositive}, ${maxFinite}] in magnitude`);
  warnings.push('float16 on the onnxruntime CPU execution provider is usually slower than float32 (missing fp16 kernels add casts); choose it for size, and measure latency on the device');
  return {
    model,
    modified: converted.size > 0,
    report: {
      pass: 'fp16',
      changes,
      warnings,
      stats: { convertedNodes: converted.size, keptFloatNodes: changes.filter((c) => c.action === 'kept-float').length, convertedInitializers: convertedInits, castsAdded, clampedValues: clamped, parameterBytesBefore: bytesBefore, parameterBytesAfter: parameterBytes(graph) },
    },
  };
}

function isAlwaysFloat(node: NodeProto, slot: number): boolean {
  return ALWAYS_FLOAT_INPUTS[node.opType ?? '']?.includes(slot) ?? false;
}

/** A Cast or ConstantOfShape/Constant that produces float32 from an attribute (its output type comes from the node itself). */
function isFloatCast(node: NodeProto): boolean {
  if (node.opType === 'Cast') return getAttrInt(node, 'to') === DataType.FLOAT;
  return false;
}

/** In a converted node, attributes that name or hold float32 become float16. */
function retypeAttributes(node: NodeProto): void {
  if (node.opType === 'Cast' && getAttrInt(node, 'to') === DataType.FLOAT) setAttribute(node, 'to', DataType.FLOAT16);
  for (const a of node.attribute ?? []) {
    if (a.t && a.t.dataType === DataType.FLOAT) a.t = toFloat16Tensor(a.t, a.t.name ?? '', FP16_MIN_SUBNORMAL, FP16_MAX).tensor;
  }
  if (node.opType === 'Constant') {
    const f = node.attribute?.find((a) => a.name === 'value_float' || a.name === 'value_floats');
    if (f !== undefined) {
      const values = f.name === 'value_float' ? [f.f ?? 0] : [...(f.floats ?? [])];
      const dims = f.name === 'value_float' ? [] : [values.length];
      node.attribute = [{ name: 'value', type: 4, t: toFloat16Tensor(makeTensor('', DataType.FLOAT, dims, values), '', FP16_MIN_SUBNORMAL, FP16_MAX).tensor }];
    }
  }
}

function retype(v: ValueInfoProto, elemType: number): ValueInfoProto['type'] {
  const tensorType = v.type?.tensorType;
  return { ...(v.type ?? {}), tensorType: { ...(tensorType ?? {}), elemType } };
}

/** A float16 copy of a float32 tensor, with out-of-range magnitudes clamped. */
export function toFloat16Tensor(t: TensorProto, name: string, minPositive: number, maxFinite: number): { tensor: TensorProto; clampedCount: number } {
  const data = tensorToFloat32(t);
  const bits = new Uint16Array(data.length);
  let clampedCount = 0;
  for (let i = 0; i < data.length; i++) {
    let x = data[i]!;
    if (x !== 0 && Number.isFinite(x)) {
      const m = Math.abs(x);
      if (m < minPositive) {
        x = x < 0 ? -minPositive : minPositive;
        clampedCount += 1;
      } else if (m > maxFinite) {
        x = x < 0 ? -maxFinite : maxFinite;
        clampedCount += 1;
      }
    }
    bits[i] = float32ToFloat16Bits(x);
  }
  const tensor = makeTensor(name, DataType.FLOAT16, tensorDims(t), bits);
  return { tensor, clampedCount };
}

export type { GraphProto };
