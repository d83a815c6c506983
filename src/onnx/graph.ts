/**
 * Graph queries: producers and consumers by value name, topological order, outer-scope
 * references of subgraphs, unique names, and type lookup. Subgraphs (If/Loop/Scan
 * bodies, in attribute `g` and `graphs`) are walked wherever they can hide a use.
 */
import { EdgevolveError } from '../errors/index.ts';
import { int64ToNumberClamped } from './int64.ts';
import { nodeInputs, nodeLabel, subgraphsOf } from './graph-scope.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from './types.ts';

export { subgraphsOf, definedNames, outerReferences, nodeInputs, nodeLabel } from './graph-scope.ts';

/**
 * An index over one graph (not its subgraphs' own values). Build it after edits; it
 * does not follow later changes. `consumers` includes nodes whose subgraphs read the
 * value from the outer scope.
 */
export class GraphIndex {
  private readonly producers = new Map<string, NodeProto>();
  private readonly consumerMap = new Map<string, NodeProto[]>();
  private readonly initializers = new Map<string, TensorProto>();
  private readonly inputs = new Set<string>();
  private readonly outputs = new Set<string>();
  private readonly positions = new Map<NodeProto, number>();

  constructor(readonly graph: GraphProto) {
    (graph.node ?? []).forEach((node, index) => {
      this.positions.set(node, index);
      for (const o of node.output ?? []) if (o) this.producers.set(o, node);
      for (const i of nodeInputs(node)) {
        let list = this.consumerMap.get(i);
        if (list === undefined) this.consumerMap.set(i, (list = []));
        if (list[list.length - 1] !== node) list.push(node);
      }
    });
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    for (const v of graph.input ?? []) if (v.name) this.inputs.add(v.name);
    for (const v of graph.output ?? []) if (v.name) this.outputs.add(v.name);
  }

  /** The node that outputs `value`, or undefined (graph input, initializer, outer scope). */
  producer(value: string): NodeProto | undefined {
    return this.producers.get(value);
  }

  /** Nodes that read `value`, in graph order, each once. */
  consumers(value: string): readonly NodeProto[] {
    return this.consumerMap.get(value) ?? [];
  }

  initializer(name: string): TensorProto | undefined {
    return this.initializers.get(name);
  }

  isGraphInput(name: string): boolean {
    return this.inputs.has(name);
  }

  isGraphOutput(name: string): boolean {
    return this.outputs.has(name);
  }

  /** The node's position in graph.node, or undefined if it is not in this graph. */
  indexOf(node: NodeProto): number | undefined {
    return this.positions.get(node);
  }
}

/** A binary min-heap of node positions: Kahn's algorithm that keeps the original order where it can. */
class MinHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= value) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = value;
  }
  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]! < a[l]! ? r : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/**
 * The graph's nodes in a topological order, stable (already-sorted graphs come back
 * unchanged). A node depends on the producers of its inputs, including values its
 * subgraphs read from the outer scope. Throws E_ONNX_INVALID naming a node on a cycle.
 */
export function topologicalOrder(graph: GraphProto): NodeProto[] {
  const nodes = graph.node ?? [];
  const count = nodes.length;
  const producerIndex = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    for (const o of nodes[i]!.output ?? []) if (o && !producerIndex.has(o)) producerIndex.set(o, i);
  }
  // Edges producer → consumer in flat arrays (CSR below): no per-node arrays or sets, so
  // 100k-node graphs sort without a garbage-collection storm.
  const edgeFrom: number[] = [];
  const edgeTo: number[] = [];
  const pending = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const node = nodes[i]!;
    const firstEdge = edgeFrom.length;
    const inputs = hasSubgraphs(node) ? nodeInputs(node) : (node.input ?? []);
    for (const input of inputs) {
      if (input === '') continue;
      const p = producerIndex.get(input);
      if (p === undefined) continue;
      let duplicate = false;
      for (let e = firstEdge; e < edgeFrom.length; e++) if (edgeFrom[e] === p) duplicate = true;
      if (duplicate) continue;
      edgeFrom.push(p);
      edgeTo.push(i);
      pending[i]! += 1;
    }
  }
  const offsets = new Int32Array(count + 1);
  for (const p of edgeFrom) offsets[p + 1]! += 1;
  for (let i = 0; i < count; i++) offsets[i + 1]! += offsets[i]!;
  const dependents = new Int32Array(edgeFrom.length);
  const fill = offsets.slice(0, count);
  for (let e = 0; e < edgeFrom.length; e++) dependents[fill[edgeFrom[e]!]!++] = edgeTo[e]!;

  const ready = new MinHeap();
  for (let i = 0; i < count; i++) if (pending[i] === 0) ready.push(i);
  const order: NodeProto[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(nodes[i]!);
    for (let e = offsets[i]!; e < offsets[i + 1]!; e++) {
      const d = dependents[e]!;
      pending[d]! -= 1;
      if (pending[d] === 0) ready.push(d);
    }
  }
  if (order.length < count) {
    const onCycle = findNodeOnCycle(pending, edgeFrom, edgeTo);
    const node = nodes[onCycle]!;
    throw new EdgevolveError('E_ONNX_INVALID', `graph '${graph.name ?? ''}' has a cycle through node ${nodeLabel(node, onCycle)}`, {
      context: { graph: graph.name ?? '', node: nodeLabel(node, onCycle), unsorted: count - order.length },
    });
  }
  return order;
}

function hasSubgraphs(node: NodeProto): boolean {
  for (const a of node.attribute ?? []) if (a.g || (a.graphs && a.graphs.length > 0)) return true;
  return false;
}

/** Walks unresolved dependencies from any stuck node until one repeats: that one is on a cycle. */
function findNodeOnCycle(pending: Int32Array, edgeFrom: readonly number[], edgeTo: readonly number[]): number {
  const stuckDependency = new Map<number, number>();
  for (let e = 0; e < edgeTo.length; e++) {
    const to = edgeTo[e]!;
    if (pending[to]! > 0 && pending[edgeFrom[e]!]! > 0 && !stuckDependency.has(to)) stuckDependency.set(to, edgeFrom[e]!);
  }
  let current = pending.findIndex((c) => c > 0);
  const visited = new Set<number>();
  while (!visited.has(current)) {
    visited.add(current);
    const next = stuckDependency.get(current);
    if (next === undefined) break;
    current = next;
  }
  return current;
}

/** Every name used in a graph and all its subgraphs: values, node names, graph names. */
export function collectNames(graph: GraphProto, into: Set<string> = new Set()): Set<string> {
  if (graph.name) into.add(graph.name);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) if (v.name) into.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) into.add(t.name);
  for (const s of graph.sparseInitializer ?? []) if (s.values?.name) into.add(s.values.name);
  for (const n of graph.node ?? []) {
    if (n.name) into.add(n.name);
    for (const v of [...(n.input ?? []), ...(n.output ?? [])]) if (v) into.add(v);
    for (const g of subgraphsOf(n)) collectNames(g, into);
  }
  return into;
}

/** Hands out fresh names for one graph; cheaper than `uniqueName` when making many. */
export class NameScope {
  private readonly used: Set<string>;
  private readonly counters = new Map<string, number>();

  constructor(graph: GraphProto) {
    this.used = collectNames(graph);
  }

  /** `base` if unused, else `base_1`, `base_2`, ...; the name is reserved. */
  fresh(base: string): string {
    let name = base;
    let n = this.counters.get(base) ?? 0;
    while (this.used.has(name)) name = `${base}_${++n}`;
    this.counters.set(base, n);
    this.used.add(name);
    return name;
  }

  reserve(name: string): void {
    this.used.add(name);
  }
}

/** A name not used anywhere in the graph or its subgraphs. */
export function uniqueName(graph: GraphProto, base: string): string {
  return new NameScope(graph).fresh(base);
}

/** A dimension of a declared shape: a number, a symbolic name, or null (unknown). */
export type Dim = number | string | null;

export interface ValueType {
  elemType: number;
  /** null when the rank is unknown. */
  shape: Dim[] | null;
}

function typeOfValueInfo(v: ValueInfoProto): ValueType | undefined {
  const tensorType = v.type?.tensorType ?? v.type?.sparseTensorType;
  if (!tensorType) return undefined;
  const shape = tensorType.shape
    ? (tensorType.shape.dim ?? []).map((d): Dim => {
        if (d.dimParam) return d.dimParam;
        if (d.dimValue !== undefined && d.dimValue !== null && (d.value === 'dimValue' || Object.prototype.hasOwnProperty.call(d, 'dimValue'))) {
          return int64ToNumberClamped(d.dimValue);
        }
        return null;
      })
    : null;
  return { elemType: tensorType.elemType ?? 0, shape };
}

/** The declared type of a value from inputs, outputs, value_info or an initializer; undefined when none declares it. */
export function valueType(graph: GraphProto, name: string): ValueType | undefined {
  for (const list of [graph.input, graph.output, graph.valueInfo]) {
    const v = list?.find((x) => x.name === name);
    if (v !== undefined) {
      const t = typeOfValueInfo(v);
      if (t !== undefined) return t;
    }
  }
  const init = graph.initializer?.find((t) => t.name === name);
  if (init !== undefined) return { elemType: init.dataType ?? 0, shape: (init.dims ?? []).map((d) => int64ToNumberClamped(d)) };
  return undefined;
}

/** The opset version a model imports for `domain` ('' and 'ai.onnx' are the same), or undefined. */
export function opsetVersion(model: ModelProto, domain = ''): number | undefined {
  const want = domain === 'ai.onnx' ? '' : domain;
  for (const o of model.opsetImport ?? []) {
    const d = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    if (d !== want) continue;
    const version = int64ToNumberClamped(o.version);
    if (!Number.isSafeInteger(version)) {
      throw new EdgevolveError('E_ONNX_INVALID', `opset version ${String(o.version)} of domain '${d}' is not a usable number`, { context: { domain: d } });
    }
    return version;
  }
  return undefined;
}

export {
  insertNodes,
  replaceNode,
  removeNode,
  addInitializer,
  removeInitializer,
  replaceInitializer,
  renameValue,
  rewireConsumers,
  eliminateDeadNodes,
  removeUnusedInitializers,
} from './edit.ts';
