/**
 * Fuses the hard-swish that exporters write out of elementary ops into the one
 * ONNX `HardSwish` op (opset 14): `x·Clip(x+3, 0, 6)/6` (Paddle2ONNX, PyTorch before
 * opset 14) and `x·HardSigmoid(x)` with alpha 1/6 and beta 0.5. Four full-resolution
 * passes over memory become one, and in a QDQ graph a float hard-swish sits between
 * one DequantizeLinear and one QuantizeLinear instead of four elementwise ops each
 * with its own quantization point (README "Measured (quantization half)": the
 * PaddleOCR detector's hard-swish blocks were its slowest float islands).
 *
 * Output-equivalent within float rounding: onnxruntime computes
 * x·max(0, min(1, x/6 + 0.5)) instead of x·clip(x+3, 0, 6)/6. The model's opset is
 * raised to 14 only when a pattern is found (raiseOpset rewrites what changed).
 */
import { getAttrFloat, makeNode, opsetVersion, removeUnusedInitializers, tensorDims, type ModelProto, type NodeProto } from '../../onnx/index.ts';
import { cloneModel } from '../clone.ts';
import { dropStaleValueInfo, useCounts } from '../fold/graph-util.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import { floatInitializer, initializerMap, nodeKey, readFloat } from './common.ts';
import { raiseOpset } from './opset.ts';

/** HardSwish entered the default domain in opset 14. */
const HARDSWISH_OPSET = 14;

/** 1/6 as float32 or float64: an in-memory attribute keeps the double, a file the float. */
const isSixth = (v: number | undefined): boolean => v !== undefined && Math.abs(v - 1 / 6) < 1e-7;

export const fuseHardSwishPass: Pass = {
  name: 'fuse-hardswish',
  run: (model) => fuseHardSwish(model),
};

/** Copies the model, rewrites every hard-swish pattern into HardSwish, and reports each. */
export function fuseHardSwish(input: ModelProto): PassResult {
  const model = cloneModel(input);
  const graph = model.graph;
  const changes: Change[] = [];
  if (!graph) return { model: input, modified: false, report: { pass: 'fuse-hardswish', changes, warnings: [], stats: { fused: 0 } } };
  const inits = initializerMap(graph);
  const uses = useCounts(graph);
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);

  /** The scalar float constant `name` holds, or undefined. */
  const scalar = (name: string | undefined): number | undefined => {
    const t = floatInitializer(inits, name);
    // Only a one-element tensor is worth decoding: Mul and Div operands may be whole weight tensors.
    if (t === undefined || tensorDims(t).some((d) => d !== 1)) return undefined;
    const { data } = readFloat(t);
    return data.length === 1 ? data[0] : undefined;
  };
  /** The producer of `value` when it is a default-domain `opType` whose output only one node reads. */
  const soleProducer = (value: string | undefined, opType: string): NodeProto | undefined => {
    if (!value || (uses.get(value) ?? 0) !== 1) return undefined;
    const p = producer.get(value);
    return p !== undefined && p.opType === opType && (p.domain ?? '') === '' && p.output?.length === 1 ? p : undefined;
  };
  /** For Mul(a, b): [x, gate] when one operand is a sole-use `gateOp` output; tries both orders. */
  const gateOf = (mul: NodeProto, gateOp: string): [string, NodeProto] | undefined => {
    const [a, b] = [mul.input?.[0], mul.input?.[1]];
    for (const [x, g] of [[a, b], [b, a]] as const) {
      const gate = soleProducer(g, gateOp);
      if (x && gate) return [x, gate];
    }
    return undefined;
  };
  /** x·Clip(x+3, 0, 6): the Mul node and x, with the nodes it replaces. */
  const clipForm = (mul: NodeProto): { x: string; nodes: NodeProto[] } | undefined => {
    const found = gateOf(mul, 'Clip');
    if (!found) return undefined;
    const [x, clip] = found;
    const lo = clip.input?.[1] ? scalar(clip.input[1]) : getAttrFloat(clip, 'min');
    const hi = clip.input?.[2] ? scalar(clip.input[2]) : getAttrFloat(clip, 'max');
    if (lo !== 0 || hi !== 6) return undefined;
    const add = soleProducer(clip.input?.[0], 'Add');
    if (!add) return undefined;
    const [p, q] = [add.input?.[0], add.input?.[1]];
    const plusThree = (p === x && scalar(q) === 3) || (q === x && scalar(p) === 3);
    return plusThree ? { x, nodes: [add, clip, mul] } : undefined;
  };

  const replaced = new Map<NodeProto, NodeProto | null>();
  for (const node of graph.node ?? []) {
    if ((node.domain ?? '') !== '' || replaced.has(node)) continue;
    let match: { x: string; nodes: NodeProto[] } | undefined;
    if (node.opType === 'Div' || (node.opType === 'Mul' && !gateOf(node, 'HardSigmoid'))) {
      // The final /6, written as Div(·, 6) or Mul(·, 1/6), reads x·Clip(x+3, 0, 6).
      const sixth = node.opType === 'Div' ? scalar(node.input?.[1]) === 6 : [0, 1].some((i) => isSixth(scalar(node.input?.[i])));
      const other = node.opType === 'Div' ? node.input?.[0] : node.input?.find((i) => scalar(i) === undefined);
      const mul = sixth ? soleProducer(other, 'Mul') : undefined;
      const inner = mul ? clipForm(mul) : undefined;
      if (inner) match = { x: inner.x, nodes: [...inner.nodes, node] };
    } else if (node.opType === 'Mul') {
      const [x, gate] = gateOf(node, 'HardSigmoid')!;
      const alpha = getAttrFloat(gate, 'alpha', 0.2);
      const beta = getAttrFloat(gate, 'beta', 0.5);
      if (gate.input?.[0] === x && isSixth(alpha) && beta === 0.5) match = { x, nodes: [gate, node] };
    }
    if (!match || match.nodes.some((n) => replaced.has(n))) continue;
    const last = match.nodes[match.nodes.length - 1]!;
    const fused = makeNode('HardSwish', [match.x], [last.output![0]!], {}, { name: `${nodeKey(last)}_hardswish` });
    for (const n of match.nodes) replaced.set(n, null);
    replaced.set(last, fused);
    changes.push({ target: nodeKey(last), action: 'fused', detail: `${match.nodes.map((n) => n.opType).join(' → ')} → HardSwish`, stats: { nodes: match.nodes.length } });
  }
  if (changes.length === 0) return { model: input, modified: false, report: { pass: 'fuse-hardswish', changes, warnings: [], stats: { fused: 0 } } };

  const out: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    const r = replaced.get(n);
    if (r === undefined) out.push(n);
    else if (r !== null) out.push(r);
  }
  graph.node = out;
  dropStaleValueInfo(graph);
  removeUnusedInitializers(graph);
  const warnings: string[] = [];
  const from = opsetVersion(model) ?? 1;
  if (from < HARDSWISH_OPSET) {
    const up = raiseOpset(model, HARDSWISH_OPSET);
    warnings.push(`opset raised from ${up.from} to ${up.to} for HardSwish` + (up.rewritten.length > 0 ? ` (${up.rewritten.length} nodes rewritten)` : ''));
  }
  return { model, modified: true, report: { pass: 'fuse-hardswish', changes, warnings, stats: { fused: changes.length } } };
}
