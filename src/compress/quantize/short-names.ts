/**
 * Short names for what a quantization pass adds to a graph. Every quantized tensor gets
 * one base-36 id, and each thing made for it is `<id><role>`:
 *
 *   q  quantized data (a QuantizeLinear output, or the int8/int32 initializer)
 *   s  scale          z  zero point          d  DequantizeLinear output
 *   Q, D, M           the QuantizeLinear, DequantizeLinear and scale-Mul nodes
 *
 * Why: ORT-style names (`<tensor>_QuantizeLinear_Output`) repeat the original tensor name
 * in every Q/DQ tensor, node and initializer, and on a mobile conv net those copies were
 * 0.7% of the fp32 file, a third of what the Q/DQ structure costs beyond the int8 weights
 * (README, Compression). The link back stays readable: a Q node reads the original tensor,
 * a weight's DequantizeLinear feeds the original node.
 */
import type { NameScope } from '../../onnx/index.ts';

export type QdqRole = 'q' | 's' | 'z' | 'd' | 'Q' | 'D' | 'M';

export class ShortNames {
  private readonly ids = new Map<string, string>();
  private next = 0;

  constructor(private readonly scope: NameScope) {}

  /** The id of `tensor` (the same for every role of the same tensor). */
  idOf(tensor: string): string {
    let id = this.ids.get(tensor);
    if (id === undefined) {
      id = (this.next++).toString(36);
      this.ids.set(tensor, id);
    }
    return id;
  }

  /** A fresh graph-unique name for `role` of `tensor`: `<id><role>`, or `<id><role>_<n>` when taken. */
  fresh(tensor: string, role: QdqRole): string {
    return this.scope.fresh(`${this.idOf(tensor)}${role}`);
  }
}
