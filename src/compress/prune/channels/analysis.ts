/**
 * Dependency analysis for channel pruning: one walk over the graph in topological
 * order gives every value its channel layout, unites coupled atoms (residual
 * Add/Mul, Concat on a non-channel axis, weights shared by two producers), records
 * the edits pruning will need, and blocks atoms wherever a rewrite would not be safe
 * (graph outputs, unknown ops, shape-dependent ops, broadcasts it cannot slice),
 * with the reason.
 */
import { DataType, getAttrFloats, getAttrInt, getAttrInts, nodeInputs, opsetVersion, readTensor, tensorDims, topologicalOrder, valueType } from '../../../onnx/index.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../../../onnx/index.ts';
import { initializerMap } from '../../fold/graph-util.ts';
import { AtomSet, totalChannels, type Edit, type Layout } from './layout.ts';

/** Ops that apply elementwise (or per channel without mixing channels) to their first input. */
const PASS_THROUGH = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'Mish', 'Gelu',
  'Exp', 'Log', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Erf', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'ThresholdedRelu', 'Identity', 'Dropout', 'Cast',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool',
]);

/** Elementwise ops with broadcasting whose operands all share the output's channels. */
const JOINS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Pow']);

export interface Analysis {
  readonly atoms: AtomSet;
  readonly edits: Edit[];
  /** The layout of every value that carries channels. */
  readonly layouts: Map<string, Layout>;
}

class Analyzer {
  readonly atoms = new AtomSet();
  readonly edits: Edit[] = [];
  readonly layouts = new Map<string, Layout>();
  private readonly inits: Map<string, TensorProto>;
  private readonly opset: number;
  /** The first source atom that uses each weight initializer: a second user is united with it. */
  private readonly weightAtoms = new Map<string, number>();

  constructor(
    private readonly graph: GraphProto,
    model: ModelProto,
  ) {
    this.inits = initializerMap(graph);
    this.opset = opsetVersion(model) ?? 1;
  }

  run(): Analysis {
    for (const node of topologicalOrder(this.graph)) this.visit(node);
    for (const o of this.graph.output ?? []) {
      const layout = this.layouts.get(o.name ?? '');
      if (layout) this.atoms.blockLayout(layout, `reaches graph output '${o.name ?? ''}'`);
    }
    return { atoms: this.atoms, edits: this.edits, layouts: this.layouts };
  }

  private dims(name: string | undefined): number[] | undefined {
    const t = name ? this.inits.get(name) : undefined;
    return t && t.dataType === DataType.FLOAT ? tensorDims(t) : undefined;
  }

  private intValues(name: string | undefined): number[] | undefined {
    const t = name ? this.inits.get(name) : undefined;
    if (t === undefined || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined;
    return Array.from(readTensor(t).data as ArrayLike<number | bigint>, (v) => Number(v));
  }

  private floatValues(name: string | undefined): Float32Array | undefined {
    const t = name ? this.inits.get(name) : undefined;
    return t && t.dataType === DataType.FLOAT ? (readTensor(t).data as Float32Array) : undefined;
  }

  private label(node: NodeProto): string {
    return `${node.opType ?? ''} '${node.name || node.output?.[0] || ''}'`;
  }

  private blockInputs(node: NodeProto, reason: string): void {
    for (const i of nodeInputs(node)) {
      const l = this.layouts.get(i);
      if (l) this.atoms.blockLayout(l, reason);
    }
  }

  /** A fresh atom for a producer's output channels, uniting producers that share one weight tensor. */
  private sourceAtom(node: NodeProto, channels: number, weightSlot: number, weightAxis: number, bias?: { slot: number; axis: number }): number {
    const atom = this.atoms.create(channels, node);
    this.edits.push({ kind: 'source', node, slot: weightSlot, axis: weightAxis, atom });
    if (bias) this.edits.push({ kind: 'source', node, slot: bias.slot, axis: bias.axis, atom });
    const weight = node.input?.[weightSlot] ?? '';
    const first = this.weightAtoms.get(weight);
    if (first === undefined) this.weightAtoms.set(weight, atom);
    else if (this.atoms.atoms[first]!.length === channels) this.atoms.union(first, atom);
    else {
      this.atoms.block(first, `weight '${weight}' is shared with ${this.label(node)} along another axis`);
      this.atoms.block(atom, `weight '${weight}' is shared along another axis`);
    }
    return atom;
  }

  private setOutput(node: NodeProto, layout: Layout | undefined): void {
    const out = node.output?.[0];
    if (out && layout) this.layouts.set(out, layout);
  }

  private visit(node: NodeProto): void {
    const op = (node.domain ?? '') === '' ? (node.opType ?? '') : `${node.domain ?? ''}.${node.opType ?? ''}`;
    const input = this.layouts.get(node.input?.[0] ?? '');
    switch (op) {
      case 'Conv':
        return this.conv(node, input);
      case 'ConvTranspose':
        return this.convTranspose(node, input);
      case 'Gemm':
        return this.gemm(node, input);
      case 'MatMul':
        return this.matmul(node, input);
      case 'BatchNormalization':
      case 'InstanceNormalization':
        return this.perChannel(node, input, op === 'BatchNormalization' ? [1, 2, 3, 4] : [1, 2]);
      case 'Flatten':
        return this.flatten(node, input);
      case 'Reshape':
        return this.reshape(node, input);
      case 'Concat':
        return this.concat(node);
      case 'Resize':
      case 'Upsample':
        return this.resize(node, input);
      case 'Pad':
        return this.pad(node, input);
      case 'ReduceMean':
      case 'ReduceMax':
      case 'ReduceMin':
      case 'ReduceSum':
      case 'ReduceL2':
        return this.reduce(node, input);
      default:
        if (JOINS.has(op)) return this.join(node);
        if (PASS_THROUGH.has(op) && input) return this.passThrough(node, input, op);
        this.blockInputs(node, `read by ${this.label(node)}, which channel pruning does not rewrite`);
    }
  }

  private passThrough(node: NodeProto, input: Layout, op: string): void {
    // Extra outputs (MaxPool indices, Dropout mask) and per-channel extra inputs (PRelu slope) need care.
    if ((node.output ?? []).slice(1).some((o) => o !== '')) {
      this.atoms.blockLayout(input, `${this.label(node)} has a second output`);
      return;
    }
    if (op === 'PRelu') {
      const slope = this.dims(node.input?.[1]);
      if (slope === undefined || !this.constantBroadcasts(node, 1, slope, input)) return;
    }
    for (const extra of (node.input ?? []).slice(1)) {
      if (extra && this.layouts.has(extra)) this.atoms.blockLayout(input, `${this.label(node)} reads channels through a second input`);
    }
    this.setOutput(node, input);
  }

  /** A constant operand broadcast against `layout`: fine when size 1 along the channel axis, sliced when it holds every feature. */
  private constantBroadcasts(node: NodeProto, slot: number, dims: readonly number[], layout: Layout): boolean {
    const axis = dims.length + layout.axis;
    if (axis < 0 || dims[axis] === 1) return true;
    const features = totalChannels(layout) * layout.spread;
    if (layout.spread >= 1 && dims[axis] === features) {
      this.edits.push({ kind: 'layout', node, slot, axis, layout });
      return true;
    }
    this.atoms.blockLayout(layout, `${this.label(node)}: constant '${node.input?.[slot] ?? ''}' of shape [${dims.join(',')}] does not broadcast per channel`);
    return false;
  }

  private conv(node: NodeProto, input: Layout | undefined): void {
    const w = this.dims(node.input?.[1]);
    const group = getAttrInt(node, 'group', 1);
    if (w === undefined || w.length < 3) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} has no constant weight`);
      return;
    }
    const rank = w.length;
    const hasBias = !!node.input?.[2];
    if (hasBias && this.dims(node.input?.[2]) === undefined) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} has a non-constant bias`);
      return;
    }
    const cin = w[1]! * group;
    const cout = w[0]!;
    if (group > 1 && w[1] === 1 && cout === group) {
      // Depthwise: output channel c reads only input channel c, so channels pass through.
      if (input && input.axis === 1 - rank && input.spread === 1 && totalChannels(input) === cin) {
        this.edits.push({ kind: 'layout', node, slot: 1, axis: 0, layout: input });
        if (hasBias) this.edits.push({ kind: 'layout', node, slot: 2, axis: 0, layout: input });
        this.edits.push({ kind: 'group', node, layout: input });
        this.setOutput(node, input);
        return;
      }
      if (input) this.atoms.blockLayout(input, `${this.label(node)}: depthwise input layout does not match its channels`);
      this.setOutput(node, this.opaque(cout, rank, `output of depthwise ${this.label(node)} whose input is not prunable`));
      return;
    }
    if (group > 1) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} is a grouped Conv (group=${group}): channels are coupled across groups`);
      this.setOutput(node, this.opaque(cout, rank, `output of grouped ${this.label(node)} (group=${group})`));
      return;
    }
    if (input) {
      if (input.axis === 1 - rank && input.spread === 1 && totalChannels(input) === cin) this.edits.push({ kind: 'layout', node, slot: 1, axis: 1, layout: input });
      else this.atoms.blockLayout(input, `${this.label(node)}: input channels do not line up with its weight`);
    }
    const atom = this.sourceAtom(node, cout, 1, 0, hasBias ? { slot: 2, axis: 0 } : undefined);
    this.setOutput(node, { segments: [{ atom, length: cout }], axis: 1 - rank, rank, spread: 1 });
  }

  private convTranspose(node: NodeProto, input: Layout | undefined): void {
    const w = this.dims(node.input?.[1]);
    const group = getAttrInt(node, 'group', 1);
    if (w === undefined || w.length < 3 || group !== 1 || (node.input?.[2] && this.dims(node.input[2]) === undefined)) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} is grouped or has non-constant weights`);
      if (w) this.setOutput(node, this.opaque(w[1]! * group, w.length, `output of ${this.label(node)}`));
      return;
    }
    const rank = w.length;
    if (input) {
      if (input.axis === 1 - rank && input.spread === 1 && totalChannels(input) === w[0]) this.edits.push({ kind: 'layout', node, slot: 1, axis: 0, layout: input });
      else this.atoms.blockLayout(input, `${this.label(node)}: input channels do not line up with its weight`);
    }
    const atom = this.sourceAtom(node, w[1]!, 1, 1, node.input?.[2] ? { slot: 2, axis: 0 } : undefined);
    this.setOutput(node, { segments: [{ atom, length: w[1]! }], axis: 1 - rank, rank, spread: 1 });
  }

  /** Checks (and resolves a pending spread of) a layout feeding a weight's input axis of size `k`. */
  private featureLayout(node: NodeProto, input: Layout, k: number): Layout | undefined {
    const channels = totalChannels(input);
    if (input.axis !== -1) {
      this.atoms.blockLayout(input, `${this.label(node)} contracts an axis other than the channel axis`);
      return undefined;
    }
    if (input.spread === 0 && channels > 0 && k % channels === 0) return { ...input, spread: k / channels };
    if (input.spread >= 1 && channels * input.spread === k) return input;
    this.atoms.blockLayout(input, `${this.label(node)}: ${k} input features do not match ${channels} channels`);
    return undefined;
  }

  private gemm(node: NodeProto, input: Layout | undefined): void {
    const b = this.dims(node.input?.[1]);
    const transB = getAttrInt(node, 'transB', 0) === 1;
    this.blockSecondOperand(node);
    if (b === undefined || b.length !== 2 || getAttrInt(node, 'transA', 0) !== 0) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} has no constant weight or uses transA`);
      return;
    }
    const k = transB ? b[1]! : b[0]!;
    const n = transB ? b[0]! : b[1]!;
    if (input) {
      const resolved = this.featureLayout(node, input, k);
      if (resolved) this.edits.push({ kind: 'layout', node, slot: 1, axis: transB ? 1 : 0, layout: resolved });
    }
    const cName = node.input?.[2];
    const c = this.dims(cName);
    let bias: { slot: number; axis: number } | undefined;
    if (cName) {
      const elements = c?.reduce((a, d) => a * d, 1);
      if (c !== undefined && elements === n && c.length >= 1) bias = { slot: 2, axis: c.length - 1 };
      else if (c === undefined || elements !== 1) {
        this.setOutput(node, this.opaque(n, 2, `${this.label(node)}: bias C is not per output channel`));
        return;
      }
    }
    const atom = this.sourceAtom(node, n, 1, transB ? 0 : 1, bias);
    this.setOutput(node, { segments: [{ atom, length: n }], axis: -1, rank: 2, spread: 1 });
  }

  private blockSecondOperand(node: NodeProto): void {
    const second = this.layouts.get(node.input?.[1] ?? '');
    if (second) this.atoms.blockLayout(second, `used as the weight operand of ${this.label(node)}`);
  }

  private matmul(node: NodeProto, input: Layout | undefined): void {
    const w = this.dims(node.input?.[1]);
    this.blockSecondOperand(node);
    if (w === undefined || w.length !== 2) {
      if (input) this.atoms.blockLayout(input, `${this.label(node)} has no constant 2-D weight`);
      return;
    }
    if (input) {
      const resolved = this.featureLayout(node, input, w[0]!);
      if (resolved) this.edits.push({ kind: 'layout', node, slot: 1, axis: 0, layout: resolved });
    }
    const inRank = input?.rank ?? valueType(this.graph, node.input?.[0] ?? '')?.shape?.length;
    const atom = this.sourceAtom(node, w[1]!, 1, 1);
    this.setOutput(node, { segments: [{ atom, length: w[1]! }], axis: -1, rank: inRank === undefined ? undefined : Math.max(inRank, 2), spread: 1 });
  }

  private perChannel(node: NodeProto, input: Layout | undefined, slots: readonly number[]): void {
    if (!input) return;
    if ((node.output ?? []).slice(1).some((o) => o !== '')) {
      this.atoms.blockLayout(input, `${this.label(node)} has training outputs`);
      return;
    }
    if (input.rank === undefined || input.axis !== 1 - input.rank || input.spread !== 1) {
      this.atoms.blockLayout(input, `${this.label(node)} normalizes an axis that is not the channel axis`);
      return;
    }
    for (const slot of slots) {
      const d = this.dims(node.input?.[slot]);
      if (d === undefined || d.length !== 1 || d[0] !== totalChannels(input)) {
        this.atoms.blockLayout(input, `${this.label(node)}: parameter '${node.input?.[slot] ?? ''}' is not a constant per-channel vector`);
        return;
      }
    }
    for (const slot of slots) this.edits.push({ kind: 'layout', node, slot, axis: 0, layout: input });
    this.setOutput(node, input);
  }

  private flatten(node: NodeProto, input: Layout | undefined): void {
    if (!input) return;
    const axis = getAttrInt(node, 'axis', 1);
    if (input.rank !== undefined && axis === 1 && input.axis === 1 - input.rank && input.spread === 1) {
      this.setOutput(node, { segments: input.segments, axis: -1, rank: 2, spread: input.rank === 2 ? 1 : 0 });
      return;
    }
    this.atoms.blockLayout(input, `${this.label(node)} does not flatten channels-first`);
  }

  private reshape(node: NodeProto, input: Layout | undefined): void {
    if (!input) return;
    const shape = this.intValues(node.input?.[1]);
    const flattening = input.rank !== undefined && input.axis === 1 - input.rank && input.spread === 1 && shape?.length === 2;
    if (shape && flattening && shape[1] === -1 && shape[0] !== -1) {
      this.setOutput(node, { segments: input.segments, axis: -1, rank: 2, spread: input.rank === 2 ? 1 : 0 });
      return;
    }
    if (shape && flattening && shape[1]! > 0 && shape[1]! % totalChannels(input) === 0) {
      const layout: Layout = { segments: input.segments, axis: -1, rank: 2, spread: shape[1]! / totalChannels(input) };
      this.edits.push({ kind: 'count', node, slot: 1, index: 1, layout, oldValue: shape[1]! });
      this.setOutput(node, layout);
      return;
    }
    this.atoms.blockLayout(input, `${this.label(node)}: target shape ${shape ? `[${shape.join(',')}]` : '(computed at run time)'} is not a channels-first flatten`);
  }

  private concat(node: NodeProto): void {
    const inputs = (node.input ?? []).filter((i) => i !== '');
    const layouts = inputs.map((i) => this.layouts.get(i));
    if (layouts.every((l) => l === undefined)) return;
    const known = layouts.find((l): l is Layout => l !== undefined)!;
    const rank = known.rank;
    let axis = getAttrInt(node, 'axis', this.opset < 4 ? 1 : 0);
    if (axis >= 0) {
      if (rank === undefined) {
        this.blockInputs(node, `${this.label(node)}: rank unknown`);
        return;
      }
      axis -= rank;
    }
    if (axis !== known.axis) {
      // Concatenating along another axis: every input must keep the same channels.
      this.join(node);
      return;
    }
    const segments = [];
    for (const [i, l] of layouts.entries()) {
      let layout = l;
      if (layout === undefined) {
        const shape = valueType(this.graph, inputs[i]!)?.shape;
        const size = shape && rank !== undefined && shape.length === rank ? shape[rank + axis] : undefined;
        if (typeof size !== 'number') {
          this.blockInputs(node, `${this.label(node)}: input '${inputs[i]!}' has an unknown channel count`);
          return;
        }
        layout = this.opaque(size, rank, `concatenated input '${inputs[i]!}' of ${this.label(node)} is not produced by a prunable layer`);
      }
      if (layout.spread !== 1 || layout.axis !== axis) {
        this.blockInputs(node, `${this.label(node)}: inputs are laid out differently`);
        return;
      }
      segments.push(...layout.segments);
    }
    this.setOutput(node, { segments, axis, rank, spread: 1 });
  }

  private opaque(channels: number, rank: number | undefined, reason: string): Layout {
    const atom = this.atoms.create(channels, undefined, reason);
    return { segments: [{ atom, length: channels }], axis: rank === undefined ? -1 : 1 - rank, rank, spread: 1 };
  }

  /** Elementwise ops: all channel-carrying operands are united segment by segment, constants sliced or broadcast. */
  private join(node: NodeProto): void {
    const inputs = (node.input ?? []).map((name, slot) => ({ name, slot, layout: this.layouts.get(name) })).filter((x) => x.name !== '');
    const carried = inputs.filter((x) => x.layout !== undefined);
    if (carried.length === 0) return;
    const first = carried[0]!.layout!;
    for (const other of carried.slice(1)) {
      const l = other.layout!;
      const aligned = l.axis === first.axis && l.spread === first.spread && l.segments.length === first.segments.length && l.segments.every((s, i) => s.length === first.segments[i]!.length);
      if (!aligned) {
        this.atoms.blockLayout(first, `${this.label(node)} joins tensors whose channels are laid out differently`);
        this.atoms.blockLayout(l, `${this.label(node)} joins tensors whose channels are laid out differently`);
        continue;
      }
      l.segments.forEach((s, i) => this.atoms.union(s.atom, first.segments[i]!.atom));
    }
    for (const x of inputs) {
      if (x.layout) continue;
      const dims = this.dims(x.name);
      if (dims !== undefined) {
        this.constantBroadcasts(node, x.slot, dims, first);
        continue;
      }
      const other = this.inits.get(x.name);
      if (other !== undefined) {
        if (tensorDims(other).reduce((a, d) => a * d, 1) !== 1) this.atoms.blockLayout(first, `${this.label(node)}: non-float constant '${x.name}' is not a scalar`);
        continue;
      }
      const shape = valueType(this.graph, x.name)?.shape;
      const axis = shape ? shape.length + first.axis : -1;
      if (shape && (axis < 0 || shape[axis] === 1)) continue;
      this.atoms.blockLayout(first, `${this.label(node)}: operand '${x.name}' is not a constant and its channel size is unknown`);
    }
    this.setOutput(node, first);
  }

  private resize(node: NodeProto, input: Layout | undefined): void {
    if (!input) return;
    if (input.rank === undefined) {
      this.atoms.blockLayout(input, `${this.label(node)}: rank unknown`);
      return;
    }
    const channelAxis = input.rank + input.axis;
    const scalesSlot = node.opType === 'Upsample' || this.opset < 11 ? 1 : 2;
    const scalesName = node.input?.[scalesSlot];
    const sizesName = node.opType === 'Resize' && this.opset >= 11 ? node.input?.[3] : undefined;
    if (sizesName) {
      const sizes = this.intValues(sizesName);
      if (sizes === undefined || sizes.length !== input.rank) {
        this.atoms.blockLayout(input, `${this.label(node)}: output sizes computed at run time or given per axis subset`);
        return;
      }
      this.edits.push({ kind: 'count', node, slot: 3, index: channelAxis, layout: input, oldValue: sizes[channelAxis]! });
      this.setOutput(node, input);
      return;
    }
    const scales = scalesName ? this.floatValues(scalesName) : node.opType === 'Upsample' ? Float32Array.from(getAttrFloats(node, 'scales', [])) : undefined;
    if (scales === undefined || scales.length !== input.rank || scales[channelAxis] !== 1) {
      this.atoms.blockLayout(input, `${this.label(node)}: scales are not constant or scale the channel axis`);
      return;
    }
    this.setOutput(node, input);
  }

  /** Reductions over other axes with keepdims (SE blocks' spatial mean) keep the channels. */
  private reduce(node: NodeProto, input: Layout | undefined): void {
    if (!input) return;
    const rank = input.rank;
    const axesFromInput = (node.opType === 'ReduceSum' && this.opset >= 13) || this.opset >= 18;
    const axes = axesFromInput ? this.intValues(node.input?.[1]) : getAttrInts(node, 'axes');
    const keep = getAttrInt(node, 'keepdims', 1) === 1;
    const channelAxis = rank === undefined ? undefined : rank + input.axis;
    const touchesChannels = axes === undefined || channelAxis === undefined || axes.some((a) => (a < 0 ? a + rank! : a) === channelAxis);
    if (!keep || touchesChannels || input.spread !== 1) {
      this.atoms.blockLayout(input, `${this.label(node)} reduces over the channel axis, all axes, or drops dimensions`);
      return;
    }
    this.setOutput(node, input);
  }

  private pad(node: NodeProto, input: Layout | undefined): void {
    if (!input) return;
    const pads = this.opset >= 11 ? this.intValues(node.input?.[1]) : getAttrInts(node, 'pads');
    const rank = input.rank;
    if (pads === undefined || rank === undefined || pads.length !== 2 * rank || node.input?.[3]) {
      this.atoms.blockLayout(input, `${this.label(node)}: pads are not constant over all axes`);
      return;
    }
    const c = rank + input.axis;
    if (pads[c] !== 0 || pads[c + rank] !== 0) {
      this.atoms.blockLayout(input, `${this.label(node)} pads the channel axis`);
      return;
    }
    this.setOutput(node, input);
  }
}

export function analyzeChannels(model: ModelProto): Analysis {
  return new Analyzer(model.graph ?? {}, model).run();
}
