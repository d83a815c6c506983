import { describe, expect, it } from 'vitest';
import { attr, DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, readTensor, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { foldConstantsPass, foldPass, hoistConstantsPass, removeDeadPass, removeIdentityPass } from '../../../../src/compress/fold/index.ts';
import { CHECKS, expectEquivalent, seededFloats } from '../../../helpers/ort-equivalence.ts';

function model(nodes: NodeProto[], inits: TensorProto[], input: (number | string)[], outputs: [string, (number | string)[]][], opset = 17): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes,
      inputs: [makeValueInfo('x', DataType.FLOAT, input)],
      outputs: outputs.map(([name, shape]) => makeValueInfo(name, DataType.FLOAT, shape)),
      initializers: inits,
    }),
    opsets: [{ domain: '', version: opset }],
  });
}

const ops = (m: ModelProto): string[] => (m.graph?.node ?? []).map((n) => n.opType ?? '');
const i64 = (name: string, values: number[], dims = [values.length]): TensorProto => makeTensor(name, DataType.INT64, dims, values.map(BigInt));

describe('Constant hoisting', () => {
  it('moves Constant-node weights (value, value_float, value_ints) into initializers, keeps a Constant that is a graph output', async () => {
    const m = model(
      [
        makeNode('Constant', [], ['W'], { value: makeTensor('', DataType.FLOAT, [3, 2], seededFloats(6, 1)) }),
        makeNode('Constant', [], ['s'], { value_float: attr.float(0.5) }),
        makeNode('Constant', [], ['shape'], { value_ints: [-1, 2] }),
        makeNode('Constant', [], ['k'], { value: makeTensor('', DataType.FLOAT, [2], [1, 2]) }),
        makeNode('MatMul', ['x', 'W'], ['h']),
        makeNode('Mul', ['h', 's'], ['m']),
        makeNode('Reshape', ['m', 'shape'], ['y']),
      ],
      [],
      [4, 3],
      [
        ['y', [4, 2]],
        ['k', [2]],
      ],
    );
    const result = runPass(hoistConstantsPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Constant', 'MatMul', 'Mul', 'Reshape']);
    expect(result.model.graph!.initializer!.map((t) => t.name).sort()).toEqual(['W', 's', 'shape']);
    expect(Array.from(readTensor(result.model.graph!.initializer!.find((t) => t.name === 'shape')!).data as BigInt64Array)).toEqual([-1n, 2n]);
    expect(result.report.stats['constantsHoisted']).toBe(3);
    await expectEquivalent(m, result.model);
  });
});

describe('Identity and Dropout removal', () => {
  it('removes Identity and inference Dropout, renaming the producer when the Identity fed a graph output', async () => {
    const m = model(
      [
        makeNode('Identity', ['x'], ['a']),
        makeNode('Relu', ['a'], ['r']),
        makeNode('Dropout', ['r'], ['d']),
        makeNode('Sigmoid', ['d'], ['s']),
        makeNode('Identity', ['s'], ['y']),
      ],
      [],
      [2, 3],
      [['y', [2, 3]]],
    );
    const result = runPass(removeIdentityPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Relu', 'Sigmoid']);
    expect(result.model.graph!.node![1]!.output).toEqual(['y']);
    expect(result.model.graph!.output![0]!.name).toBe('y');
    await expectEquivalent(m, result.model);
  });

  it('keeps an Identity from a graph input to a graph output and a Dropout whose mask is read', () => {
    const m = model(
      [makeNode('Identity', ['x'], ['y']), makeNode('Dropout', ['x'], ['d', 'mask']), makeNode('Cast', ['mask'], ['z'], { to: DataType.FLOAT })],
      [],
      [2],
      [
        ['y', [2]],
        ['z', [2]],
        ['d', [2]],
      ],
    );
    expect(runPass(removeIdentityPass, m, {}, CHECKS).modified).toBe(false);
  });
});

describe('Constant folding', () => {
  it('folds the Shape→Gather→Unsqueeze→Concat→Reshape flatten chain of a statically shaped input', async () => {
    const m = model(
      [
        makeNode('Shape', ['x'], ['shp']),
        makeNode('Gather', ['shp', 'zero'], ['n'], { axis: 0 }),
        makeNode('Unsqueeze', ['n', 'axes0'], ['n1']),
        makeNode('Concat', ['n1', 'minus1'], ['target'], { axis: 0 }),
        makeNode('Reshape', ['x', 'target'], ['y']),
      ],
      [i64('zero', [0], []), i64('axes0', [0]), i64('minus1', [-1])],
      [2, 3, 4],
      [['y', [2, 12]]],
    );
    const result = runPass(foldConstantsPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Reshape']);
    const target = result.model.graph!.initializer!.find((t) => t.name === 'target')!;
    expect(Array.from(readTensor(target).data as BigInt64Array)).toEqual([2n, -1n]);
    await expectEquivalent(m, result.model);
  });

  it('folds Transpose, Cast, Squeeze and broadcast Add/Sub/Mul/Div of constants exactly as onnxruntime computes them', async () => {
    const w = makeTensor('w', DataType.FLOAT, [2, 3], seededFloats(6, 3));
    const m = model(
      [
        makeNode('Transpose', ['w'], ['wt'], { perm: [1, 0] }),
        makeNode('Mul', ['wt', 'scale'], ['ws']),
        makeNode('Div', ['ws', 'three'], ['wd']),
        makeNode('Sub', ['wd', 'row'], ['wr']),
        makeNode('Cast', ['ints'], ['intsf'], { to: DataType.FLOAT }),
        makeNode('Squeeze', ['intsf', 'axes0'], ['intsq']),
        makeNode('Add', ['wr', 'intsq'], ['c']),
        makeNode('Add', ['x', 'c'], ['y']),
      ],
      [
        w,
        makeTensor('scale', DataType.FLOAT, [3, 1], [0.1, 1.7, -3.3]),
        makeTensor('three', DataType.FLOAT, [], [3]),
        makeTensor('row', DataType.FLOAT, [2], [0.25, -0.125]),
        makeTensor('ints', DataType.INT32, [1, 2], [7, -9]),
        i64('axes0', [0]),
      ],
      [3, 2],
      [['y', [3, 2]]],
    );
    const result = runPass(foldConstantsPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Add']);
    await expectEquivalent(m, result.model, { rtol: 0, atol: 0 });
  });

  it('folds int64 shape arithmetic (Shape with start, Gather at a negative index, Mul, Div truncating) into a Reshape target', async () => {
    const m = model(
      [
        makeNode('Shape', ['x'], ['tail'], { start: 1 }),
        makeNode('Gather', ['tail', 'last'], ['w'], { axis: 0 }),
        makeNode('Mul', ['w', 'three'], ['w3']),
        makeNode('Div', ['w3', 'two'], ['half']),
        makeNode('Unsqueeze', ['half', 'axes0'], ['half1']),
        makeNode('Concat', ['minus1', 'half1'], ['target'], { axis: 0 }),
        makeNode('Reshape', ['x', 'target'], ['y']),
      ],
      [i64('last', [-1], []), i64('three', [3], []), i64('two', [2], []), i64('axes0', [0]), i64('minus1', [-1])],
      [4, 3, 6],
      [['y', [8, 9]]],
    );
    const result = runPass(foldConstantsPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Reshape']);
    // 6·3 / 2 = 9 (and 7·3/2 would truncate to 10, as onnxruntime's integer Div does).
    expect(Array.from(readTensor(result.model.graph!.initializer!.find((t) => t.name === 'target')!).data as BigInt64Array)).toEqual([-1n, 9n]);
    await expectEquivalent(m, result.model);
  });

  it('leaves nodes with a non-constant input, an overridable initializer, or an unsupported op', () => {
    const m = model(
      [makeNode('Add', ['x', 'b'], ['a']), makeNode('Mul', ['o', 'two'], ['m']), makeNode('Exp', ['two'], ['e']), makeNode('Add', ['a', 'm'], ['s']), makeNode('Add', ['s', 'e'], ['y'])],
      [makeTensor('b', DataType.FLOAT, [2], [1, 2]), makeTensor('o', DataType.FLOAT, [2], [1, 2]), makeTensor('two', DataType.FLOAT, [2], [2, 2])],
      [2],
      [['y', [2]]],
    );
    m.graph!.input!.push(makeValueInfo('o', DataType.FLOAT, [2]));
    expect(runPass(foldConstantsPass, m, {}, CHECKS).modified).toBe(false);
  });

  it('does not fold a broadcast that would inflate a constant beyond its inputs', () => {
    const m = model(
      [makeNode('Add', ['col', 'row'], ['big']), makeNode('Add', ['x', 'big'], ['y'])],
      [makeTensor('col', DataType.FLOAT, [100, 1], new Float32Array(100)), makeTensor('row', DataType.FLOAT, [100], new Float32Array(100))],
      [100, 100],
      [['y', [100, 100]]],
    );
    expect(runPass(foldConstantsPass, m, {}, CHECKS).modified).toBe(false);
  });
});

describe('Dead-node elimination and the combined fold pass', () => {
  it('removes nodes and initializers that reach no output', () => {
    const m = model(
      [makeNode('Relu', ['x'], ['y']), makeNode('MatMul', ['x', 'W'], ['unused']), makeNode('Sigmoid', ['unused'], ['unused2'])],
      [makeTensor('W', DataType.FLOAT, [2, 2], [1, 2, 3, 4]), makeTensor('orphan', DataType.FLOAT, [1], [1])],
      [2, 2],
      [['y', [2, 2]]],
    );
    const result = runPass(removeDeadPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Relu']);
    expect(result.model.graph!.initializer).toEqual([]);
    expect(result.report.stats['deadNodesRemoved']).toBe(2);
  });

  it('runs every step to a fixed point: Constant weights hoisted, BN folded, shapes folded, leftovers removed', async () => {
    const c = 3;
    const m = model(
      [
        makeNode('Constant', [], ['W'], { value: makeTensor('', DataType.FLOAT, [c, 2, 3, 3], seededFloats(c * 18, 5)) }),
        makeNode('Constant', [], ['g'], { value: makeTensor('', DataType.FLOAT, [c], [1, 0.5, 2]) }),
        makeNode('Constant', [], ['bb'], { value: makeTensor('', DataType.FLOAT, [c], [0.1, 0.2, 0.3]) }),
        makeNode('Constant', [], ['mu'], { value: makeTensor('', DataType.FLOAT, [c], [0, 1, -1]) }),
        makeNode('Constant', [], ['var'], { value: makeTensor('', DataType.FLOAT, [c], [1, 2, 0.5]) }),
        makeNode('Conv', ['x', 'W'], ['conv'], { pads: [1, 1, 1, 1] }, { name: 'conv' }),
        makeNode('BatchNormalization', ['conv', 'g', 'bb', 'mu', 'var'], ['bn'], {}, { name: 'bn' }),
        makeNode('Identity', ['bn'], ['id']),
        makeNode('Relu', ['id'], ['relu']),
        makeNode('Shape', ['relu'], ['shp']),
        makeNode('Constant', [], ['flat'], { value: makeTensor('', DataType.INT64, [2], [1n, -1n]) }),
        makeNode('Reshape', ['relu', 'flat'], ['y']),
      ],
      [],
      [1, 2, 4, 4],
      [['y', [1, c * 16]]],
      11,
    );
    const result = runPass(foldPass, m, {}, CHECKS);
    expect(ops(result.model)).toEqual(['Conv', 'Relu', 'Reshape']);
    expect(result.report.stats['batchNormsFolded']).toBe(1);
    await expectEquivalent(m, result.model);
  });
});
