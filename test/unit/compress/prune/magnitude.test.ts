import { describe, expect, it } from 'vitest';
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, tensorToFloat32, type ModelProto } from '../../../../src/onnx/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { pruneUnstructuredPass } from '../../../../src/compress/prune/index.ts';
import { CHECKS, runModel, randomFeeds, seededFloats } from '../../../helpers/ort-equivalence.ts';

/** Conv [8,4,3,3] (288 weights) → Relu → Gemm [10, 8·4·4] (1280 weights), weights 1..n in magnitude so the threshold is exact. */
function net(): ModelProto {
  const ramp = (n: number, sign: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? sign : -sign) * (i + 1));
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes: [
        makeNode('Conv', ['x', 'Wc', 'Bc'], ['c'], { pads: [1, 1, 1, 1] }, { name: 'conv' }),
        makeNode('Relu', ['c'], ['r']),
        makeNode('Flatten', ['r'], ['f']),
        makeNode('Gemm', ['f', 'Wg'], ['y'], { transB: 1 }, { name: 'fc' }),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 4, 4, 4])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 10])],
      initializers: [
        makeTensor('Wc', DataType.FLOAT, [8, 4, 3, 3], ramp(288, 1)),
        makeTensor('Bc', DataType.FLOAT, [8], seededFloats(8, 2)),
        makeTensor('Wg', DataType.FLOAT, [10, 128], ramp(1280, 1e-3)),
      ],
    }),
    opsets: [{ domain: '', version: 17 }],
  });
}

function zerosOf(m: ModelProto, name: string): number {
  return tensorToFloat32(m.graph!.initializer!.find((t) => t.name === name)!).filter((v) => v === 0).length;
}

describe('prune-unstructured', () => {
  it('per layer: zeroes exactly floor(s·n) smallest weights of every tensor and never a bias', async () => {
    const m = net();
    const result = runPass(pruneUnstructuredPass, m, { sparsity: 0.5 }, CHECKS);
    expect(zerosOf(result.model, 'Wc')).toBe(144);
    expect(zerosOf(result.model, 'Wg')).toBe(640);
    expect(zerosOf(result.model, 'Bc')).toBe(0);
    const wc = tensorToFloat32(result.model.graph!.initializer!.find((t) => t.name === 'Wc')!);
    // The survivors are the largest magnitudes: 145..288.
    expect(Math.min(...Array.from(wc).filter((v) => v !== 0).map(Math.abs))).toBe(145);
    const changes = result.report.changes.filter((c) => c.action === 'pruned');
    expect(changes.map((c) => [c.target, c.stats?.['sparsity']])).toEqual([
      ['Wc', 0.5],
      ['Wg', 0.5],
    ]);
    // Still runs in onnxruntime with the same output shape.
    const out = await runModel(result.model, randomFeeds(m));
    expect(out['y']!.dims).toEqual([1, 10]);
  });

  it('global: one threshold across tensors prunes the smaller-magnitude layer first', () => {
    const result = runPass(pruneUnstructuredPass, net(), { sparsity: 0.5, scope: 'global' }, CHECKS);
    const total = 288 + 1280;
    // Wg's magnitudes (≤ 1.28) are all below Wc's (≥ 1): the global threshold takes Wg first.
    expect(zerosOf(result.model, 'Wg')).toBe(Math.floor(0.5 * total));
    expect(zerosOf(result.model, 'Wc')).toBe(0);
    expect(result.report.stats['sparsity']).toBeCloseTo(Math.floor(0.5 * total) / total, 6);
  });

  it('honours per-layer overrides, exclusions and minElements', () => {
    const result = runPass(pruneUnstructuredPass, net(), { sparsity: 0.5, layers: { conv: 0.25 }, exclude: ['Wg'] }, CHECKS);
    expect(zerosOf(result.model, 'Wc')).toBe(72);
    expect(zerosOf(result.model, 'Wg')).toBe(0);
    const small = runPass(pruneUnstructuredPass, net(), { sparsity: 0.5, minElements: 500 }, CHECKS);
    expect(zerosOf(small.model, 'Wc')).toBe(0);
    expect(zerosOf(small.model, 'Wg')).toBe(640);
  });

  it('breaks ties at the threshold so the count is exact', () => {
    const m = net();
    m.graph!.initializer![0] = makeTensor('Wc', DataType.FLOAT, [8, 4, 3, 3], new Float32Array(288).fill(0.5));
    const result = runPass(pruneUnstructuredPass, m, { sparsity: 0.3, exclude: ['fc'] }, CHECKS);
    expect(zerosOf(result.model, 'Wc')).toBe(Math.floor(0.3 * 288));
  });

  it('reports the deflated size falling as sparsity rises', () => {
    const sizes = [0.2, 0.8].map((s) => runPass(pruneUnstructuredPass, net(), { sparsity: s }, CHECKS).report.stats['deflatedBytesAfter']!);
    expect(sizes[1]).toBeLessThan(sizes[0]!);
    const r = runPass(pruneUnstructuredPass, net(), { sparsity: 0.8 }, CHECKS).report.stats;
    expect(r['deflatedBytesAfter']).toBeLessThan(r['deflatedBytesBefore']!);
    expect(r['bytesAfter']).toBe(r['bytesBefore']);
  });

  it('rejects a sparsity of 1 or more with E_COMPRESS_METHOD', () => {
    expect(() => runPass(pruneUnstructuredPass, net(), { sparsity: 1 }, CHECKS)).toThrow(expect.objectContaining({ code: 'E_COMPRESS_METHOD' }));
  });
});
