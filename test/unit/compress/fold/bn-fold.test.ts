import { describe, expect, it } from 'vitest';
import { attr, DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { foldBatchNormPass, foldPass } from '../../../../src/compress/fold/index.ts';
import { CHECKS, expectEquivalent, seededFloats } from '../../../helpers/ort-equivalence.ts';

const f32 = (name: string, dims: number[], seed: number, offset = 0): TensorProto =>
  makeTensor(name, DataType.FLOAT, dims, seededFloats(dims.reduce((a, b) => a * b, 1), seed).map((v) => v + offset));

/** BN parameters for `c` channels, variance kept positive, prefixed `p`. */
function bnParams(p: string, c: number, seed: number): TensorProto[] {
  return [f32(`${p}_g`, [c], seed, 1), f32(`${p}_b`, [c], seed + 1), f32(`${p}_m`, [c], seed + 2), f32(`${p}_v`, [c], seed + 3, 1.5)];
}

function bn(p: string, input: string, output: string): NodeProto {
  return makeNode('BatchNormalization', [input, `${p}_g`, `${p}_b`, `${p}_m`, `${p}_v`], [output], { epsilon: attr.float(1e-3) }, { name: p });
}

function model(nodes: NodeProto[], inits: TensorProto[], input: number[], output: number[], opset = 17): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes,
      inputs: [makeValueInfo('x', DataType.FLOAT, input)],
      outputs: [makeValueInfo('y', DataType.FLOAT, output)],
      initializers: inits,
    }),
    opsets: [{ domain: '', version: opset }],
  });
}

function opTypes(m: ModelProto): string[] {
  return (m.graph?.node ?? []).map((n) => n.opType ?? '');
}

async function foldsAway(before: ModelProto, removed: string): Promise<ModelProto> {
  const result = runPass(foldBatchNormPass, before, {}, CHECKS);
  expect(result.modified).toBe(true);
  expect(opTypes(result.model)).not.toContain(removed);
  await expectEquivalent(before, result.model);
  return result.model;
}

describe('BatchNormalization folding', () => {
  it('folds BN into a Conv without bias and keeps outputs within rtol 1e-4', async () => {
    const m = model(
      [makeNode('Conv', ['x', 'W'], ['c'], { pads: [1, 1, 1, 1] }, { name: 'conv' }), bn('bn', 'c', 'b'), makeNode('Relu', ['b'], ['y'])],
      [f32('W', [4, 3, 3, 3], 1), ...bnParams('bn', 4, 10)],
      [2, 3, 6, 6],
      [2, 4, 6, 6],
    );
    const out = await foldsAway(m, 'BatchNormalization');
    expect(out.graph!.node![0]!.input).toHaveLength(3);
  });

  it('folds BN into a Conv with bias, into a grouped Conv and into a depthwise Conv', async () => {
    for (const [group, wShape] of [
      [1, [6, 4, 3, 3]],
      [2, [6, 2, 3, 3]],
      [4, [4, 1, 3, 3]],
    ] as const) {
      const cout = wShape[0];
      const m = model(
        [makeNode('Conv', ['x', 'W', 'B'], ['c'], { group, pads: [1, 1, 1, 1] }, { name: 'conv' }), bn('bn', 'c', 'y')],
        [f32('W', [...wShape], 2), f32('B', [cout], 3), ...bnParams('bn', cout, 20)],
        [1, 4, 5, 5],
        [1, cout, 5, 5],
      );
      await foldsAway(m, 'BatchNormalization');
    }
  });

  it('folds the Paddle pattern ConvTranspose → Add(bias [1,C,1,1]) → BN, also for group 2', async () => {
    for (const group of [1, 2]) {
      const m = model(
        [
          makeNode('ConvTranspose', ['x', 'W'], ['t'], { group, strides: [2, 2], kernel_shape: [2, 2] }, { name: 'deconv' }),
          makeNode('Add', ['t', 'bias'], ['a'], {}, { name: 'add' }),
          bn('bn', 'a', 'y'),
        ],
        [f32('W', [4, 6 / group, 2, 2], 4), f32('bias', [1, 6, 1, 1], 5), ...bnParams('bn', 6, 30)],
        [1, 4, 3, 3],
        [1, 6, 6, 6],
      );
      const out = await foldsAway(m, 'BatchNormalization');
      expect(opTypes(out)).toEqual(['ConvTranspose']);
    }
  });

  it('folds BN into Gemm with transB, alpha and beta, and into Gemm with C of shape [1,N]', async () => {
    const withTransB = model(
      [makeNode('Gemm', ['x', 'W', 'C'], ['g'], { transB: 1, alpha: attr.float(0.5), beta: attr.float(2) }, { name: 'gemm' }), bn('bn', 'g', 'y')],
      [f32('W', [5, 8], 6), f32('C', [5], 7), ...bnParams('bn', 5, 40)],
      [3, 8],
      [3, 5],
    );
    await foldsAway(withTransB, 'BatchNormalization');
    const rowC = model(
      [makeNode('Gemm', ['x', 'W', 'C'], ['g'], {}, { name: 'gemm' }), bn('bn', 'g', 'y')],
      [f32('W', [8, 5], 8), f32('C', [1, 5], 9), ...bnParams('bn', 5, 50)],
      [3, 8],
      [3, 5],
    );
    await foldsAway(rowC, 'BatchNormalization');
  });

  it('gives the folded Conv its own weight when another Conv shares it, leaving that Conv unchanged', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W'], ['c1'], {}, { name: 'conv1' }),
        bn('bn', 'c1', 'b1'),
        makeNode('Conv', ['x', 'W'], ['c2'], {}, { name: 'conv2' }),
        makeNode('Add', ['b1', 'c2'], ['y']),
      ],
      [f32('W', [3, 3, 1, 1], 11), ...bnParams('bn', 3, 60)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    const out = await foldsAway(m, 'BatchNormalization');
    const conv1 = out.graph!.node!.find((n) => n.name === 'conv1')!;
    const conv2 = out.graph!.node!.find((n) => n.name === 'conv2')!;
    expect(conv2.input![1]).toBe('W');
    expect(conv1.input![1]).not.toBe('W');
  });

  it('leaves BN alone when the Conv output has another reader or BN parameters are graph inputs', () => {
    const twoReaders = model(
      [makeNode('Conv', ['x', 'W'], ['c'], {}, { name: 'conv' }), bn('bn', 'c', 'b'), makeNode('Add', ['b', 'c'], ['y'])],
      [f32('W', [3, 3, 1, 1], 12), ...bnParams('bn', 3, 70)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    expect(runPass(foldBatchNormPass, twoReaders, {}, CHECKS).modified).toBe(false);
    const dynamicScale = model(
      [makeNode('Conv', ['x', 'W'], ['c'], {}, { name: 'conv' }), bn('bn', 'c', 'y')],
      [f32('W', [3, 3, 1, 1], 13), ...bnParams('bn', 3, 80)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    dynamicScale.graph!.input!.push(makeValueInfo('bn_g', DataType.FLOAT, [3]));
    expect(runPass(foldBatchNormPass, dynamicScale, {}, CHECKS).modified).toBe(false);
  });

  it('does not mutate the input model', () => {
    const m = model(
      [makeNode('Conv', ['x', 'W'], ['c'], {}, { name: 'conv' }), bn('bn', 'c', 'y')],
      [f32('W', [3, 3, 1, 1], 14), ...bnParams('bn', 3, 90)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    const before = JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    runPass(foldPass, m, {}, CHECKS);
    expect(JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v))).toBe(before);
  });
});
