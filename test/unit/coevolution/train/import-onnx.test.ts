import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCnn, buildMlp, exportToOnnx, importMlpFromOnnx, Rng } from '../../../../src/coevolution/train/index.ts';
import { encodeModel } from '../../../../src/onnx/index.ts';
import { codeOf } from '../../../helpers/error-code.ts';

describe('importMlpFromOnnx', () => {
  it('rebuilds an exported MLP whose forward pass gives the same logits', () => {
    const original = buildMlp([1, 4, 4], [6, 5], 3, { seed: 3, maxBatch: 4 });
    const imported = importMlpFromOnnx(encodeModel(exportToOnnx(original, { graphName: 'g' })), 4);
    const rng = new Rng(4);
    const x = Float32Array.from({ length: 4 * 16 }, () => rng.uniform());
    const expected = Float32Array.from(original.forward(x, 4, false));
    expect(Array.from(imported.forward(x, 4, false))).toEqual(Array.from(expected));
    expect(imported.parameterCount).toBe(original.parameterCount);
  });

  it('reads the mnist-student fixture as Flatten-784-32-10', () => {
    const net = importMlpFromOnnx(readFileSync('test/fixtures/models/mnist-student.onnx'), 8);
    expect(net.inputShape).toEqual([1, 28, 28]);
    expect(net.outputSize).toBe(10);
    expect(net.parameterCount).toBe(25450);
  });

  it('refuses a convolutional model with E_TRAIN_INVALID naming the node', () => {
    const cnn = buildCnn([1, 8, 8], [{ channels: 2, kernel: 3, pool: 2 }], [], 3, { seed: 1, maxBatch: 2 });
    const bytes = encodeModel(exportToOnnx(cnn, { graphName: 'cnn' }));
    expect(codeOf(() => importMlpFromOnnx(bytes, 2))).toBe('E_TRAIN_INVALID');
    expect(() => importMlpFromOnnx(bytes, 2)).toThrow(/Conv/);
  });
});
