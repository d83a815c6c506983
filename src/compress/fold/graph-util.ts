/**
 * Small graph helpers shared by the fold and prune passes: constant lookup, value
 * use counts, and the bookkeeping that keeps a rewritten graph tidy (stale
 * value_info, initializers written under a name only one node uses).
 */
import { definedNames, NameScope, nodeInputs, tensorDims, tensorToFloat32, makeTensor, DataType } from '../../onnx/index.ts';
import type { GraphProto, NodeProto, TensorInput, TensorProto } from '../../onnx/index.ts';

/** How many node inputs (subgraph outer-scope reads included) and graph outputs read each value. */
export function useCounts(graph: GraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of graph.node ?? []) for (const i of nodeInputs(n)) counts.set(i, (counts.get(i) ?? 0) + 1);
  for (const o of graph.output ?? []) if (o.name) counts.set(o.name, (counts.get(o.name) ?? 0) + 1);
  return counts;
}

/**
 * Constant initializers by name. Initializers that are also graph inputs are left
 * out: they are defaults a caller may override, not constants a pass may bake in.
 */
export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  const overridable = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const map = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) if (t.name && !overridable.has(t.name)) map.set(t.name, t);
  return map;
}

/** A float32 initializer's values and dims, or undefined when `name` is not a FLOAT initializer. */
export function floatInitializer(inits: ReadonlyMap<string, TensorProto>, name: string | undefined): { data: Float32Array; dims: number[] } | undefined {
  if (!name) return undefined;
  const t = inits.get(name);
  if (t === undefined || t.dataType !== DataType.FLOAT) return undefined;
  return { data: tensorToFloat32(t), dims: tensorDims(t) };
}

/** Drops value_info entries for names nothing defines any more (a rewrite removed or renamed them). */
export function dropStaleValueInfo(graph: GraphProto): void {
  if (!graph.valueInfo || graph.valueInfo.length === 0) return;
  const defined = definedNames(graph);
  graph.valueInfo = graph.valueInfo.filter((v) => v.name !== undefined && v.name !== null && defined.has(v.name));
}

/** Drops value_info entries for the given names (their shapes changed and are no longer known). */
export function dropValueInfo(graph: GraphProto, names: ReadonlySet<string>): void {
  if (!graph.valueInfo || graph.valueInfo.length === 0 || names.size === 0) return;
  graph.valueInfo = graph.valueInfo.filter((v) => !names.has(v.name ?? ''));
}

/**
 * Writes new float32 data for input `slot` of `node`. When no other reader shares the
 * initializer it is replaced under its own name; otherwise (a weight shared by two
 * nodes) a new initializer with a fresh name is added and only this node reads it.
 */
export class InitializerWriter {
  private readonly inits: Map<string, TensorProto>;
  private readonly uses: Map<string, number>;
  private readonly names: NameScope;

  constructor(private readonly graph: GraphProto) {
    this.inits = initializerMap(graph);
    this.uses = useCounts(graph);
    this.names = new NameScope(graph);
  }

  get(name: string): TensorProto | undefined {
    return this.inits.get(name);
  }

  /** Sets `node.input[slot]` to a FLOAT initializer holding `data` with `dims`. */
  write(node: NodeProto, slot: number, dims: readonly number[], data: Float32Array, baseName: string): string {
    return this.writeTyped(node, slot, DataType.FLOAT, dims, data, baseName);
  }

  /** Points `node.input[slot]` at an existing initializer (a slice another node already got). */
  reuse(node: NodeProto, slot: number, name: string): void {
    const inputs = (node.input ??= []);
    const current = inputs[slot];
    if (current) this.uses.set(current, (this.uses.get(current) ?? 1) - 1);
    this.uses.set(name, (this.uses.get(name) ?? 0) + 1);
    inputs[slot] = name;
  }

  /** Like `write`, for any element type `makeTensor` accepts. */
  writeTyped(node: NodeProto, slot: number, dataType: number, dims: readonly number[], data: TensorInput, baseName: string): string {
    const inputs = (node.input ??= []);
    const current = inputs[slot];
    const ownsCurrent = current !== undefined && current !== '' && this.inits.has(current) && (this.uses.get(current) ?? 0) === 1;
    const name = ownsCurrent ? current : this.names.fresh(baseName);
    const tensor = makeTensor(name, dataType, dims, data);
    if (ownsCurrent) {
      const list = this.graph.initializer ?? [];
      const index = list.findIndex((t) => t.name === name);
      list[index] = tensor;
    } else {
      if (current) this.uses.set(current, (this.uses.get(current) ?? 1) - 1);
      (this.graph.initializer ??= []).push(tensor);
      this.uses.set(name, 1);
    }
    this.inits.set(name, tensor);
    while (inputs.length <= slot) inputs.push('');
    inputs[slot] = name;
    return name;
  }
}

/** Product of dims (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
