import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../../src/onnx/index.ts';
import { runPass } from '../../../src/compress/pass.ts';
import { foldPass } from '../../../src/compress/fold/index.ts';
import { CHECKS, expectEquivalent } from '../../helpers/ort-equivalence.ts';
import { PADDLE_MODELS } from '../../helpers/onnx-builders.ts';

describe('fold on the PaddleOCR models (Constant-node weights, opset 11)', () => {
  it('detector: every Constant becomes an initializer, all BNs fold, outputs match onnxruntime within rtol 1e-4', async () => {
    const before = decodeModel(readFileSync(PADDLE_MODELS.det));
    const result = runPass(foldPass, before, {}, CHECKS);
    const after = result.model;
    const ops = (after.graph?.node ?? []).map((n) => n.opType);
    expect(ops).not.toContain('Constant');
    expect(ops).not.toContain('BatchNormalization');
    expect(result.report.stats['batchNormsFolded']).toBe(3);
    expect(after.graph!.input!.map((i) => i.name)).toEqual(before.graph!.input!.map((i) => i.name));
    expect(after.graph!.output).toEqual(before.graph!.output);
    expect(encodeModel(after).byteLength).toBeLessThanOrEqual(readFileSync(PADDLE_MODELS.det).byteLength);
    await expectEquivalent(before, after, { dims: { x: [1, 3, 96, 96] }, rtol: 1e-4, atol: 1e-4 });
  });

  it('classifier: folded model matches the original', async () => {
    const before = decodeModel(readFileSync(PADDLE_MODELS.cls));
    const result = runPass(foldPass, before, {}, CHECKS);
    expect(result.modified).toBe(true);
    await expectEquivalent(before, result.model, { dims: { x: [1, 3, 48, 192] }, rtol: 1e-4, atol: 1e-5 });
  });
});

const MNIST_CNN = 'test/fixtures/models/mnist-cnn.onnx';

describe.runIf(existsSync(MNIST_CNN) || process.env.CI === 'true')('fold on the trained mnist-cnn (Conv-BN-Relu-MaxPool x2 + Gemm)', () => {
  it('folds both BatchNormalizations into their Convs and keeps the logits within rtol 1e-4', async () => {
    const before = decodeModel(readFileSync(MNIST_CNN));
    const result = runPass(foldPass, before, {}, CHECKS);
    expect(result.report.stats['batchNormsFolded']).toBe(2);
    expect((result.model.graph?.node ?? []).map((n) => n.opType)).not.toContain('BatchNormalization');
    await expectEquivalent(before, result.model, { dims: { input: [4, 1, 28, 28] }, rtol: 1e-4, atol: 1e-5 });
  });
});
