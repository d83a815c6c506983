/**
 * Building IR messages (nodes, attributes, value infos, graphs, models) as plain
 * objects, and reading attributes back with their types checked.
 */
import Long from 'long';
import { EdgevolveError } from '../errors/index.ts';
import { int64ToNumber, int64ToNumberClamped } from './int64.ts';
import {
  AttributeType,
  type AttributeProto,
  type GraphProto,
  type Int64,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type TensorProto,
  type TensorShapeDimension,
  type ValueInfoProto,
} from './types.ts';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** An attribute value with its ONNX type chosen explicitly (see `attr`). */
export class TypedAttribute {
  constructor(
    readonly type: AttributeType,
    readonly value: number | bigint | string | readonly number[] | readonly bigint[] | readonly string[] | TensorProto | GraphProto | readonly TensorProto[] | readonly GraphProto[],
  ) {}
}

/**
 * Explicit attribute constructors. JavaScript has one number type, so `attr.float(1)`
 * is how a whole-valued float attribute is written; a plain `1` becomes INT.
 */
export const attr = {
  int: (value: number | bigint) => new TypedAttribute(AttributeType.INT, value),
  ints: (values: readonly number[] | readonly bigint[]) => new TypedAttribute(AttributeType.INTS, values),
  float: (value: number) => new TypedAttribute(AttributeType.FLOAT, value),
  floats: (values: readonly number[]) => new TypedAttribute(AttributeType.FLOATS, values),
  string: (value: string) => new TypedAttribute(AttributeType.STRING, value),
  strings: (values: readonly string[]) => new TypedAttribute(AttributeType.STRINGS, values),
  tensor: (value: TensorProto) => new TypedAttribute(AttributeType.TENSOR, value),
  tensors: (values: readonly TensorProto[]) => new TypedAttribute(AttributeType.TENSORS, values),
  graph: (value: GraphProto) => new TypedAttribute(AttributeType.GRAPH, value),
  graphs: (values: readonly GraphProto[]) => new TypedAttribute(AttributeType.GRAPHS, values),
} as const;

/**
 * An attribute value: a TypedAttribute from `attr`, or a plain value whose type is
 * inferred: integer number or bigint → INT, other number → FLOAT, string → STRING,
 * number[] → INTS if all are integers else FLOATS, string[] → STRINGS, an object with
 * `node` → GRAPH, any other object → TENSOR.
 */
export type AttributeValue = TypedAttribute | number | bigint | string | readonly number[] | readonly string[] | TensorProto | GraphProto;

function toInt64(value: number | bigint, context: string): Int64 {
  if (typeof value === 'bigint') return Long.fromString(value.toString(), false);
  if (!Number.isSafeInteger(value)) throw new EdgevolveError('E_ONNX_INVALID', `${context}: ${value} is not an integer`);
  return value;
}

function isGraphLike(value: object): value is GraphProto {
  return 'node' in value || ('output' in value && !('dataType' in value));
}

/** Makes one AttributeProto. */
export function makeAttribute(name: string, value: AttributeValue): AttributeProto {
  const typed = value instanceof TypedAttribute ? value : inferAttribute(value);
  const a: AttributeProto = { name, type: typed.type };
  const v = typed.value;
  const ctx = `attribute '${name}'`;
  switch (typed.type) {
    case AttributeType.INT:
      a.i = toInt64(v as number | bigint, ctx);
      break;
    case AttributeType.INTS:
      a.ints = (v as readonly (number | bigint)[]).map((x) => toInt64(x, ctx));
      break;
    case AttributeType.FLOAT:
      a.f = v as number;
      break;
    case AttributeType.FLOATS:
      a.floats = [...(v as readonly number[])];
      break;
    case AttributeType.STRING:
      a.s = utf8Encoder.encode(v as string);
      break;
    case AttributeType.STRINGS:
      a.strings = (v as readonly string[]).map((s) => utf8Encoder.encode(s));
      break;
    case AttributeType.TENSOR:
      a.t = v as TensorProto;
      break;
    case AttributeType.TENSORS:
      a.tensors = [...(v as readonly TensorProto[])];
      break;
    case AttributeType.GRAPH:
      a.g = v as GraphProto;
      break;
    case AttributeType.GRAPHS:
      a.graphs = [...(v as readonly GraphProto[])];
      break;
    case AttributeType.UNDEFINED:
    case AttributeType.SPARSE_TENSOR:
    case AttributeType.SPARSE_TENSORS:
    case AttributeType.TYPE_PROTO:
    case AttributeType.TYPE_PROTOS:
      throw new EdgevolveError('E_ONNX_UNSUPPORTED', `${ctx}: attribute type ${typed.type} cannot be built`);
  }
  return a;
}

function inferAttribute(value: Exclude<AttributeValue, TypedAttribute>): TypedAttribute {
  if (typeof value === 'bigint') return attr.int(value);
  if (typeof value === 'number') return Number.isInteger(value) ? attr.int(value) : attr.float(value);
  if (typeof value === 'string') return attr.string(value);
  if (Array.isArray(value)) {
    const items = value as readonly (number | string)[];
    if (items.length > 0 && typeof items[0] === 'string') return attr.strings(items as string[]);
    const numbers = items as readonly number[];
    return numbers.every((x) => Number.isInteger(x)) ? attr.ints(numbers) : attr.floats(numbers);
  }
  const obj = value as TensorProto | GraphProto;
  return isGraphLike(obj) ? attr.graph(obj) : attr.tensor(obj);
}

/** Makes a NodeProto; attributes keep the order of `attrs`. */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, AttributeValue>> = {},
  opts: { name?: string; domain?: string } = {},
): NodeProto {
  const node: NodeProto = { opType, input: [...inputs], output: [...outputs] };
  if (opts.name !== undefined) node.name = opts.name;
  if (opts.domain !== undefined && opts.domain !== '') node.domain = opts.domain;
  const attribute = Object.entries(attrs).map(([name, value]) => makeAttribute(name, value));
  if (attribute.length > 0) node.attribute = attribute;
  return node;
}

/** A dimension: a number is a fixed size, a string a symbolic one, null unknown. */
export type DimSpec = number | string | null;

/** Makes a tensor ValueInfoProto; `shape` null means rank unknown. */
export function makeValueInfo(name: string, elemType: number, shape: readonly DimSpec[] | null): ValueInfoProto {
  const tensorType: { elemType: number; shape?: { dim: TensorShapeDimension[] } } = { elemType };
  if (shape !== null) {
    tensorType.shape = {
      dim: shape.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
    };
  }
  return { name, type: { tensorType } };
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
  initializers?: readonly TensorProto[];
  valueInfo?: readonly ValueInfoProto[];
}

export function makeGraph(spec: GraphSpec): GraphProto {
  const graph: GraphProto = {
    name: spec.name,
    node: [...spec.nodes],
    input: [...spec.inputs],
    output: [...spec.outputs],
    initializer: [...(spec.initializers ?? [])],
  };
  if (spec.valueInfo !== undefined) graph.valueInfo = [...spec.valueInfo];
  return graph;
}

/** IR version 10 (ONNX 1.16) and opset 21: both run on onnxruntime 1.30. */
export const DEFAULT_IR_VERSION = 10;
export const DEFAULT_OPSET = 21;

export function makeModel(spec: {
  graph: GraphProto;
  opsets?: readonly { domain: string; version: number }[];
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
}): ModelProto {
  const opsetImport: OperatorSetIdProto[] = (spec.opsets ?? [{ domain: '', version: DEFAULT_OPSET }]).map((o) => ({ domain: o.domain, version: o.version }));
  const model: ModelProto = { irVersion: spec.irVersion ?? DEFAULT_IR_VERSION, opsetImport, graph: spec.graph };
  model.producerName = spec.producerName ?? 'edgevolve';
  if (spec.producerVersion !== undefined) model.producerVersion = spec.producerVersion;
  return model;
}

// ---------------------------------------------------------------- readers

/** The named attribute of a node, or undefined. */
export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** Which field holds the value: the declared type, or (type UNDEFINED in old models) whichever field is set. */
function attributeType(a: AttributeProto): number {
  if (a.type !== undefined && a.type !== AttributeType.UNDEFINED) return a.type;
  if (a.t) return AttributeType.TENSOR;
  if (a.g) return AttributeType.GRAPH;
  if (a.s && a.s.length > 0) return AttributeType.STRING;
  if (a.ints && a.ints.length > 0) return AttributeType.INTS;
  if (a.floats && a.floats.length > 0) return AttributeType.FLOATS;
  if (a.strings && a.strings.length > 0) return AttributeType.STRINGS;
  if (a.i !== undefined && a.i !== null && int64ToNumberClamped(a.i) !== 0) return AttributeType.INT;
  if (a.f !== undefined && a.f !== 0) return AttributeType.FLOAT;
  return AttributeType.UNDEFINED;
}

function expectType(node: NodeProto, a: AttributeProto, want: readonly number[]): void {
  const have = attributeType(a);
  if (!want.includes(have)) {
    throw new EdgevolveError(
      'E_ONNX_INVALID',
      `node '${node.name ?? ''}' (${node.opType ?? ''}): attribute '${a.name ?? ''}' has type ${have}, expected ${want.join(' or ')}`,
      { context: { node: node.name ?? '', attribute: a.name ?? '', type: have } },
    );
  }
}

function readInt(node: NodeProto, a: AttributeProto, v: Int64 | undefined | null): number {
  try {
    return int64ToNumber(v);
  } catch (err) {
    throw new EdgevolveError('E_ONNX_INVALID', `node '${node.name ?? ''}': attribute '${a.name ?? ''}' is beyond ±2^53`, { cause: err });
  }
}

export function getAttrInt(node: NodeProto, name: string, fallback: number): number;
export function getAttrInt(node: NodeProto, name: string): number | undefined;
export function getAttrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return fallback;
  expectType(node, a, [AttributeType.INT, AttributeType.UNDEFINED]);
  return readInt(node, a, a.i);
}

export function getAttrInts(node: NodeProto, name: string, fallback: number[]): number[];
export function getAttrInts(node: NodeProto, name: string): number[] | undefined;
export function getAttrInts(node: NodeProto, name: string, fallback?: number[]): number[] | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return fallback;
  expectType(node, a, [AttributeType.INTS, AttributeType.UNDEFINED]);
  return (a.ints ?? []).map((v) => readInt(node, a, v));
}

export function getAttrFloat(node: NodeProto, name: string, fallback: number): number;
export function getAttrFloat(node: NodeProto, name: string): number | undefined;
export function getAttrFloat(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return fallback;
  expectType(node, a, [AttributeType.FLOAT, AttributeType.UNDEFINED]);
  return a.f ?? 0;
}

export function getAttrFloats(node: NodeProto, name: string, fallback: number[]): number[];
export function getAttrFloats(node: NodeProto, name: string): number[] | undefined;
export function getAttrFloats(node: NodeProto, name: string, fallback?: number[]): number[] | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return fallback;
  expectType(node, a, [AttributeType.FLOATS, AttributeType.UNDEFINED]);
  return [...(a.floats ?? [])];
}

export function getAttrString(node: NodeProto, name: string, fallback: string): string;
export function getAttrString(node: NodeProto, name: string): string | undefined;
export function getAttrString(node: NodeProto, name: string, fallback?: string): string | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return fallback;
  expectType(node, a, [AttributeType.STRING, AttributeType.UNDEFINED]);
  return utf8Decoder.decode(a.s ?? new Uint8Array(0));
}

export function getAttrStrings(node: NodeProto, name: string): string[] | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return undefined;
  expectType(node, a, [AttributeType.STRINGS, AttributeType.UNDEFINED]);
  return (a.strings ?? []).map((s) => utf8Decoder.decode(s));
}

export function getAttrTensor(node: NodeProto, name: string): TensorProto | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return undefined;
  expectType(node, a, [AttributeType.TENSOR]);
  return a.t ?? undefined;
}

export function getAttrGraph(node: NodeProto, name: string): GraphProto | undefined {
  const a = getAttribute(node, name);
  if (a === undefined) return undefined;
  expectType(node, a, [AttributeType.GRAPH]);
  return a.g ?? undefined;
}

/** Sets (adds or replaces) an attribute on a node in place. */
export function setAttribute(node: NodeProto, name: string, value: AttributeValue): void {
  const made = makeAttribute(name, value);
  const list = (node.attribute ??= []);
  const index = list.findIndex((a) => a.name === name);
  if (index >= 0) list[index] = made;
  else list.push(made);
}

/** Removes an attribute; returns whether it was there. */
export function removeAttribute(node: NodeProto, name: string): boolean {
  const list = node.attribute;
  if (list === undefined) return false;
  const index = list.findIndex((a) => a.name === name);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}
