/**
 * BatchNormalization folding into the preceding Conv, ConvTranspose or Gemm, and
 * fusion of a per-channel bias Add into that producer's bias (Paddle2ONNX writes
 * ConvTranspose → Add(bias) → BatchNormalization), and of a per-channel (or scalar)
 * constant Mul into its weights and bias (PP-OCRv4's learnable-affine blocks write
 * Conv → Mul(a) → Add(b) after every conv). With s = γ / sqrt(σ² + ε):
 * W'[c] = W[c]·s[c] and b'[c] = (b[c] − μ[c])·s[c] + β[c]
 * (compression.md §1.7). Arithmetic in float64, stored as float32.
 */
import { attr, getAttrFloat, getAttrInt, getAttribute, opsetVersion, setAttribute } from '../../onnx/index.ts';
import type { GraphProto, ModelProto, NodeProto } from '../../onnx/index.ts';
import type { Change } from '../pass.ts';
import { dropStaleValueInfo, elementCount, floatInitializer, initializerMap, InitializerWriter, useCounts } from './graph-util.ts';

const PRODUCERS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/** The producer's weight layout: how many output channels, and which output channel each weight element feeds. */
interface ProducerWeights {
  readonly channels: number;
  readonly dims: number[];
  readonly data: Float32Array;
  /** Output channel of weight element i. */
  readonly channelOf: (i: number) => number;
}

function producerWeights(graph: GraphProto, node: NodeProto): ProducerWeights | undefined {
  const inits = initializerMap(graph);
  const w = floatInitializer(inits, node.input?.[1]);
  if (w === undefined) return undefined;
  const { dims, data } = w;
  if (node.opType === 'Conv') {
    if (dims.length < 3) return undefined;
    const per = elementCount(dims.slice(1));
    return { channels: dims[0]!, dims, data, channelOf: (i) => Math.floor(i / per) };
  }
  if (node.opType === 'ConvTranspose') {
    // W is [C_in, C_out/group, k...]; output channel = group index · C_out/group + column.
    if (dims.length < 3) return undefined;
    const group = getAttrInt(node, 'group', 1);
    const cin = dims[0]!;
    const coutPerGroup = dims[1]!;
    if (cin % group !== 0) return undefined;
    const cinPerGroup = cin / group;
    const kernel = elementCount(dims.slice(2));
    return {
      channels: coutPerGroup * group,
      dims,
      data,
      channelOf: (i) => {
        const row = Math.floor(i / (coutPerGroup * kernel));
        const col = Math.floor(i / kernel) % coutPerGroup;
        return Math.floor(row / cinPerGroup) * coutPerGroup + col;
      },
    };
  }
  // Gemm: Y = alpha·A·op(B) + beta·C; output channel n is row n of B when transB, else column n.
  if (dims.length !== 2 || getAttrInt(node, 'transA', 0) !== 0) return undefined;
  const transB = getAttrInt(node, 'transB', 0) === 1;
  const n = transB ? dims[0]! : dims[1]!;
  const k = transB ? dims[1]! : dims[0]!;
  return { channels: n, dims, data, channelOf: transB ? (i) => Math.floor(i / k) : (i) => i % n };
}

/** The producer's effective per-channel bias (Gemm's alpha/beta applied), or undefined when its shape is not per-channel. */
function producerBias(graph: GraphProto, node: NodeProto, channels: number): Float64Array | undefined {
  const out = new Float64Array(channels);
  const name = node.input?.[2];
  if (!name) return out;
  const b = floatInitializer(initializerMap(graph), name);
  if (b === undefined) return undefined;
  const beta = node.opType === 'Gemm' ? getAttrFloat(node, 'beta', 1) : 1;
  const count = b.data.length;
  // Gemm's C may be a scalar, [N] or [1, N]; a full [M, N] C is not per-channel.
  if (count === channels && (b.dims.length <= 1 || b.dims[0] === 1)) for (let c = 0; c < channels; c++) out[c] = beta * b.data[c]!;
  else if (count === 1) out.fill(beta * b.data[0]!);
  else return undefined;
  return out;
}

/** Writes W·scale and the new bias onto the producer. */
function rewriteProducer(writer: InitializerWriter, node: NodeProto, w: ProducerWeights, scale: Float64Array | undefined, bias: Float64Array): void {
  const base = node.name || node.output?.[0] || node.opType || 'node';
  // Gemm's alpha moves into B and beta into C (producerBias applied it), so both become 1.
  const alpha = node.opType === 'Gemm' ? getAttrFloat(node, 'alpha', 1) : 1;
  if (scale !== undefined || alpha !== 1) {
    const scaled = new Float32Array(w.data.length);
    for (let i = 0; i < scaled.length; i++) scaled[i] = alpha * w.data[i]! * (scale === undefined ? 1 : scale[w.channelOf(i)]!);
    writer.write(node, 1, w.dims, scaled, `${base}_W_folded`);
  }
  writer.write(node, 2, [w.channels], Float32Array.from(bias), `${base}_B_folded`);
  if (node.opType === 'Gemm') {
    if (getAttribute(node, 'alpha') !== undefined) setAttribute(node, 'alpha', attr.float(1));
    if (getAttribute(node, 'beta') !== undefined) setAttribute(node, 'beta', attr.float(1));
  }
}

/** The single node that reads `value` and nothing else does (graph outputs included), or undefined. */
function soleConsumer(graph: GraphProto, value: string, uses: ReadonlyMap<string, number>): NodeProto | undefined {
  if ((uses.get(value) ?? 0) !== 1) return undefined;
  return (graph.node ?? []).find((n) => (n.input ?? []).includes(value));
}

function batchNormScaleShift(graph: GraphProto, bn: NodeProto, channels: number, uses: ReadonlyMap<string, number>, opset: number): { scale: Float64Array; shift: Float64Array } | undefined {
  if ((bn.input?.length ?? 0) < 5) return undefined;
  for (const extra of (bn.output ?? []).slice(1)) if (extra && (uses.get(extra) ?? 0) > 0) return undefined;
  if (opset < 9 && getAttrInt(bn, 'spatial', 1) !== 1) return undefined;
  if (getAttrInt(bn, 'training_mode', 0) !== 0) return undefined;
  const inits = initializerMap(graph);
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((slot) => floatInitializer(inits, bn.input?.[slot]));
  if (!gamma || !beta || !mean || !variance) return undefined;
  if ([gamma, beta, mean, variance].some((t) => t.data.length !== channels)) return undefined;
  const eps = getAttrFloat(bn, 'epsilon', 1e-5);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma.data[c]! / Math.sqrt(variance.data[c]! + eps);
    shift[c] = beta.data[c]! - mean.data[c]! * scale[c]!;
  }
  return { scale, shift };
}

/** A constant Add or Mul operand that is one value per output channel (or one value), as a per-channel vector. */
function perChannelAddend(graph: GraphProto, add: NodeProto, from: string, node: NodeProto, channels: number): Float64Array | undefined {
  const other = add.input?.[0] === from ? add.input?.[1] : add.input?.[0];
  if (!other || other === from) return undefined;
  if ((graph.input ?? []).some((v) => v.name === other)) return undefined;
  const t = floatInitializer(initializerMap(graph), other);
  if (t === undefined) return undefined;
  const out = new Float64Array(channels);
  if (t.data.length === 1) return out.fill(t.data[0]!);
  if (t.data.length !== channels) return undefined;
  // Conv output is [N, C, spatial...]: the addend must be [C, 1, ...] aligned with axis 1; Gemm output is [M, N]: [N] or [1, N].
  const rank = node.opType === 'Gemm' ? 2 : (floatInitializer(initializerMap(graph), node.input?.[1])?.dims.length ?? 0);
  const dims = t.dims;
  if (dims.length > rank) return undefined;
  const padded = [...new Array<number>(rank - dims.length).fill(1), ...dims];
  if (padded.some((d, i) => (i === 1 ? d !== channels : d !== 1))) return undefined;
  for (let c = 0; c < channels; c++) out[c] = t.data[c]!;
  return out;
}

/**
 * Folds Add(const per-channel), Mul(const per-channel) and BatchNormalization into the producer, repeatedly.
 * In place; returns the changes.
 */
export function foldBatchNorms(model: ModelProto): Change[] {
  const graph = model.graph;
  if (!graph) return [];
  const opset = opsetVersion(model) ?? 1;
  const changes: Change[] = [];
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  for (const node of [...(graph.node ?? [])]) {
    if (!PRODUCERS.has(node.opType ?? '') || (node.domain ?? '') !== '') continue;
    for (;;) {
      const out = node.output?.[0];
      if (!out || outputs.has(out)) break;
      const uses = useCounts(graph);
      const next = soleConsumer(graph, out, uses);
      if (next === undefined || (next.domain ?? '') !== '' || (next.opType !== 'BatchNormalization' && next.opType !== 'Add' && next.opType !== 'Mul')) break;
      const w = producerWeights(graph, node);
      if (w === undefined) break;
      const bias = producerBias(graph, node, w.channels);
      if (bias === undefined) break;
      const writer = new InitializerWriter(graph);
      let scale: Float64Array | undefined;
      if (next.opType === 'Add') {
        const addend = perChannelAddend(graph, next, out, node, w.channels);
        if (addend === undefined) break;
        for (let c = 0; c < w.channels; c++) bias[c]! += addend[c]!;
      } else if (next.opType === 'Mul') {
        // (W·x + b)·m = (W·m)·x + b·m, channel by channel.
        const factor = perChannelAddend(graph, next, out, node, w.channels);
        if (factor === undefined) break;
        scale = factor;
        for (let c = 0; c < w.channels; c++) bias[c]! *= factor[c]!;
      } else {
        const bn = batchNormScaleShift(graph, next, w.channels, uses, opset);
        if (bn === undefined) break;
        scale = bn.scale;
        for (let c = 0; c < w.channels; c++) bias[c] = bias[c]! * bn.scale[c]! + bn.shift[c]!;
      }
      rewriteProducer(writer, node, w, scale, bias);
      node.output![0] = next.output![0]!;
      graph.node = (graph.node ?? []).filter((n) => n !== next);
      changes.push({
        target: next.name || next.output![0]!,
        action: 'folded',
        detail: `${next.opType} folded into ${node.opType} '${node.name ?? ''}'`,
        stats: { channels: w.channels },
      });
    }
  }
  if (changes.length > 0) dropStaleValueInfo(graph);
  return changes;
}
