/**
 * Scoping of values across subgraphs: which names a graph defines, which it reads
 * from enclosing graphs, and what a node therefore depends on.
 */
import type { GraphProto, NodeProto } from './types.ts';

/** The subgraphs held in a node's attributes (If then/else, Loop/Scan body, ...). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs ?? []) out.push(g);
  }
  return out;
}

/** Names a graph defines itself: its inputs, initializers (dense and sparse) and node outputs. */
export function definedNames(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const v of graph.input ?? []) if (v.name) names.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) names.add(t.name);
  for (const s of graph.sparseInitializer ?? []) if (s.values?.name) names.add(s.values.name);
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) names.add(o);
  return names;
}

/**
 * Names a subgraph uses (at any depth) but does not define: its implicit inputs from
 * enclosing scopes. Computed afresh on each call (not cached) so edits never leave it stale.
 */
export function outerReferences(graph: GraphProto): ReadonlySet<string> {
  const defined = definedNames(graph);
  const refs = new Set<string>();
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) if (i && !defined.has(i)) refs.add(i);
    for (const g of subgraphsOf(n)) for (const r of outerReferences(g)) if (!defined.has(r)) refs.add(r);
  }
  for (const o of graph.output ?? []) if (o.name && !defined.has(o.name)) refs.add(o.name);
  return refs;
}

/**
 * Every value a node reads: its explicit inputs (empty names, meaning an omitted
 * optional input, are skipped) and the outer-scope values its subgraphs use.
 */
export function nodeInputs(node: NodeProto): string[] {
  const out = (node.input ?? []).filter((i) => i !== '');
  const subgraphs = subgraphsOf(node);
  if (subgraphs.length === 0) return out;
  const seen = new Set(out);
  for (const g of subgraphs) {
    for (const r of outerReferences(g)) {
      if (!seen.has(r)) {
        seen.add(r);
        out.push(r);
      }
    }
  }
  return out;
}

/** A readable label for a node in messages: its name, else op type and index. */
export function nodeLabel(node: NodeProto, index?: number): string {
  if (node.name) return node.name;
  return index === undefined ? `<${node.opType ?? '?'}>` : `<${node.opType ?? '?'} #${index}>`;
}

