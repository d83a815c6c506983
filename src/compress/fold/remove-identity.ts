/**
 * Identity and inference-mode Dropout removal, and dead-node elimination.
 */
import { eliminateDeadNodes, removeUnusedInitializers, renameValue, rewireConsumers } from '../../onnx/index.ts';
import type { GraphProto, ModelProto, NodeProto } from '../../onnx/index.ts';
import type { Change } from '../pass.ts';
import { dropStaleValueInfo, initializerMap, useCounts } from './graph-util.ts';

/**
 * True when the node passes its first input through unchanged at inference: Identity,
 * or a Dropout whose mask output nobody reads and whose training_mode (opset ≥ 12) is
 * absent or a constant false.
 */
function isPassThrough(graph: GraphProto, node: NodeProto, uses: ReadonlyMap<string, number>): boolean {
  if ((node.domain ?? '') !== '') return false;
  if (node.opType === 'Identity') return (node.input?.length ?? 0) === 1;
  if (node.opType !== 'Dropout') return false;
  const mask = node.output?.[1];
  if (mask && (uses.get(mask) ?? 0) > 0) return false;
  const training = node.input?.[2];
  if (!training) return true;
  const t = initializerMap(graph).get(training);
  const raw = t?.rawData;
  if (t === undefined) return false;
  if (raw && raw.length > 0) return raw.every((b) => b === 0);
  return (t.int32Data ?? []).every((v) => v === 0);
}

/**
 * Removes pass-through nodes, rewiring their readers to the input. When the output is
 * a graph output the interface name must survive: the input's producer is renamed to
 * it when nothing else pins the input's name; otherwise the node stays.
 */
export function removeIdentities(model: ModelProto): Change[] {
  const graph = model.graph;
  if (!graph) return [];
  const changes: Change[] = [];
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const inputs = new Set((graph.input ?? []).map((o) => o.name ?? ''));
  for (const node of [...(graph.node ?? [])]) {
    if (node.opType !== 'Identity' && node.opType !== 'Dropout') continue;
    if (!isPassThrough(graph, node, useCounts(graph))) continue;
    const from = node.output?.[0];
    const to = node.input?.[0];
    if (!from || !to) continue;
    if (!outputs.has(from)) {
      graph.node = (graph.node ?? []).filter((n) => n !== node);
      rewireConsumers(graph, from, to);
    } else {
      const producedByNode = (graph.node ?? []).some((n) => n !== node && (n.output ?? []).includes(to));
      if (!producedByNode || outputs.has(to) || inputs.has(to)) continue;
      graph.node = (graph.node ?? []).filter((n) => n !== node);
      renameValue(graph, to, from);
    }
    changes.push({ target: node.name || from, action: 'removed', detail: `${node.opType} (pass-through at inference)` });
  }
  if (changes.length > 0) dropStaleValueInfo(graph);
  return changes;
}

/** Removes nodes that reach no graph output and initializers nothing reads. */
export function removeDeadNodes(model: ModelProto): Change[] {
  const graph = model.graph;
  if (!graph) return [];
  const before = new Set(graph.node ?? []);
  const removedCount = eliminateDeadNodes(graph);
  const changes: Change[] = [];
  if (removedCount > 0) {
    const kept = new Set(graph.node ?? []);
    for (const n of before) if (!kept.has(n)) changes.push({ target: n.name || (n.output?.[0] ?? ''), action: 'removed', detail: `dead ${n.opType ?? ''} node` });
  }
  for (const name of removeUnusedInitializers(graph)) changes.push({ target: name, action: 'removed', detail: 'unused initializer' });
  if (changes.length > 0) dropStaleValueInfo(graph);
  return changes;
}
