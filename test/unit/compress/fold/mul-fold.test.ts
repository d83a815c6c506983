import { describe, expect, it } from 'vitest';
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { foldBatchNormPass } from '../../../../src/compress/fold/index.ts';
import { CHECKS, expectEquivalent, seededFloats } from '../../../helpers/ort-equivalence.ts';

const f32 = (name: string, dims: number[], seed: number, offset = 0): TensorProto =>
  makeTensor(name, DataType.FLOAT, dims, seededFloats(dims.reduce((a, b) => a * b, 1), seed).map((v) => v + offset));

function model(nodes: NodeProto[], inits: TensorProto[], input: number[], output: number[]): ModelProto {
  return makeModel({
    graph: makeGraph({ name: 'g', nodes, inputs: [makeValueInfo('x', DataType.FLOAT, input)], outputs: [makeValueInfo('y', DataType.FLOAT, output)], initializers: inits }),
    opsets: [{ domain: '', version: 11 }],
  });
}

const opTypes = (m: ModelProto): string[] => (m.graph?.node ?? []).map((n) => n.opType ?? '');

describe('constant Mul folding into the producer (PP-OCRv4 learnable affine: Conv → Mul(a) → Add(b))', () => {
  it('folds a scalar Mul and a scalar Add after a padded Conv with bias into the Conv, outputs within rtol 1e-4', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W', 'B'], ['c'], { pads: [1, 1, 1, 1] }, { name: 'conv' }),
        makeNode('Mul', ['a', 'c'], ['m'], {}, { name: 'scale' }),
        makeNode('Add', ['m', 'b'], ['y'], {}, { name: 'shift' }),
      ],
      [f32('W', [4, 3, 3, 3], 1), f32('B', [4], 2), makeTensor('a', DataType.FLOAT, [1], [1.7]), makeTensor('b', DataType.FLOAT, [1], [-0.3])],
      [1, 3, 6, 6],
      [1, 4, 6, 6],
    );
    const out = runPass(foldBatchNormPass, m, {}, CHECKS);
    expect(out.modified).toBe(true);
    expect(opTypes(out.model)).toEqual(['Conv']);
    await expectEquivalent(m, out.model);
  });

  it('folds a per-channel [C,1,1] Mul into a depthwise Conv without bias and into a ConvTranspose', async () => {
    const depthwise = model(
      [makeNode('Conv', ['x', 'W'], ['c'], { group: 4, pads: [1, 1, 1, 1] }, { name: 'dw' }), makeNode('Mul', ['c', 'a'], ['y'], {}, { name: 'scale' })],
      [f32('W', [4, 1, 3, 3], 3), f32('a', [4, 1, 1], 4, 1)],
      [1, 4, 5, 5],
      [1, 4, 5, 5],
    );
    const dw = runPass(foldBatchNormPass, depthwise, {}, CHECKS);
    expect(opTypes(dw.model)).toEqual(['Conv']);
    await expectEquivalent(depthwise, dw.model);
    const deconv = model(
      [makeNode('ConvTranspose', ['x', 'W'], ['t'], { group: 2, strides: [2, 2], kernel_shape: [2, 2] }, { name: 'deconv' }), makeNode('Mul', ['t', 'a'], ['y'], {}, { name: 'scale' })],
      [f32('W', [4, 3, 2, 2], 5), f32('a', [1, 6, 1, 1], 6, 1)],
      [1, 4, 3, 3],
      [1, 6, 6, 6],
    );
    const dc = runPass(foldBatchNormPass, deconv, {}, CHECKS);
    expect(opTypes(dc.model)).toEqual(['ConvTranspose']);
    await expectEquivalent(deconv, dc.model);
  });

  it('leaves a Mul alone when its other operand is an activation, or a constant that is not per channel', () => {
    const byActivation = model(
      [makeNode('Conv', ['x', 'W'], ['c'], {}, { name: 'conv' }), makeNode('Mul', ['c', 'c'], ['y'], {}, { name: 'square' })],
      [f32('W', [3, 3, 1, 1], 7)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    expect(runPass(foldBatchNormPass, byActivation, {}, CHECKS).modified).toBe(false);
    const perPixel = model(
      [makeNode('Conv', ['x', 'W'], ['c'], {}, { name: 'conv' }), makeNode('Mul', ['c', 'a'], ['y'], {}, { name: 'mask' })],
      [f32('W', [3, 3, 1, 1], 8), f32('a', [1, 1, 4, 4], 9)],
      [1, 3, 4, 4],
      [1, 3, 4, 4],
    );
    expect(runPass(foldBatchNormPass, perPixel, {}, CHECKS).modified).toBe(false);
  });
});
