/**
 * int8 dynamic quantization: weights quantized offline, activations at run time.
 *
 * Emits exactly the standard-op chain onnxruntime's quantize_dynamic emits
 * (compression.md §1.3), which onnxruntime's graph optimizer fuses into
 * com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat on load:
 *
 *   X ─DynamicQuantizeLinear─► X_q, X_scale, X_zp
 *   MatMulInteger(X_q, W_q, X_zp, W_zp) ─Cast(float)─► Y_f
 *   Mul(X_scale, W_scale) ─► s;  Mul(Y_f, s) ─► Y           (+ Add(bias) for a former Gemm)
 *
 * One DynamicQuantizeLinear per MatMul, as onnxruntime's tool emits it. Where several
 * MatMuls read the same tensor, onnxruntime's common-subexpression elimination merges
 * their identical DynamicQuantizeLinear nodes before its fusions run, so it executes one
 * DynamicQuantizeLinear + MatMulIntegerToFloat per reader instead of DynamicQuantizeMatMul
 * whichever form we emit (checked in the tests); measured with `bench-compress --only
 * layers`, that shared form is 0.97–1.00x the time of one DynamicQuantizeMatMul per reader
 * (which only emitting the contrib op directly would give) at batch 32, 1.02–1.05x at batch 1:
 * no reason to emit either differently.
 *
 * `minFanOut` keeps narrow layers (fewer output columns than it, e.g. a 10-class
 * logits layer) in float: quantizing the input costs time per input element, and int8
 * saves time per product, so below about 32 outputs per row DynamicQuantizeMatMul is
 * slower than the float Gemm on the CPU EP (same bench). Such layers are kept float only
 * while together they hold at most 1% of the weights, so the file grows by at most 0.0075x.
 *
 * Gemm becomes MatMul (+Add) first, with transB and alpha/beta folded into the
 * initializers. Conv is quantized to ConvInteger only when asked (`opTypes`
 * includes Conv): on the CPU execution provider it is usually slower than float.
 */
import { cloneModel } from '../clone.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import { NameScope, getAttrFloat, getAttrInt, makeNode, makeTensor, removeUnusedInitializers } from '../../onnx/index.ts';
import { DataType, type NodeProto, type TensorProto } from '../../onnx/types.ts';
import { floatInitializer, graphOf, initializerMap, nodeKey, parameterBytes, readFloat, scaleStats, weightInitializers, type WeightInitializers } from './common.ts';
import { inferElemTypes } from './elem-types.ts';
import { raiseOpset } from './opset.ts';
import { quantizeWeight } from './quant-math.ts';

export interface DynamicQuantOptions {
  /** One scale per output column (MatMul) instead of one per tensor. */
  readonly perChannel: boolean;
  /** 7-bit weights, for x86 CPUs without VNNI (compression.md §5.2). */
  readonly reduceRange: boolean;
  /** Which of MatMul, Gemm, Conv to quantize. */
  readonly opTypes: readonly string[];
  /** Node names (see nodeKey) to leave in float. */
  readonly exclude: readonly string[];
  /** MatMul/Gemm with fewer output columns than this stay float, within the 1% weight budget (0 or absent: all quantized). */
  readonly minFanOut?: number;
}

/** Below this many outputs per row, DynamicQuantizeMatMul measured slower than the float Gemm (README "Measured"). */
export const DEFAULT_MIN_FAN_OUT = 32;

export const DEFAULT_DYNAMIC_OPTIONS: DynamicQuantOptions = { perChannel: false, reduceRange: false, opTypes: ['MatMul', 'Gemm'], exclude: [], minFanOut: DEFAULT_MIN_FAN_OUT };

/** Narrow layers kept float by minFanOut may hold at most this share of the candidate weights (int8 would save 0.75 of it). */
const NARROW_FLOAT_SHARE = 0.01;

const CANDIDATES = new Set(['MatMul', 'Gemm', 'Conv']);
/** DynamicQuantizeLinear appeared in opset 11. */
const MIN_OPSET = 11;

export const int8DynamicPass: Pass<DynamicQuantOptions> = {
  name: 'int8-dynamic',
  run: (model, options) => quantizeDynamic(model, options),
};

interface Emitted {
  nodes: NodeProto[];
  change: Change;
}

/** A MatMul or Gemm whose weight int8 MatMulInteger can take: the weight and what folds into it. */
interface MatMulWeight {
  readonly b: TensorProto;
  readonly transB: boolean;
  readonly alpha: number;
  readonly bias: TensorProto | undefined;
  readonly beta: number;
  /** Output columns: the N of [K, N] after transB. */
  readonly fanOut: number;
  readonly elements: number;
}

/** The weight of a MatMul/Gemm that MatMulInteger can take, or why it stays float. */
function matMulWeight(node: NodeProto, inits: ReadonlyMap<string, TensorProto>): MatMulWeight | string {
  const isGemm = node.opType === 'Gemm';
  const bName = node.input?.[1];
  const b = floatInitializer(inits, bName);
  if (b === undefined) return `weight '${bName ?? ''}' is not a float32 initializer (activations × activations stays float)`;
  const dims = (b.dims ?? []).map(Number);
  if (dims.length !== 2) return `weight '${bName}' has rank ${dims.length}; MatMulInteger needs a 2-D weight`;
  if (!isGemm) return { b, transB: false, alpha: 1, bias: undefined, beta: 1, fanOut: dims[1]!, elements: dims[0]! * dims[1]! };
  if (getAttrInt(node, 'transA', 0) !== 0) return 'Gemm with transA=1';
  const transB = getAttrInt(node, 'transB', 0) === 1;
  const cName = node.input?.[2];
  const bias = cName ? floatInitializer(inits, cName) : undefined;
  if (cName && bias === undefined) return `bias '${cName}' is not a float32 initializer`;
  return { b, transB, alpha: getAttrFloat(node, 'alpha', 1), bias, beta: getAttrFloat(node, 'beta', 1), fanOut: transB ? dims[0]! : dims[1]!, elements: dims[0]! * dims[1]! };
}

/**
 * The narrow MatMul/Gemm nodes minFanOut keeps float, with the reason: those with fewer
 * output columns than minFanOut, smallest first, while together they hold at most
 * NARROW_FLOAT_SHARE of the weights of all quantizable MatMul/Gemm nodes.
 */
function narrowFloat(weights: ReadonlyMap<NodeProto, MatMulWeight>, minFanOut: number): Map<NodeProto, string> {
  const out = new Map<NodeProto, string>();
  if (minFanOut <= 0) return out;
  let total = 0;
  for (const w of weights.values()) total += w.elements;
  const narrow = [...weights].filter(([, w]) => w.fanOut < minFanOut).sort((a, b) => a[1].elements - b[1].elements);
  let kept = 0;
  for (const [node, w] of narrow) {
    if (kept + w.elements > NARROW_FLOAT_SHARE * total) break;
    kept += w.elements;
    out.set(node, `fan-out ${w.fanOut} < minFanOut ${minFanOut}: int8 is slower than float this narrow (${((100 * w.elements) / total).toFixed(2)}% of the weights)`);
  }
  return out;
}

export function quantizeDynamic(input: Parameters<typeof cloneModel>[0], options: DynamicQuantOptions): PassResult {
  const model = cloneModel(input);
  const graph = graphOf(model, 'int8-dynamic');
  const bytesBefore = parameterBytes(graph);
  const changes: Change[] = [];
  const warnings: string[] = [];
  const selected = new Set(options.opTypes);
  const excluded = new Set(options.exclude);
  const wouldQuantize = (graph.node ?? []).some((n) => selected.has(n.opType ?? '') && !excluded.has(nodeKey(n)));
  const upgrade = wouldQuantize ? raiseOpset(model, MIN_OPSET) : undefined;
  if (upgrade && upgrade.rewritten.length + (upgrade.to !== upgrade.from ? 1 : 0) > 0) {
    warnings.push(`opset raised from ${upgrade.from} to ${upgrade.to} for DynamicQuantizeLinear` + (upgrade.rewritten.length > 0 ? ` (${upgrade.rewritten.length} nodes rewritten)` : ''));
  }
  const names = new NameScope(graph);
  const inits = initializerMap(graph);
  const types = inferElemTypes(graph);
  const cache = new Map<string, { w: WeightInitializers; scales: Float32Array }>();
  const out: NodeProto[] = [];
  let quantized = 0;

  const keepFloat = (node: NodeProto, reason: string): void => {
    out.push(node);
    changes.push({ target: nodeKey(node), action: 'kept-float', detail: `${node.opType}: ${reason}` });
  };

  /** The quantized form of a weight, computed once per (tensor, transform). */
  const weightFor = (key: string, base: string, make: () => { data: Float32Array; dims: number[] }, axis: number | undefined) => {
    const cacheKey = `${key}|${axis ?? 'tensor'}`;
    let hit = cache.get(cacheKey);
    if (hit === undefined) {
      const { data, dims } = make();
      const q = quantizeWeight(data, dims, { type: 'int8', symmetric: true, reduceRange: options.reduceRange, axis });
      const w = weightInitializers(q, dims, base, names);
      graph.initializer!.push(w.quantized, w.scale, w.zeroPoint);
      hit = { w, scales: q.scales };
      cache.set(cacheKey, hit);
    }
    return hit;
  };

  // Decide first, emit second: the narrow-layer budget needs every decision.
  const floatReason = new Map<NodeProto, string>();
  const weights = new Map<NodeProto, MatMulWeight>();
  const convs = new Set<NodeProto>();
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    if ((node.domain && node.domain !== 'ai.onnx') || !CANDIDATES.has(op)) continue;
    const x = node.input?.[0] ?? '';
    if (!selected.has(op)) floatReason.set(node, 'op type not selected (--op-types)');
    else if (excluded.has(nodeKey(node))) floatReason.set(node, 'excluded (--exclude)');
    else if (types.get(x) !== DataType.FLOAT) floatReason.set(node, `input '${x}' is not float32`);
    else if (op === 'Conv') convs.add(node);
    else {
      const w = matMulWeight(node, inits);
      if (typeof w === 'string') floatReason.set(node, w);
      else weights.set(node, w);
    }
  }
  for (const [node, reason] of narrowFloat(weights, options.minFanOut ?? 0)) {
    weights.delete(node);
    floatReason.set(node, reason);
  }

  for (const node of graph.node ?? []) {
    const reason = floatReason.get(node);
    const weight = weights.get(node);
    if (reason !== undefined) {
      keepFloat(node, reason);
      continue;
    }
    let emitted: Emitted | string;
    if (weight !== undefined) emitted = emitMatMulLike(node, weight);
    else if (convs.has(node)) emitted = emitConv(node);
    else {
      out.push(node);
      continue;
    }
    if (typeof emitted === 'string') keepFloat(node, emitted);
    else {
      out.push(...emitted.nodes);
      changes.push(emitted.change);
      quantized += 1;
    }
  }

  function emitMatMulLike(node: NodeProto, weight: MatMulWeight): Emitted {
    const { b, transB, alpha, bias, beta } = weight;
    const bName = b.name!;
    const axis = options.perChannel ? 1 : undefined;
    const { w, scales } = weightFor(`${bName}|t${transB ? 1 : 0}|a${alpha}`, bName, () => transformWeight(b, transB, alpha), axis);
    const label = nodeKey(node);
    const y = node.output![0]!;
    const nodes: NodeProto[] = [];
    const xq = names.fresh(`${label}_input_quantized`);
    const xs = names.fresh(`${label}_input_scale`);
    const xzp = names.fresh(`${label}_input_zero_point`);
    nodes.push(makeNode('DynamicQuantizeLinear', [node.input![0]!], [xq, xs, xzp], {}, { name: names.fresh(`${label}_QuantizeLinear`) }));
    const yInt = names.fresh(`${label}_output_quantized`);
    nodes.push(makeNode('MatMulInteger', [xq, w.quantized.name!, xzp, w.zeroPoint.name!], [yInt], {}, { name: names.fresh(`${label}_quant`) }));
    const yFloat = names.fresh(`${yInt}_cast_output`);
    nodes.push(makeNode('Cast', [yInt], [yFloat], { to: DataType.FLOAT }, { name: names.fresh(`${yInt}_cast`) }));
    const scaleMul = names.fresh(`${label}_quant_scales_mul:0`);
    nodes.push(makeNode('Mul', [xs, w.scale.name!], [scaleMul], {}, { name: names.fresh(`${label}_quant_scales_mul`) }));
    const mmOut = bias !== undefined ? names.fresh(`${y}_matmul`) : y;
    nodes.push(makeNode('Mul', [yFloat, scaleMul], [mmOut], {}, { name: names.fresh(`${label}_quant_output_scale_mul`) }));
    if (bias !== undefined) {
      let biasName = bias.name!;
      if (beta !== 1) {
        const scaled = readFloat(bias);
        for (let i = 0; i < scaled.data.length; i++) scaled.data[i] = Math.fround(scaled.data[i]! * beta);
        const t = makeTensor(names.fresh(`${biasName}_beta`), DataType.FLOAT, scaled.dims, scaled.data);
        graph.initializer!.push(t);
        biasName = t.name!;
      }
      nodes.push(makeNode('Add', [mmOut, biasName], [y], {}, { name: names.fresh(`${label}_bias_add`) }));
    }
    return {
      nodes,
      change: {
        target: label,
        action: 'quantized',
        detail: `${node.opType} → DynamicQuantizeLinear + MatMulInteger${bias ? ' + Add' : ''} (int8 weight, ${axis === undefined ? 'per-tensor' : 'per-channel'})`,
        stats: { weight: bName, ...scaleStats(scales), ...(transB ? { transB: true } : {}) },
      },
    };
  }

  function emitConv(node: NodeProto): Emitted | string {
    const wName = node.input?.[1];
    const weight = floatInitializer(inits, wName);
    if (weight === undefined) return `weight '${wName ?? ''}' is not a float32 initializer`;
    const bName = node.input?.[2];
    const bias = bName ? floatInitializer(inits, bName) : undefined;
    if (bName && bias === undefined) return `bias '${bName}' is not a float32 initializer`;
    // ConvInteger takes one weight zero point for the whole tensor, as ORT's tool emits it.
    const { w, scales } = weightFor(`${wName}`, wName!, () => readFloat(weight), undefined);
    const label = nodeKey(node);
    const y = node.output![0]!;
    const xq = names.fresh(`${label}_input_quantized`);
    const xs = names.fresh(`${label}_input_scale`);
    const xzp = names.fresh(`${label}_input_zero_point`);
    const yInt = names.fresh(`${label}_output_quantized`);
    const yFloat = names.fresh(`${yInt}_cast_output`);
    const scaleMul = names.fresh(`${label}_scales_mul:0`);
    const convOut = bias !== undefined ? names.fresh(`${y}_conv`) : y;
    const nodes: NodeProto[] = [
      makeNode('DynamicQuantizeLinear', [node.input![0]!], [xq, xs, xzp], {}, { name: names.fresh(`${label}_QuantizeLinear`) }),
      { ...makeNode('ConvInteger', [xq, w.quantized.name!, xzp, w.zeroPoint.name!], [yInt], {}, { name: names.fresh(`${label}_quant`) }), attribute: [...(node.attribute ?? [])] },
      makeNode('Cast', [yInt], [yFloat], { to: DataType.FLOAT }, { name: names.fresh(`${yInt}_cast`) }),
      makeNode('Mul', [xs, w.scale.name!], [scaleMul], {}, { name: names.fresh(`${label}_scales_mul`) }),
      makeNode('Mul', [yFloat, scaleMul], [convOut], {}, { name: names.fresh(`${label}_output_scale_mul`) }),
    ];
    if (bias !== undefined) {
      // ORT reshapes the bias with a Reshape node; a reshaped initializer is the same value.
      const rank = (weight.dims ?? []).length;
      const dims = [1, (bias.dims ?? [])[0] as number, ...Array.from({ length: rank - 2 }, () => 1)];
      const { data } = readFloat(bias);
      const t = makeTensor(names.fresh(`${bName}_reshaped`), DataType.FLOAT, dims.map(Number), data);
      graph.initializer!.push(t);
      nodes.push(makeNode('Add', [convOut, t.name!], [y], {}, { name: names.fresh(`${label}_bias_add`) }));
    }
    return {
      nodes,
      change: { target: label, action: 'quantized', detail: 'Conv → DynamicQuantizeLinear + ConvInteger (int8 weight, per-tensor)', stats: { weight: wName!, ...scaleStats(scales) } },
    };
  }

  graph.node = out;
  removeUnusedInitializers(graph);
  const bytesAfter = parameterBytes(graph);
  const keptFloat = changes.filter((c) => c.action === 'kept-float').length;
  if (keptFloat > 0) warnings.push(`${keptFloat} candidate node(s) left in float: ${changes.filter((c) => c.action === 'kept-float').map((c) => c.target).slice(0, 10).join(', ')}${keptFloat > 10 ? ', ...' : ''}`);
  return {
    model,
    modified: quantized > 0 || (upgrade !== undefined && upgrade.to !== upgrade.from),
    report: { pass: 'int8-dynamic', changes, warnings, stats: { quantizedNodes: quantized, keptFloatNodes: keptFloat, parameterBytesBefore: bytesBefore, parameterBytesAfter: bytesAfter } },
  };
}

/** B (or Bᵀ when `transpose`), times alpha: the MatMul weight equivalent to a Gemm's. */
function transformWeight(b: TensorProto, transpose: boolean, alpha: number): { data: Float32Array; dims: number[] } {
  const { data, dims } = readFloat(b);
  const [rows, cols] = [dims[0]!, dims[1]!];
  if (!transpose && alpha === 1) return { data, dims };
  const out = new Float32Array(data.length);
  if (transpose) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = Math.fround(data[r * cols + c]! * alpha);
    return { data: out, dims: [cols, rows] };
  }
  for (let i = 0; i < data.length; i++) out[i] = Math.fround(data[i]! * alpha);
  return { data: out, dims };
}
