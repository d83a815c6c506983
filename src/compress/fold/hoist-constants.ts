/**
 * Constant node → initializer. Exporters such as Paddle2ONNX keep every weight in a
 * Constant node (opset 9/11 PaddleOCR models have no initializers at all); the
 * quantizer, BN folding and the pruners look for weights among initializers, so
 * this runs first. Only the top-level graph is rewritten; Constants inside
 * subgraphs stay (an initializer there would change the subgraph's scope).
 */
import { AttributeType, DataType, getAttribute, makeTensor, int64ToBigInt, int64ToNumber } from '../../onnx/index.ts';
import type { AttributeProto, ModelProto, TensorProto } from '../../onnx/index.ts';
import type { Change } from '../pass.ts';
import { dropStaleValueInfo } from './graph-util.ts';

/** The tensor a Constant node produces, named `name`, or undefined for forms we leave alone (sparse_value). */
function constantTensor(attribute: AttributeProto | undefined, name: string): TensorProto | undefined {
  if (attribute === undefined) return undefined;
  switch (attribute.name ?? '') {
    case 'value':
      return attribute.t ? { ...attribute.t, name, dims: [...(attribute.t.dims ?? [])] } : undefined;
    case 'value_float':
      return makeTensor(name, DataType.FLOAT, [], [attribute.f ?? 0]);
    case 'value_floats':
      return makeTensor(name, DataType.FLOAT, [attribute.floats?.length ?? 0], attribute.floats ?? []);
    case 'value_int':
      return makeTensor(name, DataType.INT64, [], [int64ToBigInt(attribute.i ?? 0)]);
    case 'value_ints':
      return makeTensor(name, DataType.INT64, [attribute.ints?.length ?? 0], (attribute.ints ?? []).map((v) => int64ToBigInt(v)));
    case 'value_string':
      return makeTensor(name, DataType.STRING, [], [new TextDecoder().decode(attribute.s ?? new Uint8Array(0))]);
    case 'value_strings':
      return makeTensor(name, DataType.STRING, [attribute.strings?.length ?? 0], (attribute.strings ?? []).map((s) => new TextDecoder().decode(s)));
    default:
      return undefined;
  }
}

/** The one value-carrying attribute of a Constant node (by spec it has exactly one). */
function valueAttribute(node: { attribute?: AttributeProto[] | null }): AttributeProto | undefined {
  const attrs = node.attribute ?? [];
  if (attrs.length !== 1) return undefined;
  const a = attrs[0]!;
  if (a.type === AttributeType.SPARSE_TENSOR || a.name === 'sparse_value') return undefined;
  return a;
}

/**
 * Moves every top-level Constant node's value into an initializer of the same name.
 * Constants whose output is a graph output stay nodes: an output that is an
 * initializer is legal but trips some runtimes. In place; returns the changes.
 */
export function hoistConstants(model: ModelProto): Change[] {
  const graph = model.graph;
  if (!graph) return [];
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  let hoisted = 0;
  const kept = [];
  for (const node of graph.node ?? []) {
    const out = node.output?.[0];
    if (node.opType !== 'Constant' || (node.domain ?? '') !== '' || !out || outputs.has(out)) {
      kept.push(node);
      continue;
    }
    const tensor = constantTensor(valueAttribute(node) ?? getAttribute(node, 'value'), out);
    if (tensor === undefined) {
      kept.push(node);
      continue;
    }
    (graph.initializer ??= []).push(tensor);
    hoisted += 1;
  }
  if (hoisted === 0) return [];
  // One summary line: exporters like Paddle2ONNX emit hundreds of these and a row each would bury the report.
  const changes: Change[] = [{ target: `${hoisted} Constant node(s)`, action: 'hoisted', detail: 'Constant → initializer of the same name', stats: { count: hoisted } }];
  graph.node = kept;
  // Before IR version 4 every initializer also had to be a graph input; moving to IR 4 avoids adding inputs.
  if (int64ToNumber(model.irVersion ?? 0) < 4) model.irVersion = 4;
  dropStaleValueInfo(graph);
  return changes;
}

