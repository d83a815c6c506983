/**
 * Element types of every value in a graph, propagated from the declared ones (graph
 * inputs, initializers, value_info, Constant values) through the nodes in topological
 * order. Quantization and fp16 only need to know which values are float32; a full
 * shape inference is not needed for that, and models from converters (PaddleOCR's
 * paddle2onnx among them) often carry no value_info at all.
 */
import { getAttrInt, getAttribute, topologicalOrder } from '../../onnx/index.ts';
import { DataType, type GraphProto, type NodeProto } from '../../onnx/types.ts';

const INT64_OUTPUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression']);
const BOOL_OUTPUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INT32_OUTPUT = new Set(['MatMulInteger', 'ConvInteger']);
/** Ops whose outputs take the element type of input 1 (input 0 is an index or condition). */
const TYPE_FROM_INPUT_1 = new Set(['Where']);

/** Element type by value name; absent where it cannot be known. */
export function inferElemTypes(graph: GraphProto): Map<string, number> {
  const types = new Map<string, number>();
  const declare = (name: string | undefined, elemType: number | undefined): void => {
    if (name && elemType) types.set(name, elemType);
  };
  for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) declare(v.name, v.type?.tensorType?.elemType);
  for (const t of graph.initializer ?? []) declare(t.name, t.dataType);
  for (const node of topologicalOrder(graph)) {
    const outputs = node.output ?? [];
    const inferred = outputTypes(node, types);
    outputs.forEach((o, i) => {
      if (!o || types.has(o)) return;
      const t = inferred[i];
      if (t) types.set(o, t);
    });
  }
  return types;
}

function inputType(node: NodeProto, types: ReadonlyMap<string, number>, index: number): number | undefined {
  const name = node.input?.[index];
  return name ? types.get(name) : undefined;
}

function outputTypes(node: NodeProto, types: ReadonlyMap<string, number>): (number | undefined)[] {
  const op = node.opType ?? '';
  const n = node.output?.length ?? 0;
  const all = (t: number | undefined): (number | undefined)[] => Array.from({ length: n }, () => t);
  if (node.domain && node.domain !== 'ai.onnx') {
    if (op === 'DynamicQuantizeMatMul' || op === 'MatMulIntegerToFloat') return all(DataType.FLOAT);
    return all(undefined);
  }
  if (INT64_OUTPUT.has(op)) return all(DataType.INT64);
  if (BOOL_OUTPUT.has(op)) return all(DataType.BOOL);
  if (INT32_OUTPUT.has(op)) return all(DataType.INT32);
  switch (op) {
    case 'Cast':
      return all(getAttrInt(node, 'to'));
    case 'Constant':
      return all(constantType(node));
    case 'ConstantOfShape':
      return all(getAttribute(node, 'value')?.t?.dataType ?? DataType.FLOAT);
    case 'DynamicQuantizeLinear':
      return [DataType.UINT8, DataType.FLOAT, DataType.UINT8];
    case 'QuantizeLinear':
      return all(inputType(node, types, 2) ?? DataType.UINT8);
    case 'DequantizeLinear':
      return all(inputType(node, types, 1) ?? DataType.FLOAT);
    case 'TopK':
      return [inputType(node, types, 0), DataType.INT64];
    case 'MaxPool':
      return [inputType(node, types, 0), DataType.INT64];
    case 'EyeLike':
    case 'RandomNormal':
    case 'RandomUniform':
    case 'RandomNormalLike':
    case 'RandomUniformLike':
      return all(getAttrInt(node, 'dtype') ?? inputType(node, types, 0) ?? DataType.FLOAT);
    case 'CastLike':
      return all(inputType(node, types, 1));
    case 'If':
    case 'Loop':
    case 'Scan':
      return all(undefined);
  }
  if (TYPE_FROM_INPUT_1.has(op)) return all(inputType(node, types, 1));
  // Most operators produce the element type of their first input (elementwise math,
  // Conv, MatMul, Reshape, Concat, Resize, Gather, Split, pooling, normalization...).
  return all(inputType(node, types, 0));
}

function constantType(node: NodeProto): number | undefined {
  for (const a of node.attribute ?? []) {
    switch (a.name ?? '') {
      case 'value':
        return a.t?.dataType;
      case 'value_float':
      case 'value_floats':
        return DataType.FLOAT;
      case 'value_int':
      case 'value_ints':
        return DataType.INT64;
      case 'value_string':
      case 'value_strings':
        return DataType.STRING;
    }
  }
  return undefined;
}
