import { describe, expect, it } from 'vitest';
import { cloneModel } from '../../../../src/compress/clone.ts';
import { raiseOpset } from '../../../../src/compress/quantize/opset.ts';
import { DataType, makeGraph, makeModel, makeNode, makeValueInfo } from '../../../../src/onnx/index.ts';
import { maxAbsDiff, randomInput, runModel } from './graphs.ts';

describe('raiseOpset', () => {
  it('rewrites opset-9 Clip and Slice attributes into inputs and makes Softmax\'s 2-D coercion explicit; outputs are identical', async () => {
    const g = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [
          makeNode('Clip', ['x'], ['c'], { min: -0.5, max: 0.5 }, { name: 'clip' }),
          makeNode('Slice', ['c'], ['s'], { starts: [0, 1], ends: [2, 3], axes: [1, 2] }, { name: 'slice' }),
          makeNode('Softmax', ['s'], ['y'], { axis: 1 }, { name: 'softmax' }),
        ],
        inputs: [makeValueInfo('x', DataType.FLOAT, [2, 3, 4])],
        outputs: [makeValueInfo('y', DataType.FLOAT, null)],
      }),
      opsets: [{ domain: '', version: 9 }],
      irVersion: 6,
    });
    const up = raiseOpset(cloneModel(g), 13);
    expect(up.from).toBe(9);
    expect(up.rewritten).toHaveLength(3);
    expect(up.model.opsetImport![0]!.version).toBe(13);
    const x = randomInput([2, 3, 4], 1, 2);
    const [a, b] = [await runModel(g, { x }), await runModel(up.model, { x })];
    expect(b.y!.dims).toEqual(a.y!.dims);
    expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeLessThan(1e-6);
  });

  it('refuses control flow and pre-10 Upsample instead of changing their meaning', () => {
    const g = makeModel({
      graph: makeGraph({ name: 'g', nodes: [makeNode('Upsample', ['x'], ['y'], { scales: [1, 1, 2, 2] }, { name: 'up' })], inputs: [makeValueInfo('x', DataType.FLOAT, [1, 1, 2, 2])], outputs: [makeValueInfo('y', DataType.FLOAT, null)] }),
      opsets: [{ domain: '', version: 9 }],
    });
    expect(() => raiseOpset(cloneModel(g), 13)).toThrow(expect.objectContaining({ code: 'E_COMPRESS_PRECONDITION', message: expect.stringMatching(/'up' \(Upsample\)/) as unknown }) as Error);
  });
});
