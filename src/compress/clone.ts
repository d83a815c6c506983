/**
 * Copy-on-write support for pure passes: `cloneModel` copies the structure a pass
 * may edit (graphs, nodes, attributes, value infos, initializer lists and tensor
 * headers) but shares the tensor payloads (`rawData` and typed-field arrays),
 * which passes replace rather than mutate. Copying a 10 MB model costs
 * microseconds per node instead of a 10 MB memcpy.
 *
 * INVARIANT: no pass writes into a tensor payload it did not allocate itself.
 */
import type { AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/types.ts';

// Spreads copy only own properties: on decoded protobufjs messages that is exactly
// the fields the file set, so a clone re-encodes to the same bytes (defaults living
// on the prototype are not turned into explicitly written zero values).

export function cloneModel(model: ModelProto): ModelProto {
  return {
    ...model,
    opsetImport: (model.opsetImport ?? []).map((o) => ({ ...o })),
    graph: model.graph ? cloneGraph(model.graph) : model.graph,
    metadataProps: (model.metadataProps ?? []).map((p) => ({ ...p })),
    functions: (model.functions ?? []).map(cloneFunction),
  };
}

export function cloneGraph(graph: GraphProto): GraphProto {
  return {
    ...graph,
    node: (graph.node ?? []).map(cloneNode),
    initializer: (graph.initializer ?? []).map(cloneTensorHeader),
    input: (graph.input ?? []).map(cloneValueInfo),
    output: (graph.output ?? []).map(cloneValueInfo),
    valueInfo: (graph.valueInfo ?? []).map(cloneValueInfo),
  };
}

export function cloneNode(node: NodeProto): NodeProto {
  return {
    ...node,
    input: [...(node.input ?? [])],
    output: [...(node.output ?? [])],
    attribute: (node.attribute ?? []).map(cloneAttribute),
  };
}

function cloneAttribute(attr: AttributeProto): AttributeProto {
  const copy: AttributeProto = { ...attr };
  if (attr.t) copy.t = cloneTensorHeader(attr.t);
  if (attr.g) copy.g = cloneGraph(attr.g);
  if (attr.floats) copy.floats = [...attr.floats];
  if (attr.ints) copy.ints = [...attr.ints];
  if (attr.tensors) copy.tensors = attr.tensors.map(cloneTensorHeader);
  if (attr.graphs) copy.graphs = attr.graphs.map(cloneGraph);
  return copy;
}

/** A new TensorProto object whose payload arrays are shared with `t`. */
export function cloneTensorHeader(t: TensorProto): TensorProto {
  return { ...t, dims: [...(t.dims ?? [])] };
}

function cloneValueInfo(v: ValueInfoProto): ValueInfoProto {
  // Types are replaced wholesale by passes that change them, never edited in place.
  return { ...v };
}

function cloneFunction(f: FunctionProto): FunctionProto {
  return { ...f, node: (f.node ?? []).map(cloneNode) };
}
