/**
 * The bytes a serving session is created from, for a version read verified from the store.
 *
 * A weight-only int8 variant (compress int8-static with `lowFanIn: 'weight-only'`: constant
 * int8 weights behind DequantizeLinear feeding float nodes) is stored small, but
 * onnxruntime keeps those DequantizeLinear nodes (it does not constant-fold them), so the
 * float node sees a non-constant weight it can neither pre-pack nor re-layout, and the
 * variant runs slower than its float parent (README, Compression). `materializeWeightOnly`
 * turns those weights back into float initializers; done here, once per load, the variant
 * serves at float speed while the store keeps the small file. int8 node units (a DQ feeding
 * a node whose output is quantized) are fused by onnxruntime and stay as they are.
 */
import { materializeWeightOnly } from '../compress/index.ts';
import { decodeModel, encodeModel } from '../onnx/index.ts';

/** Any DequantizeLinear node names its op type in the protobuf bytes: a model without the string needs no decoding. */
const DEQUANTIZE = Buffer.from('DequantizeLinear', 'latin1');

/**
 * `bytes` with weight-only DequantizeLinear weights materialized to float; the same array
 * when there are none (or the model keeps initializers in external data, which the
 * materialization does not read).
 */
export function sessionModelBytes(bytes: Uint8Array, externalData: readonly unknown[] = []): Uint8Array {
  if (externalData.length > 0 || !Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(DEQUANTIZE)) return bytes;
  const { model, materialized } = materializeWeightOnly(decodeModel(bytes));
  return materialized.length === 0 ? bytes : encodeModel(model);
}
