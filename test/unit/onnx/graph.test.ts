import Long from 'long';
import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import {
  DataType,
  GraphIndex,
  NameScope,
  addInitializer,
  attr,
  decodeModel,
  encodeModel,
  eliminateDeadNodes,
  insertNodes,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  opsetVersion,
  outerReferences,
  removeInitializer,
  removeNode,
  removeUnusedInitializers,
  renameValue,
  replaceInitializer,
  replaceNode,
  rewireConsumers,
  topologicalOrder,
  uniqueName,
  validateModel,
  valueType,
  type GraphProto,
} from '../../../src/onnx/index.ts';
import { tinyMlp } from '../../helpers/onnx-builders.ts';

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isEdgevolveError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  return { code: 'ok', message: '' };
}

/** y = If(cond) then { t = Add(x, k) } else { e = Neg(x) }: the branches read x and k from the outer graph. */
function graphWithIf(): GraphProto {
  const thenBranch = makeGraph({
    name: 'then',
    nodes: [makeNode('Add', ['x', 'k'], ['t'], {}, { name: 'then_add' })],
    inputs: [],
    outputs: [makeValueInfo('t', DataType.FLOAT, [2])],
  });
  const elseBranch = makeGraph({
    name: 'else',
    nodes: [makeNode('Neg', ['x'], ['e'], {}, { name: 'else_neg' })],
    inputs: [],
    outputs: [makeValueInfo('e', DataType.FLOAT, [2])],
  });
  return makeGraph({
    name: 'main',
    nodes: [
      makeNode('Relu', ['x0'], ['x'], {}, { name: 'relu' }),
      makeNode('Identity', ['k0'], ['k'], {}, { name: 'id_k' }),
      makeNode('If', ['cond'], ['y'], { then_branch: attr.graph(thenBranch), else_branch: attr.graph(elseBranch) }, { name: 'if' }),
    ],
    inputs: [makeValueInfo('x0', DataType.FLOAT, [2]), makeValueInfo('cond', DataType.BOOL, []), makeValueInfo('k0', DataType.FLOAT, [2])],
    outputs: [makeValueInfo('y', DataType.FLOAT, [2])],
  });
}

describe('GraphIndex', () => {
  it('finds producers, consumers, initializers, inputs and outputs', () => {
    const g = tinyMlp().graph!;
    const index = new GraphIndex(g);
    expect(index.producer('h')?.name).toBe('add');
    expect(index.producer('x')).toBeUndefined();
    expect(index.consumers('xw').map((n) => n.name)).toEqual(['add']);
    expect(index.initializer('W')?.dims).toEqual([4, 3]);
    expect(index.isGraphInput('x')).toBe(true);
    expect(index.isGraphOutput('y')).toBe(true);
    expect(index.isGraphOutput('h')).toBe(false);
  });

  it('counts a node whose subgraph reads an outer value as its consumer', () => {
    const index = new GraphIndex(graphWithIf());
    expect(index.consumers('x').map((n) => n.name)).toEqual(['if']);
    expect(index.consumers('k').map((n) => n.name)).toEqual(['if']);
    expect([...outerReferences(graphWithIf().node![2]!.attribute![0]!.g!)].sort()).toEqual(['k', 'x']);
  });
});

describe('topologicalOrder', () => {
  it('returns an already sorted graph unchanged', () => {
    const g = tinyMlp().graph!;
    expect(topologicalOrder(g)).toEqual(g.node);
  });

  it('sorts nodes given in reverse, counting subgraph outer references as dependencies', () => {
    const g = graphWithIf();
    g.node!.reverse();
    // Stable: among ready nodes the earlier one in the file goes first.
    expect(topologicalOrder(g).map((n) => n.name)).toEqual(['id_k', 'relu', 'if']);
  });

  it('names a node on a cycle', () => {
    const g = makeGraph({
      name: 'loop',
      nodes: [makeNode('Add', ['x', 'c'], ['a'], {}, { name: 'first' }), makeNode('Relu', ['a'], ['b'], {}, { name: 'second' }), makeNode('Neg', ['b'], ['c'], {}, { name: 'third' })],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1])],
      outputs: [makeValueInfo('c', DataType.FLOAT, [1])],
    });
    const err = errorOf(() => topologicalOrder(g));
    expect(err.code).toBe('E_ONNX_INVALID');
    expect(err.message).toMatch(/cycle through node (first|second|third)/);
  });

  // A quadratic sort would take minutes here; the bound leaves room for a loaded CI machine.
  it('sorts a reversed 100,000-node chain in linear time', () => {
    const nodes = Array.from({ length: 100_000 }, (_, i) => makeNode('Relu', [i === 0 ? 'x' : `v${i - 1}`], [`v${i}`]));
    const g = makeGraph({ name: 'chain', nodes: nodes.reverse(), inputs: [makeValueInfo('x', DataType.FLOAT, [1])], outputs: [] });
    const started = performance.now();
    const order = topologicalOrder(g);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(order[0]!.output).toEqual(['v0']);
    expect(order[99_999]!.output).toEqual(['v99999']);
  });
});

describe('names and types', () => {
  it('uniqueName avoids names used anywhere, subgraphs included', () => {
    const g = graphWithIf();
    expect(uniqueName(g, 't')).toBe('t_1');
    expect(uniqueName(g, 'then_add')).toBe('then_add_1');
    expect(uniqueName(g, 'fresh')).toBe('fresh');
    const scope = new NameScope(g);
    expect([scope.fresh('x'), scope.fresh('x'), scope.fresh('x')]).toEqual(['x_1', 'x_2', 'x_3']);
  });

  it('valueType reads inputs, outputs, value_info and initializers', () => {
    const g = tinyMlp().graph!;
    g.valueInfo = [makeValueInfo('h', DataType.FLOAT16, ['N', null, 3])];
    expect(valueType(g, 'x')).toEqual({ elemType: DataType.FLOAT, shape: ['N', 4] });
    expect(valueType(g, 'h')).toEqual({ elemType: DataType.FLOAT16, shape: ['N', null, 3] });
    expect(valueType(g, 'W')).toEqual({ elemType: DataType.FLOAT, shape: [4, 3] });
    expect(valueType(g, 'nope')).toBeUndefined();
    g.input!.push(makeValueInfo('r', DataType.INT8, null));
    expect(valueType(g, 'r')).toEqual({ elemType: DataType.INT8, shape: null });
  });

  it('valueType tells a 0 dim from an unknown one on a decoded model', () => {
    const model = makeModel({ graph: makeGraph({ name: 'g', nodes: [], inputs: [makeValueInfo('x', DataType.FLOAT, [0, 'N', null, 5])], outputs: [] }) });
    const decoded = decodeModel(encodeModel(model));
    expect(valueType(decoded.graph!, 'x')).toEqual({ elemType: DataType.FLOAT, shape: [0, 'N', null, 5] });
  });

  it('opsetVersion treats ai.onnx as the default domain', () => {
    const model = makeModel({ graph: tinyMlp().graph!, opsets: [{ domain: 'ai.onnx', version: 13 }, { domain: 'com.microsoft', version: 1 }] });
    expect(opsetVersion(model)).toBe(13);
    expect(opsetVersion(model, 'com.microsoft')).toBe(1);
    expect(opsetVersion(model, 'ai.onnx.ml')).toBeUndefined();
    model.opsetImport![0]!.version = Long.MAX_VALUE;
    expect(errorOf(() => opsetVersion(model)).code).toBe('E_ONNX_INVALID');
  });
});

describe('edits', () => {
  it('inserts after a node, replaces and removes nodes', () => {
    const g = tinyMlp().graph!;
    const add = g.node![1]!;
    insertNodes(g, { after: add }, [makeNode('Sigmoid', ['h'], ['s'], {}, { name: 'sig' })]);
    expect(g.node!.map((n) => n.name)).toEqual(['matmul', 'add', 'sig', 'relu']);
    replaceNode(g, g.node![2]!, [makeNode('Tanh', ['h'], ['s'], {}, { name: 'tanh' })]);
    expect(g.node!.map((n) => n.name)).toEqual(['matmul', 'add', 'tanh', 'relu']);
    removeNode(g, g.node![2]!);
    expect(g.node!.map((n) => n.name)).toEqual(['matmul', 'add', 'relu']);
    expect(errorOf(() => removeNode(g, makeNode('X', [], []))).code).toBe('E_ONNX_GRAPH_EDIT');
    expect(errorOf(() => insertNodes(g, 99, [])).code).toBe('E_ONNX_GRAPH_EDIT');
  });

  it('adds, replaces and removes initializers, refusing a name clash', () => {
    const g = tinyMlp().graph!;
    expect(errorOf(() => addInitializer(g, makeTensor('W', DataType.FLOAT, [1], [1]))).code).toBe('E_ONNX_GRAPH_EDIT');
    expect(errorOf(() => addInitializer(g, makeTensor('h', DataType.FLOAT, [1], [1]))).code).toBe('E_ONNX_GRAPH_EDIT');
    addInitializer(g, makeTensor('scale', DataType.FLOAT, [1], [2]));
    replaceInitializer(g, makeTensor('B', DataType.FLOAT, [3], [0, 0, 0]));
    expect(new GraphIndex(g).initializer('B')?.rawData).toHaveLength(12);
    expect(removeInitializer(g, 'scale')).toBe(true);
    expect(removeInitializer(g, 'scale')).toBe(false);
    expect(errorOf(() => replaceInitializer(g, makeTensor('nope', DataType.FLOAT, [1], [1]))).code).toBe('E_ONNX_GRAPH_EDIT');
  });

  it('rewires consumers, inside subgraphs too, and leaves graph outputs alone unless asked', () => {
    const g = graphWithIf();
    g.node!.push(makeNode('Identity', ['x0'], ['x2'], {}, { name: 'id_x' }));
    expect(rewireConsumers(g, 'x', 'x2')).toBe(1);
    const thenAdd = g.node![2]!.attribute![0]!.g!.node![0]!;
    expect(thenAdd.input).toEqual(['x2', 'k']);
    expect(new GraphIndex(g).consumers('x')).toEqual([]);
    expect(rewireConsumers(g, 'y', 'x2')).toBe(0);
    expect(g.output![0]!.name).toBe('y');
    rewireConsumers(g, 'y', 'x2', { graphOutputs: true });
    expect(g.output![0]!.name).toBe('x2');
  });

  it('does not rewire a subgraph that defines the same name itself (shadowing)', () => {
    const inner = makeGraph({ name: 'body', nodes: [makeNode('Neg', ['c'], ['x'], {}, { name: 'defines_x' }), makeNode('Relu', ['x'], ['o'])], inputs: [], outputs: [makeValueInfo('o', DataType.FLOAT, [1])] });
    const g = makeGraph({
      name: 'main',
      nodes: [makeNode('Relu', ['a'], ['x']), makeNode('If', ['cond'], ['y'], { then_branch: attr.graph(inner), else_branch: attr.graph(inner) })],
      inputs: [makeValueInfo('a', DataType.FLOAT, [1]), makeValueInfo('cond', DataType.BOOL, []), makeValueInfo('c', DataType.FLOAT, [1])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1])],
    });
    rewireConsumers(g, 'x', 'a');
    expect(inner.node![1]!.input).toEqual(['x']);
  });

  it('renames a value everywhere and keeps the model valid', () => {
    const model = makeModel({ graph: graphWithIf() });
    renameValue(model.graph!, 'x', 'relu_out');
    expect(model.graph!.node![0]!.output).toEqual(['relu_out']);
    expect(model.graph!.node![2]!.attribute![1]!.g!.node![0]!.input).toEqual(['relu_out']);
    renameValue(model.graph!, 'y', 'result');
    expect(model.graph!.output![0]!.name).toBe('result');
    expect(validateModel(model).filter((f) => f.severity === 'error')).toEqual([]);
    expect(errorOf(() => renameValue(model.graph!, 'k', 'cond')).code).toBe('E_ONNX_GRAPH_EDIT');
  });

  it('eliminates dead nodes but keeps those a subgraph reads, and prunes inside subgraphs', () => {
    const g = graphWithIf();
    g.node!.push(makeNode('Sigmoid', ['x'], ['unused'], {}, { name: 'dead' }));
    g.node![2]!.attribute![0]!.g!.node!.push(makeNode('Relu', ['x'], ['dead_inner'], {}, { name: 'dead_inner' }));
    expect(eliminateDeadNodes(g)).toBe(2);
    expect(g.node!.map((n) => n.name)).toEqual(['relu', 'id_k', 'if']);
    expect(g.node![2]!.attribute![0]!.g!.node!.map((n) => n.name)).toEqual(['then_add']);
  });

  it('removes unused initializers but keeps those that are graph inputs or read by subgraphs', () => {
    const g = graphWithIf();
    g.initializer = [makeTensor('k', DataType.FLOAT, [2], [1, 2]), makeTensor('junk', DataType.FLOAT, [1], [0]), makeTensor('x0', DataType.FLOAT, [2], [0, 0])];
    g.node!.splice(1, 1); // k now comes from the initializer, read only inside then_branch
    const elseBranch = g.node![1]!.attribute![1]!.g!;
    elseBranch.initializer = [makeTensor('inner_junk', DataType.FLOAT, [1], [0])];
    expect(removeUnusedInitializers(g)).toEqual(['junk', 'inner_junk']);
    expect(g.initializer.map((t) => t.name)).toEqual(['k', 'x0']);
    expect(elseBranch.initializer).toEqual([]);
  });
});
