/**
 * Raising a model's default-domain opset to what the emitted ops need
 * (QuantizeLinear 10, DynamicQuantizeLinear 11, per-channel Q/DQ 13), as
 * onnxruntime's tool does with onnx's version converter. Only the operators whose
 * signature changed between opset 7 and 13 need rewriting; each rewrite keeps the
 * computation identical. An operator that cannot be upgraded exactly stops the
 * pass with E_COMPRESS_PRECONDITION naming it, rather than changing the model's
 * meaning.
 */
import { EdgevolveError } from '../../errors/index.ts';
import { DataType, type ModelProto, type NodeProto, type GraphProto } from '../../onnx/types.ts';
import {
  NameScope,
  getAttrFloat,
  getAttrInt,
  getAttrInts,
  int64ToNumber,
  makeNode,
  makeTensor,
  opsetVersion,
  removeAttribute,
  setAttribute,
  valueType,
} from '../../onnx/index.ts';

export interface OpsetUpgrade {
  readonly model: ModelProto;
  readonly from: number;
  readonly to: number;
  /** Nodes rewritten (name: what changed). */
  readonly rewritten: readonly string[];
}

/**
 * Returns `model` unchanged when its opset is already >= `minimum`, else a copy-on-write
 * result with the opset raised to `minimum`. `model` must already be a clone the
 * caller owns (nodes are edited in place).
 */
export function raiseOpset(model: ModelProto, minimum: number): OpsetUpgrade {
  const from = opsetVersion(model) ?? 1;
  if (from >= minimum) return { model, from, to: from, rewritten: [] };
  const graph = model.graph!;
  const names = new NameScope(graph);
  const rewritten: string[] = [];
  const nodes: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const replacement = upgradeNode(graph, node, from, minimum, names);
    if (replacement === undefined) nodes.push(node);
    else {
      rewritten.push(`${node.name || node.output?.[0] || node.opType}: ${node.opType} ${replacement.what}`);
      nodes.push(...replacement.nodes);
      for (const t of replacement.initializers) (graph.initializer ??= []).push(t);
    }
  }
  graph.node = nodes;
  model.opsetImport = (model.opsetImport ?? []).map((o) => (o.domain === '' || o.domain === 'ai.onnx' || o.domain === undefined ? { ...o, version: minimum } : o));
  // Opset 13 needs IR version 7 at least.
  const ir = int64ToNumber(model.irVersion ?? 0);
  if (ir < 7) model.irVersion = 7;
  return { model, from, to: minimum, rewritten };
}

interface Rewrite {
  readonly nodes: NodeProto[];
  readonly initializers: ReturnType<typeof makeTensor>[];
  readonly what: string;
}

function refuse(node: NodeProto, why: string): never {
  const label = node.name || node.output?.[0] || node.opType || '?';
  throw new EdgevolveError('E_COMPRESS_PRECONDITION', `cannot raise the opset: node '${label}' (${node.opType}) ${why}`, {
    context: { node: label, opType: node.opType ?? '' },
  });
}

function upgradeNode(graph: GraphProto, node: NodeProto, from: number, to: number, names: NameScope): Rewrite | undefined {
  if (node.domain && node.domain !== 'ai.onnx') return undefined;
  const crosses = (version: number): boolean => from < version && to >= version;
  const label = node.name || node.output?.[0] || 'node';
  const inits: ReturnType<typeof makeTensor>[] = [];
  const int64Input = (suffix: string, values: readonly number[]): string => {
    const name = names.fresh(`${label}_${suffix}`);
    inits.push(makeTensor(name, DataType.INT64, [values.length], values.map((v) => BigInt(v))));
    return name;
  };
  const floatScalar = (suffix: string, value: number): string => {
    const name = names.fresh(`${label}_${suffix}`);
    inits.push(makeTensor(name, DataType.FLOAT, [], [value]));
    return name;
  };
  const copy = (): NodeProto => ({ ...node, input: [...(node.input ?? [])], output: [...(node.output ?? [])], attribute: [...(node.attribute ?? [])] });
  switch (node.opType ?? '') {
    case 'Clip': {
      if (!crosses(11)) return undefined;
      const n = copy();
      const min = getAttrFloat(node, 'min');
      const max = getAttrFloat(node, 'max');
      removeAttribute(n, 'min');
      removeAttribute(n, 'max');
      n.input = [node.input![0]!, min === undefined ? '' : floatScalar('min', min), max === undefined ? '' : floatScalar('max', max)];
      while (n.input.length > 1 && n.input[n.input.length - 1] === '') n.input.pop();
      return { nodes: [n], initializers: inits, what: 'min/max attributes → inputs' };
    }
    case 'Slice': {
      if (!crosses(10)) return undefined;
      const n = copy();
      const starts = getAttrInts(node, 'starts', []);
      const ends = getAttrInts(node, 'ends', []);
      const axes = getAttrInts(node, 'axes');
      for (const a of ['starts', 'ends', 'axes']) removeAttribute(n, a);
      n.input = [node.input![0]!, int64Input('starts', starts), int64Input('ends', ends)];
      if (axes !== undefined) n.input.push(int64Input('axes', axes));
      return { nodes: [n], initializers: inits, what: 'starts/ends/axes attributes → inputs' };
    }
    case 'Squeeze':
    case 'Unsqueeze':
    case 'ReduceSum': {
      if (!crosses(13)) return undefined;
      const axes = getAttrInts(node, 'axes');
      if (axes === undefined) return undefined;
      const n = copy();
      removeAttribute(n, 'axes');
      n.input = [node.input![0]!, int64Input('axes', axes)];
      return { nodes: [n], initializers: inits, what: 'axes attribute → input' };
    }
    case 'Split': {
      if (!crosses(13)) return undefined;
      const split = getAttrInts(node, 'split');
      if (split === undefined) return undefined;
      const n = copy();
      removeAttribute(n, 'split');
      n.input = [node.input![0]!, int64Input('split', split)];
      return { nodes: [n], initializers: inits, what: 'split attribute → input' };
    }
    case 'Pad': {
      if (!crosses(11)) return undefined;
      const n = copy();
      const pads = getAttrInts(node, 'pads', []);
      const value = getAttrFloat(node, 'value', 0);
      removeAttribute(n, 'pads');
      removeAttribute(n, 'value');
      n.input = [node.input![0]!, int64Input('pads', pads), floatScalar('value', value)];
      return { nodes: [n], initializers: inits, what: 'pads/value attributes → inputs' };
    }
    case 'TopK': {
      if (!crosses(10)) return undefined;
      const n = copy();
      const k = getAttrInt(node, 'k', 1);
      removeAttribute(n, 'k');
      n.input = [node.input![0]!, int64Input('k', [k])];
      return { nodes: [n], initializers: inits, what: 'k attribute → input' };
    }
    case 'Dropout': {
      if (!crosses(12)) return undefined;
      // Inference ignores the ratio; opset 12 moved it to an input.
      const n = copy();
      removeAttribute(n, 'ratio');
      removeAttribute(n, 'is_test');
      return { nodes: [n], initializers: inits, what: 'ratio attribute dropped (inference)' };
    }
    case 'BatchNormalization': {
      if (!crosses(9) && !crosses(14)) return undefined;
      const n = copy();
      removeAttribute(n, 'spatial');
      removeAttribute(n, 'is_test');
      removeAttribute(n, 'consumed_inputs');
      n.output = [node.output![0]!];
      return { nodes: [n], initializers: inits, what: 'inference form' };
    }
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax': {
      if (!crosses(13)) return undefined;
      const axis = getAttrInt(node, 'axis', 1);
      const declared = valueType(graph, node.input![0]!)?.shape ?? valueType(graph, node.output![0]!)?.shape ?? null;
      const rank = declared?.length;
      if (axis === -1 || (rank !== undefined && (axis === rank - 1 || axis + rank === rank - 1))) {
        const n = copy();
        setAttribute(n, 'axis', -1);
        return { nodes: [n], initializers: inits, what: 'axis made explicit' };
      }
      // Before opset 13 the op flattened the input to 2-D at `axis`; do that explicitly.
      const x = node.input![0]!;
      const flat = names.fresh(`${x}_flat`);
      const soft = names.fresh(`${node.output![0]!}_2d`);
      const shape = names.fresh(`${x}_shape`);
      return {
        nodes: [
          makeNode('Flatten', [x], [flat], { axis }, { name: names.fresh(`${label}_flatten`) }),
          makeNode(node.opType ?? 'Softmax', [flat], [soft], { axis: 1 }, { name: node.name || names.fresh(`${label}_2d`) }),
          makeNode('Shape', [x], [shape], {}, { name: names.fresh(`${label}_shape`) }),
          makeNode('Reshape', [soft, shape], [node.output![0]!], {}, { name: names.fresh(`${label}_reshape`) }),
        ],
        initializers: inits,
        what: 'pre-13 2-D coercion made explicit (Flatten → op → Reshape)',
      };
    }
    case 'Upsample':
      if (crosses(10)) refuse(node, 'was removed in opset 10; convert it to Resize first');
      return undefined;
    case 'Resize':
      if (crosses(11)) refuse(node, 'changed meaning in opset 11 (coordinate transformation); re-export the model at opset >= 11');
      return undefined;
    case 'Scan':
    case 'Loop':
    case 'If':
      if (from < 13) refuse(node, 'has subgraphs; raising the opset of control flow is not supported');
      return undefined;
    default:
      return undefined;
  }
}
