/**
 * int8 static quantization in the QDQ format (compression.md §1.4): activations get
 * QuantizeLinear → DequantizeLinear pairs with calibrated scales, weights become int8
 * initializers behind a DequantizeLinear, biases int32 with scale = input scale ×
 * weight scale. onnxruntime fuses `DQ → Conv/MatMul/Gemm/Add/... → Q` node units into
 * QLinearConv, QLinearMatMul, QGemm, QLinearAdd and friends when it loads the model.
 *
 * What the Q/DQ structure adds beyond the int8 weights is kept small (issue 4: int8 size
 * <= 0.27x fp32), each time by leaving to onnxruntime's level-1 graph transformers what
 * they rebuild exactly before its QDQ fusion (level 2) reads the graph, so the fused graph
 * is unchanged:
 * - generated names are short ids (short-names.ts);
 * - zero points that are all zero (symmetric int8 weights of Conv/ConvTranspose, int32
 *   biases) are left out, DequantizeLinear's default; activation zero points of one type
 *   and value are one shared initializer;
 * - a per-channel bias scale is a `Mul(input scale, weight scale)` node rather than a
 *   stored copy of the product (constant folding turns it back into an initializer);
 * - a bias that onnxruntime's WeightBiasQuantization quantizes itself (a Conv or Gemm whose
 *   output goes straight into a QuantizeLinear) is stored as the float value of its int32
 *   form, from which onnxruntime recomputes exactly that int32 bias: no scale, no DQ;
 * - no Q/DQ pair after a direct 8-bit op that its QDQPropagationTransformer propagates
 *   across (MaxPool, Reshape, Transpose, ...): it inserts the same pair on load.
 *
 * The pass is split in two so that calibration measures exactly what will be
 * quantized: `planStatic` decides, from the graph alone, which nodes are quantized and
 * which tensors need a range; `quantizeStatic` applies the plan with the ranges.
 */
import { EdgevolveError } from '../../errors/index.ts';
import { cloneModel } from '../clone.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import { GraphIndex, NameScope, getAttrFloat, getAttrInt, getAttrInts, makeNode, makeTensor, opsetVersion, removeUnusedInitializers, tensorDims, tensorToFloat32 } from '../../onnx/index.ts';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../../onnx/types.ts';
import { graphOf, initializerMap, nodeKey, parameterBytes, readFloat, scaleStats } from './common.ts';
import { inferElemTypes } from './elem-types.ts';
import { raiseOpset } from './opset.ts';
import { ortPropagatesDq } from './ort-qdq.ts';
import { ShortNames } from './short-names.ts';
import {
  computeScaleZeroPoint,
  minMax,
  quantDataType,
  quantizeBias,
  quantizeInto,
  quantizeWeight,
  quantRange,
  adjustWeightScalesForBias,
  requantizeChannels,
  roundHalfEven,
  type QuantizedBias,
  type QuantType,
  type QuantizedWeight,
} from './quant-math.ts';

/** A calibrated real range per tensor name. */
export type TensorRanges = ReadonlyMap<string, readonly [number, number]>;

export interface StaticSelection {
  /** Op types to quantize (default DEFAULT_STATIC_OP_TYPES). */
  readonly opTypes: readonly string[];
  /** Node names (see nodeKey) to leave in float. */
  readonly exclude: readonly string[];
  /** One weight scale per output channel (needs opset 13; raised when lower). */
  readonly perChannel: boolean;
  /** Keep Relu/Clip instead of folding them into the producer's output range. */
  readonly keepRemovableActivations?: boolean;
  /**
   * Conv/ConvTranspose/Gemm/MatMul whose fan-in (products per output value, see weightFanIn) is
   * below this stay float: their int8 kernel saves less than the Q/DQ around it costs (README,
   * PaddleOCR detector). 0 or absent quantizes all.
   */
  readonly minFanIn?: number;
  /**
   * What happens to the nodes minFanIn leaves out: 'float' keeps them entirely float;
   * 'weight-only' stores their weights int8 behind a DequantizeLinear and computes in float
   * (smaller file, nearly float accuracy; slower than 'float' on the CPU EP, which cannot
   * pre-pack a weight that is not an initializer).
   */
  readonly lowFanIn?: 'float' | 'weight-only';
}

export interface StaticQuantOptions extends StaticSelection {
  readonly activationType: QuantType;
  readonly reduceRange: boolean;
  readonly ranges: TensorRanges;
}

/** The union of onnxruntime's QDQ and QLinear registries that its CPU kernels fuse (compression.md §1.2). */
export const DEFAULT_STATIC_OP_TYPES: readonly string[] = [
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze',
  'Resize', 'Softmax', 'Split', 'Slice', 'Gather', 'Pad',
];

/** Which inputs of an op carry data to quantize (the rest are shapes, indices, clip bounds...). */
function dataSlots(node: NodeProto): number[] {
  switch (node.opType ?? '') {
    case 'Add':
    case 'Mul':
      return [0, 1];
    case 'Concat':
      return (node.input ?? []).map((_, i) => i);
    default:
      return [0];
  }
}

/** Ops whose output takes the quantization parameters of their input (onnxruntime's "direct 8-bit" ops). */
const SAME_AS_INPUT = new Set(['Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Slice', 'Gather', 'Split', 'Resize', 'Pad']);
const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
/** Producers whose output may absorb a following Relu/Clip (onnxruntime's QDQRemovableActivation). */
const REMOVABLE = new Set(['Relu', 'Clip']);

interface WeightSlot {
  readonly name: string;
  /** Per-channel axis when per-channel applies. */
  readonly axis: number | undefined;
}

interface NodePlan {
  readonly node: NodeProto;
  /** Activation (or constant data) inputs to read through a DQ. */
  readonly activations: string[];
  readonly weight: WeightSlot | undefined;
  /** Bias initializer name, quantized to int32 when input and weight are. */
  readonly bias: string | undefined;
  /** Outputs to quantize, each with the tensor whose parameters it shares (itself unless direct 8-bit). */
  readonly outputs: { name: string; sharesWith: string }[];
}

export interface StaticPlan {
  readonly nodes: readonly NodePlan[];
  /** Nodes below minFanIn whose weight is stored int8 but which compute in float (lowFanIn 'weight-only'). */
  readonly weightOnly: readonly { readonly node: NodeProto; readonly weight: WeightSlot; readonly fanIn: number }[];
  /** Relu/Clip nodes folded into their producer's output quantization: activation node → producer output renamed. */
  readonly removed: ReadonlyMap<NodeProto, string>;
  readonly keptFloat: readonly Change[];
  /** Non-initializer tensors whose range must be calibrated. */
  readonly tensorsToCalibrate: readonly string[];
  /** The opset the output needs. */
  readonly minOpset: number;
}

function clipLowerBoundIsZero(node: NodeProto, inits: ReadonlyMap<string, TensorProto>): boolean {
  if (node.opType === 'Relu') return true;
  const minName = node.input?.[1];
  if (minName) {
    const t = inits.get(minName);
    if (t === undefined) return false;
    const v = tensorToFloat32(t);
    return v.length === 1 && v[0] === 0;
  }
  // Clip before opset 11 keeps bounds in attributes; none means unbounded below.
  const attrMin = getAttrFloat(node, 'min');
  return attrMin === 0;
}

/**
 * Products per output value of a weighted node with an initializer weight: Conv C_in/group·∏k,
 * ConvTranspose (C_in/group)·∏k/∏strides (on average), Gemm/MatMul K. Undefined when the weight
 * is not an initializer (then the node is not a candidate for this rule).
 */
export function weightFanIn(node: NodeProto, inits: ReadonlyMap<string, TensorProto>): number | undefined {
  const w = inits.get(node.input?.[1] ?? '');
  if (w === undefined) return undefined;
  const dims = tensorDims(w);
  const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
  switch (node.opType) {
    case 'Conv':
      return dims.length >= 3 ? product(dims.slice(1)) : undefined;
    case 'ConvTranspose': {
      if (dims.length < 3) return undefined;
      const strides = getAttrInts(node, 'strides') ?? [];
      return Math.max(1, Math.round((dims[0]! / getAttrInt(node, 'group', 1)) * product(dims.slice(2)) / product(strides)));
    }
    case 'Gemm':
      return dims.length === 2 ? (getAttrInt(node, 'transB', 0) === 1 ? dims[1] : dims[0]) : undefined;
    case 'MatMul':
      return dims.length >= 2 ? dims[dims.length - 2] : undefined;
    case undefined:
    default:
      return undefined;
  }
}

/** Decides what gets quantized, from the graph alone. */
export function planStatic(model: ModelProto, selection: StaticSelection): StaticPlan {
  const graph = graphOf(model, 'int8-static');
  const types = inferElemTypes(graph);
  const inits = initializerMap(graph);
  const index = new GraphIndex(graph);
  const selected = new Set(selection.opTypes);
  const excluded = new Set(selection.exclude);
  const keptFloat: Change[] = [];
  const isFloat = (name: string): boolean => types.get(name) === DataType.FLOAT;
  const floatInit = (name: string | undefined): TensorProto | undefined => {
    const t = name ? inits.get(name) : undefined;
    return t?.dataType === DataType.FLOAT ? t : undefined;
  };
  const candidates = new Set<NodeProto>();
  const weightOnly: StaticPlan['weightOnly'][number][] = [];
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    if (node.domain && node.domain !== 'ai.onnx') continue;
    if (!selected.has(op)) continue;
    const key = nodeKey(node);
    if (excluded.has(key)) {
      keptFloat.push({ target: key, action: 'kept-float', detail: `${op}: excluded (--exclude)` });
      continue;
    }
    const fanIn = WEIGHTED.has(op) && (selection.minFanIn ?? 0) > 0 ? weightFanIn(node, inits) : undefined;
    if (fanIn !== undefined && fanIn < selection.minFanIn!) {
      const w = selection.lowFanIn === 'weight-only' ? floatInit(node.input?.[1]) : undefined;
      if (w !== undefined && tensorDims(w).length >= 2) {
        weightOnly.push({ node, weight: { name: w.name!, axis: selection.perChannel ? perChannelAxis(node, w) : undefined }, fanIn });
        continue;
      }
      keptFloat.push({ target: key, action: 'kept-float', detail: `${op}: fan-in ${fanIn} < minFanIn ${selection.minFanIn}`, stats: { fanIn } });
      continue;
    }
    const out0 = node.output?.[0] ?? '';
    if (!isFloat(out0)) {
      keptFloat.push({ target: key, action: 'kept-float', detail: `${op}: output '${out0}' is not known to be float32` });
      continue;
    }
    const slots = WEIGHTED.has(op) ? [0, 1] : dataSlots(node);
    const bad = slots.map((s) => node.input?.[s] ?? '').find((name) => name === '' || !isFloat(name));
    if (bad !== undefined) {
      keptFloat.push({ target: key, action: 'kept-float', detail: `${op}: input '${bad}' is not known to be float32` });
      continue;
    }
    if (op === 'Gemm' && getAttrInt(node, 'transA', 0) !== 0 && floatInit(node.input?.[0]) !== undefined) {
      keptFloat.push({ target: key, action: 'kept-float', detail: 'Gemm: constant A input' });
      continue;
    }
    candidates.add(node);
  }

  // Relu/Clip whose only input comes from a quantized node that nothing else reads: fold into that node's output range.
  const removed = new Map<NodeProto, string>();
  if (selection.keepRemovableActivations !== true) {
    for (const node of candidates) {
      if (!REMOVABLE.has(node.opType ?? '') || !clipLowerBoundIsZero(node, inits)) continue;
      const input = node.input![0]!;
      const producer = index.producer(input);
      if (producer === undefined || !candidates.has(producer) || removed.has(producer)) continue;
      // A direct 8-bit producer (MaxPool, Resize...) writes with its input's parameters, which
      // include the negatives the Relu/Clip would have cut: folding would silently drop the activation.
      if (SAME_AS_INPUT.has(producer.opType ?? '')) continue;
      if (index.consumers(input).length !== 1 || index.isGraphOutput(input) || index.isGraphOutput(node.output![0]!)) continue;
      removed.set(node, input);
    }
  }

  const nodes: NodePlan[] = [];
  const toCalibrate = new Set<string>();
  for (const node of graph.node ?? []) {
    if (!candidates.has(node) || removed.has(node)) continue;
    const op = node.opType ?? '';
    let weight: WeightSlot | undefined;
    let bias: string | undefined;
    const activations: string[] = [];
    if (WEIGHTED.has(op)) {
      activations.push(node.input![0]!);
      const w = floatInit(node.input?.[1]);
      if (w !== undefined) weight = { name: w.name!, axis: selection.perChannel ? perChannelAxis(node, w) : undefined };
      else activations.push(node.input![1]!);
      const b = floatInit(node.input?.[2]);
      if (weight !== undefined && b !== undefined && tensorDims(b).length === 1 && op !== 'MatMul') bias = b.name;
    } else {
      for (const s of dataSlots(node)) activations.push(node.input![s]!);
    }
    // An output that is a graph output stays float: quantizing it would only add error to what the caller reads.
    let outputs = (node.output ?? []).filter((o) => o && !index.isGraphOutput(o));
    // Outputs absorbing a removed Relu/Clip are quantized under the activation's own name.
    outputs = outputs.map((o) => {
      const consumer = index.consumers(o)[0];
      return consumer !== undefined && removed.get(consumer) === o ? consumer.output![0]! : o;
    });
    const sharesWith = SAME_AS_INPUT.has(op) ? activations[0] : undefined;
    const outPlans = outputs.map((o) => ({ name: o, sharesWith: sharesWith ?? o }));
    nodes.push({ node, activations, weight, bias, outputs: outPlans });
    for (const a of activations) if (!inits.has(a)) toCalibrate.add(a);
    for (const o of outPlans) if (o.sharesWith === o.name) toCalibrate.add(o.name);
  }
  const needsAxis = selection.perChannel && [...nodes, ...weightOnly].some((n) => n.weight?.axis !== undefined);
  return { nodes, weightOnly, removed, keptFloat, tensorsToCalibrate: [...toCalibrate], minOpset: needsAxis ? 13 : 11 };
}

function perChannelAxis(node: NodeProto, w: TensorProto): number | undefined {
  const rank = (w.dims ?? []).length;
  switch (node.opType ?? '') {
    case 'Conv':
      return 0;
    case 'ConvTranspose':
      // Per-channel ConvTranspose needs group 1 (the axis-1 channels are per group otherwise).
      return getAttrInt(node, 'group', 1) === 1 ? 1 : undefined;
    case 'Gemm':
      return getAttrInt(node, 'transB', 0) === 1 ? 0 : 1;
    case 'MatMul':
      return rank === 2 ? 1 : undefined;
    default:
      return undefined;
  }
}

export interface PreparedModel {
  readonly model: ModelProto;
  readonly plan: StaticPlan;
  readonly warnings: readonly string[];
}

/** Clones the model, raises its opset as the plan needs, and plans again on the result (names are stable across the raise). */
export function prepareStatic(input: ModelProto, selection: StaticSelection): PreparedModel {
  const model = cloneModel(input);
  const first = planStatic(model, selection);
  const warnings: string[] = [];
  if (first.nodes.length > 0 && (opsetVersion(model) ?? 1) < first.minOpset) {
    const up = raiseOpset(model, first.minOpset);
    warnings.push(`opset raised from ${up.from} to ${up.to} for Q/DQ${first.minOpset >= 13 ? ' with per-channel axes' : ''}` + (up.rewritten.length > 0 ? ` (${up.rewritten.length} nodes rewritten)` : ''));
  }
  return { model, plan: planStatic(model, selection), warnings };
}

/**
 * The float bias to store for a node whose bias onnxruntime quantizes on load (ORT_QUANTIZES_BIAS):
 * the int32 form's dequantized value q·scale, exactly what its DequantizeLinear would output, so
 * the unoptimized graph computes the same. On load onnxruntime computes
 * Cast(Round(bias / (input scale × weight scale))) in float32, which for these values gives back q;
 * checked per element (a q near 2^22 or larger could come back off by one), else undefined and
 * the bias stays int32.
 */
function biasOnnxruntimeRequantizes(qb: QuantizedBias): Float32Array | undefined {
  const out = new Float32Array(qb.data.length);
  for (let i = 0; i < out.length; i++) {
    const s = qb.scales.length > 1 ? qb.scales[i]! : qb.scales[0]!;
    const q = qb.data[i]!;
    const value = Math.fround(q * s);
    // float32 division (the JS double quotient of two float32 values, rounded once to float32), then round half to even.
    if (s === 0 || !Number.isFinite(value) || roundHalfEven(Math.fround(value / s)) !== q) return undefined;
    out[i] = value;
  }
  return out;
}

export const int8StaticPass: Pass<StaticQuantOptions> = {
  name: 'int8-static',
  run: (model, options) => quantizeStatic(model, options),
};

interface QParams {
  readonly scale: TensorProto;
  readonly zeroPoint: TensorProto;
  readonly scaleValue: number;
  readonly zeroPointValue: number;
}

/**
 * Ops whose weight DequantizeLinear may leave out an all-zero zero point: onnxruntime still
 * fuses them into QLinearConv. Its QGemm/QLinearMatMul selectors want the weight zero point
 * (without it mnist-teacher's int8-static ran 2.7x slower than fp32 instead of 0.34x), so
 * Gemm and MatMul keep it. A per-channel bias scale is a Mul for every op (it is folded
 * before any selector looks).
 */
const OMIT_WEIGHT_ZERO_POINT: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose']);

/**
 * Ops whose float bias onnxruntime's WeightBiasQuantization (level 1) turns into the int32
 * bias its QDQ fusion needs, when the input is read through a per-tensor DequantizeLinear,
 * the weight through a DequantizeLinear (per channel on axis 0; Gemm: the output axis) and
 * the output goes into a QuantizeLinear and nowhere else (weight_bias_quantization.cc).
 * ConvTranspose's per-channel axis is 1, which it does not accept.
 */
const ORT_QUANTIZES_BIAS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'ConvTranspose']);

/** Applies a static plan with calibrated ranges. */
export function quantizeStatic(input: ModelProto, options: StaticQuantOptions): PassResult {
  const prepared = prepareStatic(input, options);
  const { model, plan } = prepared;
  const graph = model.graph!;
  const bytesBefore = parameterBytes(graph);
  const names = new ShortNames(new NameScope(graph));
  const inits = initializerMap(graph);
  const index = new GraphIndex(graph);
  const changes: Change[] = [...plan.keptFloat];
  const warnings: string[] = [...prepared.warnings];
  const actType = options.activationType;
  const actRange = quantRange(actType, { symmetric: false, reduceRange: false });

  // Softmax outputs are probabilities whatever the calibration saw (onnxruntime's adjust_tensor_ranges).
  const ranges = new Map(options.ranges);
  for (const n of plan.nodes) if (n.node.opType === 'Softmax') for (const o of n.outputs) ranges.set(o.name, [0, 1]);

  /** One scalar zero point initializer per value: after a Relu most activations share zero point 0. */
  const zeroPoints = new Map<number, TensorProto>();
  const sharedZeroPoint = (value: number): TensorProto => {
    let t = zeroPoints.get(value);
    if (t === undefined) {
      // A key no graph tensor has (a NUL byte), so the id is the zero point's own.
      t = makeTensor(names.fresh(`\0zero point ${value}`, 'z'), quantDataType(actType), [], actType === 'int8' ? Int8Array.of(value) : Uint8Array.of(value));
      graph.initializer!.push(t);
      zeroPoints.set(value, t);
    }
    return t;
  };
  /** Parameters per tensor: made once from its range (or, for constant data, from its values). */
  const params = new Map<string, QParams>();
  const paramsFor = (tensor: string): QParams | undefined => {
    const known = params.get(tensor);
    if (known !== undefined) return known;
    const init = inits.get(tensor);
    const range = ranges.get(tensor) ?? (init !== undefined ? minMax(tensorToFloat32(init)) : undefined);
    if (range === undefined) return undefined;
    const p = computeScaleZeroPoint(range[0], range[1], actRange, false);
    const made: QParams = {
      scale: makeTensor(names.fresh(tensor, 's'), DataType.FLOAT, [], [p.scale]),
      zeroPoint: sharedZeroPoint(p.zeroPoint),
      scaleValue: p.scale,
      zeroPointValue: p.zeroPoint,
    };
    graph.initializer!.push(made.scale);
    params.set(tensor, made);
    return made;
  };

  const headNodes: NodeProto[] = [];
  const before = new Map<NodeProto, NodeProto[]>();
  const after = new Map<NodeProto, NodeProto[]>();
  const pushTo = (map: Map<NodeProto, NodeProto[]>, anchor: NodeProto, nodes: NodeProto[]): void => {
    const list = map.get(anchor) ?? [];
    list.push(...nodes);
    map.set(anchor, list);
  };
  /**
   * Activation → its DQ output. Quantized consumers read it; a float consumer reads it only when the
   * tensor comes out of a quantized node (whose fused kernel writes nothing but the quantized value).
   */
  const activationDq = new Map<string, string>();
  /** Nodes that got their Q/DQ node unit, under their new output names. */
  const quantizedProducers = new Set<NodeProto>();
  const qNodes = new Set<NodeProto>();
  const constantDq = new Map<string, string>();

  /** Outputs of direct 8-bit ops whose Q/DQ pair onnxruntime inserts itself (ortPropagatesDq): readers take the float tensor. */
  const propagated = new Set<string>();
  const dequantizeActivation = (tensor: string, p: QParams, producer: NodeProto | undefined): string => {
    const known = activationDq.get(tensor);
    if (known !== undefined) return known;
    if (propagated.has(tensor)) return tensor;
    const qOut = names.fresh(tensor, 'q');
    const dqOut = names.fresh(tensor, 'd');
    const q = makeNode('QuantizeLinear', [tensor, p.scale.name!, p.zeroPoint.name!], [qOut], {}, { name: names.fresh(tensor, 'Q') });
    const dq = makeNode('DequantizeLinear', [qOut, p.scale.name!, p.zeroPoint.name!], [dqOut], {}, { name: names.fresh(tensor, 'D') });
    qNodes.add(q);
    if (producer === undefined) headNodes.push(q, dq);
    else pushTo(after, producer, [q, dq]);
    activationDq.set(tensor, dqOut);
    return dqOut;
  };

  /** Constant data (an Add's or Concat's initializer input): stored quantized, behind a DQ only. */
  const dequantizeConstant = (tensor: string, p: QParams): string => {
    const known = constantDq.get(tensor);
    if (known !== undefined) return known;
    const init = inits.get(tensor)!;
    const data = tensorToFloat32(init);
    const qData = actType === 'int8' ? new Int8Array(data.length) : new Uint8Array(data.length);
    quantizeInto(data, qData, p.scaleValue, p.zeroPointValue, actType);
    const qt = makeTensor(names.fresh(tensor, 'q'), quantDataType(actType), tensorDims(init), qData);
    graph.initializer!.push(qt);
    const output = names.fresh(tensor, 'd');
    headNodes.push(makeNode('DequantizeLinear', [qt.name!, p.scale.name!, p.zeroPoint.name!], [output], {}, { name: names.fresh(tensor, 'D') }));
    constantDq.set(tensor, output);
    return output;
  };

  /** DequantizeLinear inputs of a quantized weight: data and scale, plus the zero point unless it is all zero (the default). */
  const weightCache = new Map<string, { q: QuantizedWeight; tensors: TensorProto[] }>();
  /**
   * The quantized weight; with a bias, its scales are first made large enough for an int32 bias (as onnxruntime does).
   * `reduceRange` is the option for weights an integer kernel reads; weight-only ones are dequantized to float and keep all 8 bits.
   * `omitZeroPoint`: an all-zero zero point may be left out (DequantizeLinear's default) where onnxruntime still fuses the node.
   */
  const quantizedWeight = (name: string, axis: number | undefined, bias: { data: Float32Array; inputScale: number } | undefined, reduceRange = options.reduceRange, omitZeroPoint = true) => {
    const key = `${name}|${axis ?? 't'}|${bias === undefined ? '' : `${bias.inputScale}`}|${reduceRange}|${omitZeroPoint}`;
    let hit = weightCache.get(key);
    if (hit === undefined) {
      const { data, dims } = readFloat(inits.get(name)!);
      const q = quantizeWeight(data, dims, { type: 'int8', symmetric: true, reduceRange, axis });
      if (bias !== undefined) {
        const adjusted = adjustWeightScalesForBias(bias.inputScale, q.scales, bias.data);
        if (adjusted.length > 0) {
          requantizeChannels(data, dims, q, adjusted);
          weightScaleAdjustments += adjusted.length;
        }
      }
      const paramDims = axis === undefined ? [] : [q.scales.length];
      const tensors = [makeTensor(names.fresh(name, 'q'), DataType.INT8, dims, q.data), makeTensor(names.fresh(name, 's'), DataType.FLOAT, paramDims, q.scales)];
      if (!omitZeroPoint || q.zeroPoints.some((z) => z !== 0)) tensors.push(makeTensor(names.fresh(name, 'z'), DataType.INT8, paramDims, Int8Array.from(q.zeroPoints)));
      graph.initializer!.push(...tensors);
      hit = { q, tensors };
      weightCache.set(key, hit);
    }
    return hit;
  };
  let weightScaleAdjustments = 0;

  // Producers that absorb a removed Relu/Clip write the activation's output name instead.
  const renamedOutput = new Map<string, string>();
  for (const [activation, producerOutput] of plan.removed) renamedOutput.set(producerOutput, activation.output![0]!);
  const dropped = new Set(plan.removed.keys());
  /** The node that writes a tensor after removed activations' producers took over their output names. */
  const producerOf = (tensor: string): NodeProto | undefined => {
    const p = index.producer(tensor);
    return p !== undefined && dropped.has(p) ? index.producer(plan.removed.get(p)!) : p;
  };
  /** Output parameters by tensor, including those shared through direct 8-bit ops. */
  const outParams = new Map<string, QParams>();
  const activationParams = (t: string): QParams | undefined => outParams.get(t) ?? paramsFor(t);
  const opset = opsetVersion(model) ?? 1;
  /**
   * Whether onnxruntime's propagation recreates the Q/DQ pair after `node` (a direct 8-bit op
   * reading `input`): the op at a listed schema version, and the DQ it moves forward read by
   * this node alone (its CheckOutputEdges(dq, 1)), a real DQ or itself propagated.
   */
  const propagatesPair = (node: NodeProto, originalInputs: readonly string[], input: string): boolean => {
    if (!ortPropagatesDq(node, opset)) return false;
    if (originalInputs[0] !== input || originalInputs.filter((i) => i === input).length !== 1) return false;
    if (inits.has(input) || index.isGraphOutput(input)) return false;
    const readers = index.consumers(input).filter((c) => !dropped.has(c));
    return readers.length === 1 && readers[0] === node && (activationDq.has(input) || propagated.has(input));
  };
  const missing: string[] = [];
  let quantizedNodes = 0;
  let weightOnlyNodes = 0;

  for (const np of plan.nodes) {
    const node = np.node;
    const key = nodeKey(node);
    const actParams = np.activations.map((a) => activationParams(a));
    const missingAt = actParams.findIndex((p) => p === undefined);
    if (missingAt >= 0) {
      missing.push(np.activations[missingAt]!);
      changes.push({ target: key, action: 'kept-float', detail: `${node.opType}: no calibrated range for '${np.activations[missingAt]}'` });
      continue;
    }
    const originalInputs = [...(node.input ?? [])];
    const newInputs = [...originalInputs];
    np.activations.forEach((a, i) => {
      const p = actParams[i]!;
      const dq = inits.has(a) ? dequantizeConstant(a, p) : dequantizeActivation(a, p, producerOf(a));
      newInputs.forEach((name, at) => {
        if (name === a && !(np.weight !== undefined && at === 1)) newInputs[at] = dq;
      });
    });
    const firstAct = actParams[0]!;
    const stats: Record<string, number | string | boolean> = { inputScale: firstAct.scaleValue };
    const op = node.opType ?? '';
    const outputs = np.outputs.map((o) => ({ ...o, params: o.sharesWith === o.name ? paramsFor(o.name) : activationParams(o.sharesWith) }));
    if (np.weight !== undefined) {
      const biasData = np.bias !== undefined ? tensorToFloat32(inits.get(np.bias)!) : undefined;
      const { q, tensors } = quantizedWeight(np.weight.name, np.weight.axis, biasData === undefined ? undefined : { data: biasData, inputScale: firstAct.scaleValue }, options.reduceRange, OMIT_WEIGHT_ZERO_POINT.has(op));
      const dqOut = names.fresh(np.weight.name, 'd');
      const attrs: Record<string, number> = np.weight.axis === undefined ? {} : { axis: np.weight.axis };
      // A DQ per consumer: onnxruntime's node-unit selectors want the weight DQ to feed one node.
      pushTo(before, node, [makeNode('DequantizeLinear', tensors.map((t) => t.name!), [dqOut], attrs, { name: names.fresh(np.weight.name, 'D') })]);
      newInputs[1] = dqOut;
      Object.assign(stats, { weight: np.weight.name, perChannel: np.weight.axis !== undefined }, scaleStats(q.scales));
      const qb = biasData === undefined ? undefined : quantizeBias(biasData, firstAct.scaleValue, q.scales);
      // The output's only reader is its QuantizeLinear when it is quantized (float readers read the DQ after it).
      const out0 = node.output?.[0] ?? '';
      const outputQuantized = outputs.length === 1 && outputs[0]!.name === (renamedOutput.get(out0) ?? out0) && outputs[0]!.params !== undefined;
      const ortBias = qb !== undefined && qb.saturated === 0 && outputQuantized && ORT_QUANTIZES_BIAS.has(op) && (op !== 'ConvTranspose' || np.weight.axis === undefined) ? biasOnnxruntimeRequantizes(qb) : undefined;
      if (ortBias !== undefined && np.bias !== undefined) {
        const bf = makeTensor(names.fresh(np.bias, 'd'), DataType.FLOAT, [ortBias.length], ortBias);
        graph.initializer!.push(bf);
        newInputs[2] = bf.name!;
        stats.bias = 'float q·scale (onnxruntime makes the int32 bias on load)';
      } else if (np.bias !== undefined && biasData !== undefined && qb !== undefined) {
        const bias = biasData;
        if (qb.saturated > 0) warnings.push(`${key}: ${qb.saturated} bias value(s) saturated int32`);
        const perChannel = qb.scales.length > 1;
        const bq = makeTensor(names.fresh(np.bias, 'q'), DataType.INT32, [bias.length], qb.data);
        graph.initializer!.push(bq);
        const biasNodes: NodeProto[] = [];
        let biasScale: string;
        if (perChannel) {
          // Float32 Mul of two float32 values is the same rounding as quantizeBias's Math.fround(x·w): bit-identical scales.
          biasScale = names.fresh(np.bias, 's');
          biasNodes.push(makeNode('Mul', [firstAct.scale.name!, tensors[1]!.name!], [biasScale], {}, { name: names.fresh(np.bias, 'M') }));
        } else {
          const bs = makeTensor(names.fresh(np.bias, 's'), DataType.FLOAT, perChannel ? [qb.scales.length] : [], qb.scales);
          graph.initializer!.push(bs);
          biasScale = bs.name!;
        }
        const bOut = names.fresh(np.bias, 'd');
        biasNodes.push(makeNode('DequantizeLinear', [bq.name!, biasScale], [bOut], perChannel ? { axis: 0 } : {}, { name: names.fresh(np.bias, 'D') }));
        pushTo(before, node, biasNodes);
        newInputs[2] = bOut;
        stats.bias = 'int32';
      }
    }
    node.input = newInputs;
    node.output = (node.output ?? []).map((o) => renamedOutput.get(o) ?? o);
    // The output Q/DQ completes the node unit (DQ → op → Q) that onnxruntime fuses.
    for (const o of outputs) {
      const p = o.params;
      if (p === undefined) continue;
      outParams.set(o.name, p);
      if (o.sharesWith !== o.name && propagatesPair(node, originalInputs, o.sharesWith)) {
        propagated.add(o.name);
        stats.outputQdq = 'inserted by onnxruntime on load';
      } else {
        dequantizeActivation(o.name, p, node);
      }
      stats.outputScale = p.scaleValue;
    }
    quantizedNodes += 1;
    quantizedProducers.add(node);
    changes.push({ target: key, action: 'quantized', detail: `${node.opType} → QDQ (${actType} activations${np.weight ? `, int8 weight${np.weight.axis !== undefined ? ' per-channel' : ''}` : ''})`, stats });
  }
  for (const { node, weight, fanIn } of plan.weightOnly) {
    const { q, tensors } = quantizedWeight(weight.name, weight.axis, undefined, false);
    const dqOut = names.fresh(weight.name, 'd');
    pushTo(before, node, [makeNode('DequantizeLinear', tensors.map((t) => t.name!), [dqOut], weight.axis === undefined ? {} : { axis: weight.axis }, { name: names.fresh(weight.name, 'D') })]);
    node.input = [node.input![0]!, dqOut, ...(node.input ?? []).slice(2)];
    weightOnlyNodes += 1;
    changes.push({
      target: nodeKey(node),
      action: 'quantized',
      detail: `${node.opType} → int8 weight only, float compute (fan-in ${fanIn} < minFanIn ${options.minFanIn ?? 0})`,
      stats: { weight: weight.name, perChannel: weight.axis !== undefined, fanIn, ...scaleStats(q.scales) },
    });
  }
  for (const activation of plan.removed.keys()) {
    changes.push({ target: nodeKey(activation), action: 'removed', detail: `${activation.opType} folded into the producer's output quantization range` });
  }

  // Assemble: head nodes first, then each node with its DQs before it and its Q/DQ pairs after it.
  // Quantized nodes already read their DQ outputs. A float (excluded or unsupported) reader of a
  // quantized activation reads the DQ output only when a quantized node wrote the activation: that
  // keeps the producer's node unit fusable. When a float node or a graph input wrote it, the float
  // reader keeps the exact value; routing it through the Q/DQ pair would add rounding and clipping
  // to a path the user kept in float, for no speed gain.
  const assembled: NodeProto[] = [...headNodes];
  const writer = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) {
    if (dropped.has(node)) continue;
    assembled.push(...(before.get(node) ?? []), node, ...(after.get(node) ?? []));
    for (const o of node.output ?? []) if (o) writer.set(o, node);
  }
  for (const node of assembled) {
    if (qNodes.has(node) || quantizedProducers.has(node)) continue;
    node.input = (node.input ?? []).map((i) => {
      const dq = activationDq.get(i);
      const from = writer.get(i);
      return dq !== undefined && from !== undefined && quantizedProducers.has(from) ? dq : i;
    });
  }
  graph.node = assembled;
  removeUnusedInitializers(graph);
  if (missing.length > 0) warnings.push(`${missing.length} tensor(s) had no calibrated range; their nodes stayed float: ${missing.slice(0, 5).join(', ')}`);
  const kept = changes.filter((c) => c.action === 'kept-float');
  if (kept.length > 0) warnings.push(`${kept.length} node(s) left in float: ${kept.slice(0, 10).map((c) => c.target).join(', ')}${kept.length > 10 ? ', ...' : ''}`);
  return {
    model,
    modified: quantizedNodes + weightOnlyNodes > 0,
    report: {
      pass: 'int8-static',
      changes,
      warnings,
      stats: { quantizedNodes, weightOnlyNodes, keptFloatNodes: kept.length, removedActivations: plan.removed.size, weightScaleAdjustments, parameterBytesBefore: bytesBefore, parameterBytesAfter: parameterBytes(graph) },
    },
  };
}

export function assertRangesCover(plan: StaticPlan, ranges: TensorRanges): void {
  const missing = plan.tensorsToCalibrate.filter((t) => !ranges.has(t));
  if (missing.length > 0) {
    throw new EdgevolveError('E_COMPRESS_PRECONDITION', `int8-static: no calibrated range for ${missing.length} tensor(s): ${missing.slice(0, 5).join(', ')}`, { context: { missing: missing.slice(0, 20) } });
  }
}
