/**
 * Graph edits, in place. Each keeps the graph well-formed or throws E_ONNX_GRAPH_EDIT
 * before changing anything.
 */
import { EdgevolveError } from '../errors/index.ts';
import { nodeInputs, nodeLabel, subgraphsOf, definedNames } from './graph-scope.ts';
import type { GraphProto, NodeProto, TensorProto } from './types.ts';

function editError(message: string, context: Record<string, unknown> = {}): EdgevolveError {
  return new EdgevolveError('E_ONNX_GRAPH_EDIT', message, { context });
}

function nodesOf(graph: GraphProto): NodeProto[] {
  return (graph.node ??= []);
}

function positionOf(graph: GraphProto, node: NodeProto): number {
  const index = nodesOf(graph).indexOf(node);
  if (index < 0) throw editError(`node ${nodeLabel(node)} is not in graph '${graph.name ?? ''}'`, { node: nodeLabel(node) });
  return index;
}

/**
 * Inserts nodes at a position (0..length) or right after a node of the graph.
 * Returns the index of the first inserted node.
 */
export function insertNodes(graph: GraphProto, at: number | { after: NodeProto } | NodeProto, nodes: readonly NodeProto[]): number {
  const list = nodesOf(graph);
  let index: number;
  if (typeof at === 'number') index = at;
  else if ('after' in at && at.after !== undefined && typeof at.after === 'object') index = positionOf(graph, at.after) + 1;
  else index = positionOf(graph, at as NodeProto) + 1;
  if (!Number.isInteger(index) || index < 0 || index > list.length) {
    throw editError(`insert position ${index} is outside 0..${list.length}`, { index });
  }
  list.splice(index, 0, ...nodes);
  return index;
}

/** Replaces one node by zero or more nodes at the same position. */
export function replaceNode(graph: GraphProto, node: NodeProto, replacement: NodeProto | readonly NodeProto[]): void {
  const index = positionOf(graph, node);
  const nodes = Array.isArray(replacement) ? (replacement as readonly NodeProto[]) : [replacement as NodeProto];
  nodesOf(graph).splice(index, 1, ...nodes);
}

/** Removes a node (its outputs are left without a producer: rewire consumers first). */
export function removeNode(graph: GraphProto, node: NodeProto): void {
  nodesOf(graph).splice(positionOf(graph, node), 1);
}

/** Adds an initializer; its name must be new in the graph. */
export function addInitializer(graph: GraphProto, tensor: TensorProto): void {
  const name = tensor.name ?? '';
  if (name === '') throw editError('an initializer needs a name');
  if (definedNames(graph).has(name)) throw editError(`cannot add initializer '${name}': the name is already defined in graph '${graph.name ?? ''}'`, { name });
  (graph.initializer ??= []).push(tensor);
}

/** Removes the initializer named `name`; returns whether there was one. */
export function removeInitializer(graph: GraphProto, name: string): boolean {
  const list = graph.initializer ?? [];
  const index = list.findIndex((t) => t.name === name);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}

/** Replaces the initializer with the same name as `tensor`; throws when there is none. */
export function replaceInitializer(graph: GraphProto, tensor: TensorProto): void {
  const list = graph.initializer ?? [];
  const index = list.findIndex((t) => t.name === tensor.name);
  if (index < 0) throw editError(`no initializer '${tensor.name ?? ''}' to replace in graph '${graph.name ?? ''}'`, { name: tensor.name ?? '' });
  list[index] = tensor;
}

/** Rewrites uses of `from` to `to` in a subgraph, unless the subgraph defines `from` itself (shadowing). */
function rewireInSubgraph(graph: GraphProto, from: string, to: string): void {
  if (definedNames(graph).has(from)) return;
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((i) => (i === from ? to : i));
    for (const g of subgraphsOf(n)) rewireInSubgraph(g, from, to);
  }
  for (const o of graph.output ?? []) if (o.name === from) o.name = to;
}

/**
 * Makes every reader of `from` read `to` instead: node inputs and outer-scope uses in
 * subgraphs, and graph outputs when `graphOutputs` is set (off by default: an output
 * name is part of the model's interface). Returns the number of nodes changed.
 */
export function rewireConsumers(graph: GraphProto, from: string, to: string, opts: { graphOutputs?: boolean } = {}): number {
  let changed = 0;
  for (const n of graph.node ?? []) {
    const reads = nodeInputs(n).includes(from);
    if (!reads) continue;
    changed += 1;
    n.input = (n.input ?? []).map((i) => (i === from ? to : i));
    for (const g of subgraphsOf(n)) rewireInSubgraph(g, from, to);
  }
  if (opts.graphOutputs === true) for (const o of graph.output ?? []) if (o.name === from) o.name = to;
  return changed;
}

/**
 * Renames a value everywhere in the graph: its producer (node output, graph input or
 * initializer), every reader (subgraphs included), graph outputs and value_info.
 * `to` must not be in use.
 */
export function renameValue(graph: GraphProto, from: string, to: string): void {
  if (from === to) return;
  if (to === '') throw editError('cannot rename a value to the empty name');
  if (definedNames(graph).has(to)) throw editError(`cannot rename '${from}' to '${to}': '${to}' is already defined`, { from, to });
  for (const n of graph.node ?? []) n.output = (n.output ?? []).map((o) => (o === from ? to : o));
  for (const v of graph.input ?? []) if (v.name === from) v.name = to;
  for (const t of graph.initializer ?? []) if (t.name === from) t.name = to;
  for (const s of graph.sparseInitializer ?? []) if (s.values && s.values.name === from) s.values.name = to;
  for (const v of graph.valueInfo ?? []) if (v.name === from) v.name = to;
  rewireConsumers(graph, from, to, { graphOutputs: true });
}

/**
 * Removes nodes whose outputs reach no graph output, directly or through other nodes
 * or subgraph outer-scope uses; then does the same inside the kept nodes' subgraphs.
 * Returns the number of nodes removed (at all depths).
 */
export function eliminateDeadNodes(graph: GraphProto): number {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) if (o) producer.set(o, i);
  });
  const live = new Uint8Array(nodes.length);
  const work: string[] = (graph.output ?? []).map((o) => o.name ?? '').filter((n) => n !== '');
  const seen = new Set<string>(work);
  while (work.length > 0) {
    const value = work.pop()!;
    const p = producer.get(value);
    if (p === undefined || live[p] === 1) continue;
    live[p] = 1;
    for (const i of nodeInputs(nodes[p]!)) {
      if (!seen.has(i)) {
        seen.add(i);
        work.push(i);
      }
    }
  }
  const kept = nodes.filter((_, i) => live[i] === 1);
  let removed = nodes.length - kept.length;
  graph.node = kept;
  for (const n of kept) for (const g of subgraphsOf(n)) removed += eliminateDeadNodes(g);
  return removed;
}

/**
 * Removes initializers no node reads (subgraphs included) and no graph output names,
 * in this graph and, by the same rule, in every subgraph. Initializers that are also
 * graph inputs stay: they are part of the interface (a caller may override them).
 * Returns the names removed.
 */
export function removeUnusedInitializers(graph: GraphProto): string[] {
  const used = new Set<string>();
  for (const n of graph.node ?? []) for (const i of nodeInputs(n)) used.add(i);
  for (const o of graph.output ?? []) if (o.name) used.add(o.name);
  const inputs = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const removed: string[] = [];
  graph.initializer = (graph.initializer ?? []).filter((t) => {
    const name = t.name ?? '';
    if (used.has(name) || inputs.has(name)) return true;
    removed.push(name);
    return false;
  });
  for (const n of graph.node ?? []) for (const g of subgraphsOf(n)) removed.push(...removeUnusedInitializers(g));
  return removed;
}
