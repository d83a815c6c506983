/**
 * `inspect`: a plain report of what a model is — header, opsets, inputs and outputs,
 * operators, parameters, metadata and validation findings. Pure over the decoded
 * model (plus the file size); the CLI prints it as tables or JSON.
 */
import { EdgevolveError } from '../errors/index.ts';
import { readModelFile } from './codec.ts';
import { dataTypeName, rawByteLength } from './dtype.ts';
import { int64ToNumberClamped } from './int64.ts';
import { isExternal, tensorDims } from './tensor.ts';
import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto } from './types.ts';
import { DataType } from './types.ts';
import type { OnnxLimits } from './limits.ts';
import { validateModel, type Finding } from './validate.ts';

/** A dimension: its size, its symbolic name, or null when the model leaves it unknown. */
export type InspectDim = number | string | null;

export interface InspectValue {
  readonly name: string;
  /** `tensor`, `sequence(tensor)`, `map(STRING,tensor)`, `optional(tensor)`, `sparse_tensor`, or `unknown`. */
  readonly kind: string;
  /** Element type of the (innermost) tensor, e.g. `FLOAT`; null when not given. */
  readonly elementType: string | null;
  /** null when the model declares no shape (rank unknown). */
  readonly shape: InspectDim[] | null;
}

export interface InspectParameters {
  /** Tensors counted: initializers (sparse ones by their stored values), Constant node values, in all graphs. */
  readonly tensors: number;
  readonly elements: number;
  readonly bytes: number;
  /** Of which stored in external data files. */
  readonly externalTensors: number;
  readonly externalBytes: number;
  readonly byElementType: readonly { elementType: string; tensors: number; elements: number; bytes: number }[];
}

/** One parameter tensor: an initializer or the value of a Constant node (named by its output). */
export interface InspectTensor {
  readonly name: string;
  readonly source: 'initializer' | 'constant';
  readonly elementType: string;
  readonly shape: number[];
  readonly elements: number;
  readonly bytes: number;
  readonly external: boolean;
}

export interface InspectReport {
  readonly file: { readonly path: string; readonly bytes: number };
  readonly irVersion: number;
  readonly producer: { readonly name: string; readonly version: string };
  readonly domain: string;
  readonly modelVersion: number;
  readonly opsetImports: readonly { domain: string; version: number }[];
  readonly graph: {
    readonly name: string;
    /** Nodes of the main graph. */
    readonly nodes: number;
    /** Nodes of the main graph and of every subgraph (If/Loop/Scan bodies). */
    readonly nodesIncludingSubgraphs: number;
    readonly subgraphs: number;
    readonly initializers: number;
  };
  readonly inputs: readonly InspectValue[];
  readonly outputs: readonly InspectValue[];
  /** Operator counts over all graphs, most frequent first; non-default domains qualified (`com.microsoft.FusedConv`). */
  readonly ops: readonly { op: string; count: number }[];
  readonly functions: readonly { domain: string; name: string; nodes: number }[];
  readonly parameters: InspectParameters;
  /** The largest parameter tensors by bytes, initializers and Constant values alike (exporters such as Paddle2ONNX keep every weight in Constant nodes). */
  readonly largestTensors: readonly InspectTensor[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly findings: readonly Finding[];
}

export interface InspectOptions {
  readonly path: string;
  readonly fileBytes: number;
  readonly findings: readonly Finding[];
  /** How many tensors `largestTensors` lists. Default 10. */
  readonly largest?: number;
}

/**
 * Reads, decodes, validates and reports on a model file. A file that is not an ONNX
 * model at all (empty, truncated, corrupted, not protobuf) is an EdgevolveError;
 * a model that decodes but is structurally wrong gets a report with findings.
 */
export async function inspectFile(file: string, opts: { limits?: Partial<OnnxLimits>; largest?: number } = {}): Promise<InspectReport> {
  const { model, bytes, baseDir } = await readModelFile(file, opts.limits === undefined ? {} : { limits: opts.limits });
  // Protobuf has no magic number: arbitrary bytes can decode as a message made only of
  // unknown fields. A model with none of the fields every ONNX writer sets is not one.
  if (!model.graph && (model.opsetImport ?? []).length === 0 && int64ToNumberClamped(model.irVersion) === 0) {
    throw new EdgevolveError('E_ONNX_DECODE', `${file}: not an ONNX model: no ir_version, opset_import or graph`, {
      context: { path: file, size: bytes.length },
    });
  }
  const findings = validateModel(model, { baseDir, ...(opts.limits === undefined ? {} : { limits: opts.limits }) });
  return inspectModel(model, { path: file, fileBytes: bytes.length, findings, ...(opts.largest === undefined ? {} : { largest: opts.largest }) });
}

/** Builds the report of a decoded model. */
export function inspectModel(model: ModelProto, options: InspectOptions): InspectReport {
  const graph = model.graph ?? {};
  const graphs = collectGraphs(graph);
  const ops = new Map<string, number>();
  let nodesIncludingSubgraphs = 0;
  const params = new ParameterTally();
  const tensors: InspectTensor[] = [];
  for (const g of graphs) {
    for (const node of g.node ?? []) {
      nodesIncludingSubgraphs++;
      const op = qualifiedOp(node);
      ops.set(op, (ops.get(op) ?? 0) + 1);
      if (node.opType === 'Constant' && isDefaultDomain(node.domain)) {
        const constant = params.addConstant(node);
        if (constant !== undefined) tensors.push(constant);
      }
    }
    for (const t of g.initializer ?? []) tensors.push(params.addTensor(t, t.name ?? '', 'initializer'));
    for (const s of g.sparseInitializer ?? []) if (s.values) tensors.push(params.addTensor(s.values, s.values.name ?? '', 'initializer'));
  }
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const largest = options.largest ?? 10;
  return {
    file: { path: options.path, bytes: options.fileBytes },
    irVersion: int64ToNumberClamped(model.irVersion),
    producer: { name: model.producerName ?? '', version: model.producerVersion ?? '' },
    domain: model.domain ?? '',
    modelVersion: int64ToNumberClamped(model.modelVersion),
    opsetImports: (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: int64ToNumberClamped(o.version) })),
    graph: {
      name: graph.name ?? '',
      nodes: graph.node?.length ?? 0,
      nodesIncludingSubgraphs,
      subgraphs: graphs.length - 1,
      initializers: graph.initializer?.length ?? 0,
    },
    // Inputs that carry an initializer are defaults a caller may override (IR < 4 lists
    // every weight there); they are parameters, not inputs a caller must feed.
    inputs: (graph.input ?? []).filter((v) => !initializerNames.has(v.name ?? '')).map(describeValue),
    outputs: (graph.output ?? []).map(describeValue),
    ops: [...ops].map(([op, count]) => ({ op, count })).sort((a, b) => b.count - a.count || compareStrings(a.op, b.op)),
    functions: (model.functions ?? []).map((f) => ({ domain: f.domain ?? '', name: f.name ?? '', nodes: f.node?.length ?? 0 })),
    parameters: params.result(),
    largestTensors: tensors.sort((a, b) => b.bytes - a.bytes || compareStrings(a.name, b.name)).slice(0, largest),
    metadata: Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    findings: options.findings,
  };
}

/** The graph and every subgraph in its attributes, depth first (decode bounds the depth). */
function collectGraphs(root: GraphProto): GraphProto[] {
  const out: GraphProto[] = [];
  const stack: GraphProto[] = [root];
  while (stack.length > 0) {
    const g = stack.pop()!;
    out.push(g);
    for (const node of g.node ?? []) {
      for (const attr of node.attribute ?? []) {
        if (attr.g) stack.push(attr.g);
        for (const sub of attr.graphs ?? []) stack.push(sub);
      }
    }
  }
  return out;
}

function isDefaultDomain(domain: string | undefined): boolean {
  return domain === undefined || domain === '' || domain === 'ai.onnx';
}

function qualifiedOp(node: NodeProto): string {
  const op = node.opType ?? '';
  return isDefaultDomain(node.domain) ? op : `${node.domain}.${op}`;
}

class ParameterTally {
  #tensors = 0;
  #elements = 0;
  #bytes = 0;
  #externalTensors = 0;
  #externalBytes = 0;
  readonly #byType = new Map<number, { tensors: number; elements: number; bytes: number }>();

  addTensor(t: TensorProto, name: string, source: InspectTensor['source']): InspectTensor {
    const dataType = t.dataType ?? 0;
    const shape = tensorDims(t);
    const elements = shape.reduce((n, d) => n * d, 1);
    // STRING has no fixed width: count the bytes actually stored.
    const bytes = rawByteLength(dataType, elements) ?? (t.stringData ?? []).reduce((n, s) => n + s.length, 0);
    const external = isExternal(t);
    this.add(dataType, elements, bytes, external);
    return { name, source, elementType: dataTypeName(dataType), shape, elements, bytes, external };
  }

  /** Constant's value comes in one of several attributes (ONNX Constant-13+); tensor values are returned for the largest-tensors list. */
  addConstant(node: NodeProto): InspectTensor | undefined {
    const name = node.output?.[0] ?? node.name ?? '';
    let tensor: InspectTensor | undefined;
    for (const attr of node.attribute ?? []) tensor ??= this.addConstantAttribute(attr, name);
    return tensor;
  }

  private addConstantAttribute(attr: AttributeProto, name: string): InspectTensor | undefined {
    switch (attr.name ?? '') {
      case 'value':
        return attr.t ? this.addTensor(attr.t, name, 'constant') : undefined;
      case 'sparse_value':
        return attr.sparseTensor?.values ? this.addTensor(attr.sparseTensor.values, name, 'constant') : undefined;
      case 'value_float':
        this.add(DataType.FLOAT, 1, 4, false);
        return undefined;
      case 'value_floats':
        this.add(DataType.FLOAT, attr.floats?.length ?? 0, 4 * (attr.floats?.length ?? 0), false);
        return undefined;
      case 'value_int':
        this.add(DataType.INT64, 1, 8, false);
        return undefined;
      case 'value_ints':
        this.add(DataType.INT64, attr.ints?.length ?? 0, 8 * (attr.ints?.length ?? 0), false);
        return undefined;
      case 'value_string':
        this.add(DataType.STRING, 1, attr.s?.length ?? 0, false);
        return undefined;
      case 'value_strings':
        this.add(DataType.STRING, attr.strings?.length ?? 0, (attr.strings ?? []).reduce((n, s) => n + s.length, 0), false);
        return undefined;
      default:
        return undefined;
    }
  }

  private add(dataType: number, elements: number, bytes: number, external: boolean): void {
    this.#tensors++;
    this.#elements += elements;
    this.#bytes += bytes;
    if (external) {
      this.#externalTensors++;
      this.#externalBytes += bytes;
    }
    const entry = this.#byType.get(dataType) ?? { tensors: 0, elements: 0, bytes: 0 };
    entry.tensors++;
    entry.elements += elements;
    entry.bytes += bytes;
    this.#byType.set(dataType, entry);
  }

  result(): InspectParameters {
    return {
      tensors: this.#tensors,
      elements: this.#elements,
      bytes: this.#bytes,
      externalTensors: this.#externalTensors,
      externalBytes: this.#externalBytes,
      byElementType: [...this.#byType]
        .map(([dataType, e]) => ({ elementType: dataTypeName(dataType), ...e }))
        .sort((a, b) => b.bytes - a.bytes || compareStrings(a.elementType, b.elementType)),
    };
  }
}

function describeValue(v: ValueInfoProto): InspectValue {
  const { kind, elementType, shape } = describeType(v.type);
  return { name: v.name ?? '', kind, elementType, shape };
}

function describeType(type: TypeProto | null | undefined): { kind: string; elementType: string | null; shape: InspectDim[] | null } {
  if (!type) return { kind: 'unknown', elementType: null, shape: null };
  if (type.tensorType) {
    return { kind: 'tensor', elementType: elementTypeOf(type.tensorType.elemType), shape: describeShape(type.tensorType.shape) };
  }
  if (type.sparseTensorType) {
    return { kind: 'sparse_tensor', elementType: elementTypeOf(type.sparseTensorType.elemType), shape: describeShape(type.sparseTensorType.shape) };
  }
  if (type.sequenceType) {
    const inner = describeType(type.sequenceType.elemType);
    return { ...inner, kind: `sequence(${inner.kind})` };
  }
  if (type.optionalType) {
    const inner = describeType(type.optionalType.elemType);
    return { ...inner, kind: `optional(${inner.kind})` };
  }
  if (type.mapType) {
    const inner = describeType(type.mapType.valueType);
    return { ...inner, kind: `map(${dataTypeName(type.mapType.keyType ?? 0)},${inner.kind})` };
  }
  return { kind: 'unknown', elementType: null, shape: null };
}

function elementTypeOf(elemType: number | undefined): string | null {
  return elemType === undefined || elemType === 0 ? null : dataTypeName(elemType);
}

function describeShape(shape: TensorShapeProto | null | undefined): InspectDim[] | null {
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => {
    // Decoded messages carry defaults on their prototype (dimValue reads 0 when unset):
    // only an own property says the field was present.
    if (Object.hasOwn(d, 'dimValue') && d.dimValue !== undefined && d.dimValue !== null) return int64ToNumberClamped(d.dimValue);
    if (Object.hasOwn(d, 'dimParam') && d.dimParam) return d.dimParam;
    return null;
  });
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
