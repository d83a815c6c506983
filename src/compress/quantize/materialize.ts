/**
 * Turns weight-only int8 (a DequantizeLinear of constant int8 data feeding a node that
 * computes in float, as `lowFanIn: 'weight-only'` writes it) back into float initializers.
 *
 * Why: the int8 form is what is stored and shipped (the file is ~0.27x fp32), but
 * onnxruntime does not constant-fold DequantizeLinear (it keeps them for its QDQ fusion),
 * so a float Conv reading a DQ output has a non-constant weight: the CPU EP can neither
 * pre-pack it nor move it to its NCHWc layout, and the model runs slower than with float
 * weights (README, Compression). Done once before a session is created, the model runs
 * like the float-weight one while the file stays small.
 *
 * A DQ is left alone when its consumer reads its data input through a DequantizeLinear (or
 * through a MaxPool/Reshape/... after one, where onnxruntime inserts the pair the file leaves
 * out) and writes into a QuantizeLinear: that is an int8 node unit, fused into an integer kernel.
 */
import { cloneModel } from '../clone.ts';
import { GraphIndex, getAttrInt, makeTensor, opsetVersion, readTensor, removeUnusedInitializers, tensorDims, tensorToFloat32 } from '../../onnx/index.ts';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../../onnx/types.ts';
import { initializerMap } from './common.ts';
import { ortPropagatesDq } from './ort-qdq.ts';

const INTEGER_DATA = new Set<number>([DataType.INT8, DataType.UINT8, DataType.INT32]);

/** Integer values of an initializer (int8, uint8 or int32: all exact as numbers). */
function integerValues(t: TensorProto): ArrayLike<number> | undefined {
  const data = readTensor(t).data;
  return data instanceof Int8Array || data instanceof Uint8Array || data instanceof Int32Array ? data : undefined;
}

/** (q − zp) · scale along `axis` (per tensor when scale has one value), in float32 as DequantizeLinear computes it. */
function dequantize(data: TensorProto, scale: TensorProto, zero: TensorProto | undefined, axis: number): Float32Array | undefined {
  const dims = tensorDims(data);
  const count = dims.reduce((a, b) => a * b, 1);
  const q = integerValues(data);
  const s = scale.dataType === DataType.FLOAT ? tensorToFloat32(scale) : undefined;
  const z = zero === undefined ? undefined : integerValues(zero);
  if (q === undefined || q.length !== count || s === undefined || (zero !== undefined && z === undefined)) return undefined;
  const rank = dims.length;
  const a = axis < 0 ? axis + rank : axis;
  const channels = s.length === 1 ? 1 : (dims[a] ?? 0);
  if (s.length !== channels || (z !== undefined && z.length !== s.length)) return undefined;
  const inner = s.length === 1 ? count : dims.slice(a + 1).reduce((x, y) => x * y, 1);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const c = s.length === 1 ? 0 : Math.floor(i / inner) % channels;
    out[i] = Math.fround((q[i]! - (z?.[c] ?? 0)) * s[c]!);
  }
  return out;
}

export interface MaterializeResult {
  readonly model: ModelProto;
  /** DequantizeLinear outputs that became float initializers. */
  readonly materialized: readonly string[];
}

/** A copy of `input` with every weight-only DequantizeLinear replaced by its float value. */
export function materializeWeightOnly(input: ModelProto): MaterializeResult {
  const model = cloneModel(input);
  const graph = model.graph;
  if (!graph) return { model, materialized: [] };
  const inits = initializerMap(graph);
  const index = new GraphIndex(graph);
  const dropped = new Set<NodeProto>();
  const materialized: string[] = [];
  const opset = opsetVersion(model) ?? 1;
  /** Whether `tensor` comes out of a DQ, directly or through ops onnxruntime moves that DQ across (the Q/DQ pair after them is not stored). */
  const readsDq = (tensor: string): boolean => {
    let producer = index.producer(tensor);
    for (let hops = 0; producer !== undefined && producer.opType !== 'DequantizeLinear' && ortPropagatesDq(producer, opset) && hops < 64; hops++) {
      producer = index.producer(producer.input?.[0] ?? '');
    }
    return producer?.opType === 'DequantizeLinear';
  };
  /**
   * onnxruntime's node unit: the data input read through a DQ and the output written into a Q; a Gemm or MatMul
   * also without the Q (QGemm with float output, MatMulIntegerToFloat) when its weight DQ has the zero point
   * those fusions need (int8-static keeps it for them; weight-only DQs leave it out).
   */
  const isInt8Unit = (node: NodeProto, weightDq: NodeProto) =>
    readsDq(node.input?.[0] ?? '') &&
    ((node.output ?? []).some((o) => index.consumers(o).some((c) => c.opType === 'QuantizeLinear')) ||
      ((node.opType === 'Gemm' || node.opType === 'MatMul') && node.input?.[1] === weightDq.output?.[0] && Boolean(weightDq.input?.[2])));
  for (const node of graph.node ?? []) {
    if (node.opType !== 'DequantizeLinear' || (node.domain && node.domain !== 'ai.onnx')) continue;
    const [dataName, scaleName, zeroName] = node.input ?? [];
    const data = inits.get(dataName ?? '');
    const scale = inits.get(scaleName ?? '');
    const zero = zeroName ? inits.get(zeroName) : undefined;
    if (data === undefined || scale === undefined || (zeroName && zero === undefined) || !INTEGER_DATA.has(data.dataType ?? -1)) continue;
    const out = node.output?.[0];
    if (!out || index.isGraphOutput(out)) continue;
    const consumers = index.consumers(out);
    if (consumers.length === 0 || consumers.some((c) => isInt8Unit(c, node))) continue;
    const values = dequantize(data, scale, zero, getAttrInt(node, 'axis', 1));
    if (values === undefined) continue;
    graph.initializer!.push(makeTensor(out, DataType.FLOAT, tensorDims(data), values));
    dropped.add(node);
    materialized.push(out);
  }
  graph.node = (graph.node ?? []).filter((n) => !dropped.has(n));
  removeUnusedInitializers(graph);
  return { model, materialized };
}
