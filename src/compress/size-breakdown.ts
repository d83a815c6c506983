/**
 * Where the bytes of an encoded model go: element data of the initializers by role
 * (weights, biases, quantization parameters), what each initializer costs around its
 * data, nodes by op type, graph inputs/outputs, and the rest (opsets, producer, doc
 * strings, metadata, message framing). The parts add up to the encoded size exactly,
 * because each one is measured by encoding that message alone.
 *
 * Why: the int8 target (issue 4: <= 0.27x of fp32, floor 0.25x) is decided by the few
 * percent beside the int8 weights; this shows which few percent (README, Compression).
 */
import { onnxSchema } from '../onnx/index.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../onnx/types.ts';

/** Bytes of one encoded model, by part. weights + biases + quantParams + otherConstants + initializerHeaders + nodes + graphIo + other = total. */
export interface SizeBreakdown {
  readonly total: number;
  /** Element data of weights: input B/W of Conv, ConvTranspose, Gemm, MatMul and their integer forms, directly or through a DequantizeLinear. */
  readonly weights: number;
  /** Element data of biases (Conv/ConvTranspose/Gemm input C/B, directly or through a DequantizeLinear). */
  readonly biases: number;
  /** Element data of scales and zero points (Q/DQ inputs 2 and 3, the inputs of a Mul that makes a scale, integer-op zero points). */
  readonly quantParams: number;
  /** Element data of every other initializer (shapes, constants). */
  readonly otherConstants: number;
  /** What the initializers cost beside their data: names, dims, data types, field headers. */
  readonly initializerHeaders: number;
  readonly initializerCount: number;
  /** Node messages, all included (op types, names, input/output names, attributes). */
  readonly nodes: number;
  readonly nodesByOpType: Readonly<Record<string, number>>;
  readonly nodeCount: number;
  /** Graph inputs, outputs and value_info. */
  readonly graphIo: number;
  /** Outside the above: IR version, opset imports, producer, doc strings, metadata, graph name, message framing. */
  readonly other: number;
  /** Of all the parts: the UTF-8 bytes of tensor and node names (initializers, node names, node inputs/outputs, graph I/O). */
  readonly names: number;
}

type Role = 'weights' | 'biases' | 'quantParams' | 'otherConstants';

/** Input slots of the weight and the bias, by op type (ai.onnx and com.microsoft forms). */
const WEIGHT_SLOTS: Readonly<Record<string, { weight: number; bias?: number; params?: readonly number[] }>> = {
  Conv: { weight: 1, bias: 2 },
  ConvTranspose: { weight: 1, bias: 2 },
  Gemm: { weight: 1, bias: 2 },
  MatMul: { weight: 1 },
  MatMulInteger: { weight: 1, params: [2, 3] },
  ConvInteger: { weight: 1, params: [2, 3] },
  DynamicQuantizeMatMul: { weight: 1, bias: 4, params: [2, 3] },
  MatMulIntegerToFloat: { weight: 1, bias: 6, params: [2, 3, 4, 5] },
  QLinearConv: { weight: 3, bias: 8, params: [1, 2, 4, 5, 6, 7] },
  QLinearMatMul: { weight: 3, params: [1, 2, 4, 5, 6, 7] },
  QGemm: { weight: 3, bias: 6, params: [1, 2, 4, 5, 7, 8] },
};
const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

/** Bytes a varint takes. */
function varintBytes(n: number): number {
  let bytes = 1;
  for (let v = n; v >= 128; v = Math.floor(v / 128)) bytes += 1;
  return bytes;
}

/** Bytes of an embedded message field with a one-byte tag (every field used here is numbered below 16). */
function fieldBytes(messageBytes: number): number {
  return 1 + varintBytes(messageBytes) + messageBytes;
}

function utf8(s: string | null | undefined): number {
  return s ? Buffer.byteLength(s, 'utf8') : 0;
}

/** The role of each initializer, from the slots that read it. */
function initializerRoles(graph: GraphProto): Map<string, Role> {
  const readers = new Map<string, { node: NodeProto; slot: number }[]>();
  for (const node of graph.node ?? []) {
    (node.input ?? []).forEach((name, slot) => {
      if (!name) return;
      let list = readers.get(name);
      if (list === undefined) readers.set(name, (list = []));
      list.push({ node, slot });
    });
  }
  const roleOfSlot = (node: NodeProto, slot: number): Role | undefined => {
    const op = node.opType ?? '';
    if (QDQ.has(op)) return slot >= 1 ? 'quantParams' : undefined;
    const slots = WEIGHT_SLOTS[op];
    if (slots === undefined) return undefined;
    if (slot === slots.weight) return 'weights';
    if (slot === slots.bias) return 'biases';
    return slots.params?.includes(slot) ? 'quantParams' : undefined;
  };
  /** The role of a value by what reads it: through a DequantizeLinear's data input, or a Mul that makes a scale. */
  const roleOf = (name: string, depth: number): Role => {
    for (const { node, slot } of readers.get(name) ?? []) {
      const direct = roleOfSlot(node, slot);
      if (direct !== undefined) return direct;
      const forwards = (node.opType === 'DequantizeLinear' && slot === 0) || node.opType === 'Mul';
      const out = node.output?.[0];
      if (forwards && out && depth < 2) {
        const through = roleOf(out, depth + 1);
        // A Mul reading a scale makes a scale; a Mul of anything else is some other constant.
        if (node.opType === 'DequantizeLinear' || through === 'quantParams') return through;
      }
    }
    return 'otherConstants';
  };
  return new Map((graph.initializer ?? []).map((t) => [t.name ?? '', roleOf(t.name ?? '', 0)]));
}

/** Data payload and total field bytes of one initializer inside GraphProto. */
function initializerBytes(t: TensorProto, encode: (t: TensorProto) => number): { data: number; total: number } {
  const bare: TensorProto = { ...t, rawData: undefined, floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [] };
  const header = encode(bare);
  if (t.rawData !== undefined && t.rawData !== null && t.rawData.length > 0) {
    const data = t.rawData.length;
    return { data, total: fieldBytes(header + 1 + varintBytes(data) + data) };
  }
  const full = encode(t);
  // Typed fields (float_data, int32_data...): everything the data fields add, tags and lengths included.
  return { data: full - header, total: fieldBytes(full) };
}

/** Splits the encoded size of `model` into its parts (see SizeBreakdown). */
export function sizeBreakdown(model: ModelProto): SizeBreakdown {
  const root = onnxSchema();
  const types = {
    model: root.lookupType('onnx.ModelProto'),
    tensor: root.lookupType('onnx.TensorProto'),
    node: root.lookupType('onnx.NodeProto'),
    valueInfo: root.lookupType('onnx.ValueInfoProto'),
  };
  const encoded = (type: typeof types.model, message: object): number => type.encode(message).finish().length;
  const total = encoded(types.model, model);
  const graph = model.graph;
  const parts = { weights: 0, biases: 0, quantParams: 0, otherConstants: 0 };
  let initializerHeaders = 0;
  let nodes = 0;
  let graphIo = 0;
  let names = 0;
  const nodesByOpType: Record<string, number> = {};
  if (graph) {
    const roles = initializerRoles(graph);
    for (const t of graph.initializer ?? []) {
      const { data, total: bytes } = initializerBytes(t, (x) => encoded(types.tensor, x));
      parts[roles.get(t.name ?? '') ?? 'otherConstants'] += data;
      initializerHeaders += bytes - data;
      names += utf8(t.name);
    }
    for (const node of graph.node ?? []) {
      const bytes = fieldBytes(encoded(types.node, node));
      nodes += bytes;
      const op = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType ?? ''}` : (node.opType ?? '');
      nodesByOpType[op] = (nodesByOpType[op] ?? 0) + bytes;
      names += utf8(node.name);
      for (const n of [...(node.input ?? []), ...(node.output ?? [])]) names += utf8(n);
    }
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      graphIo += fieldBytes(encoded(types.valueInfo, v));
      names += utf8(v.name);
    }
  }
  const counted = parts.weights + parts.biases + parts.quantParams + parts.otherConstants + initializerHeaders + nodes + graphIo;
  return {
    total,
    ...parts,
    initializerHeaders,
    initializerCount: graph?.initializer?.length ?? 0,
    nodes,
    nodesByOpType,
    nodeCount: graph?.node?.length ?? 0,
    graphIo,
    other: total - counted,
    names,
  };
}
