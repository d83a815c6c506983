/**
 * What onnxruntime's level-1 QDQ transformers rebuild on load, shared by the pass that
 * relies on it (static-qdq.ts leaves those Q/DQ pairs out of the file) and the code that
 * must recognise the resulting graph (materialize.ts tells int8 node units from weight-only
 * nodes).
 */
import type { NodeProto } from '../../onnx/types.ts';

/**
 * Direct 8-bit ops across which onnxruntime's QDQPropagationTransformer moves a
 * DequantizeLinear forward, inserting a Q/DQ pair with the same scale and zero point after
 * the op (qdq_propagation.cc, CanNodePropagate). It matches schema versions, so each entry
 * is the range of default-domain opsets whose schema version it lists (Reshape-21,
 * MaxPool-22 and the other later versions are not listed: there the pair stays explicit).
 */
const PROPAGATED_BY_ORT: Readonly<Record<string, readonly [number, number]>> = {
  MaxPool: [12, 21],
  Reshape: [5, 20],
  Transpose: [1, 20],
  Squeeze: [1, 20],
  Unsqueeze: [1, 20],
  Slice: [1, 20],
};

/** Whether onnxruntime propagates a DequantizeLinear across `node` in a model of default-domain opset `opset`. */
export function ortPropagatesDq(node: NodeProto, opset: number): boolean {
  if (node.domain && node.domain !== 'ai.onnx') return false;
  const versions = PROPAGATED_BY_ORT[node.opType ?? ''];
  return versions !== undefined && opset >= versions[0] && opset <= versions[1];
}
