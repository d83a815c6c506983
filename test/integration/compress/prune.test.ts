import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeModel, type ModelProto } from '../../../src/onnx/index.ts';
import { runPass } from '../../../src/compress/pass.ts';
import { compressModel } from '../../../src/compress/index.ts';
import { pruneChannelsPass, pruneUnstructuredPass } from '../../../src/compress/prune/index.ts';
import { CHECKS, randomFeeds, runModel } from '../../helpers/ort-equivalence.ts';
import { PADDLE_MODELS } from '../../helpers/onnx-builders.ts';

const MNIST_CNN = 'test/fixtures/models/mnist-cnn.onnx';
const MNIST_TEACHER = 'test/fixtures/models/mnist-teacher.onnx';

/** The trained MNIST fixtures (npm run train-fixtures); missing is a skip locally, a failure under CI. */
function haveFixtures(...files: string[]): boolean {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length === 0) return true;
  const message = `${missing.join(', ')} missing: run npm run train-fixtures`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

async function outputDims(model: ModelProto, dims: Record<string, number[]>): Promise<Record<string, number[]>> {
  const out = await runModel(model, randomFeeds(model, 3, dims));
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.dims]));
}

describe('prune-channels on the PaddleOCR detector (depthwise convs, SE blocks, residual adds, Concat and Resize in the neck)', () => {
  const det = decodeModel(readFileSync(PADDLE_MODELS.det));

  it('prunes every group except the one reaching the graph output, and still runs with the same output shape', async () => {
    const result = runPass(pruneChannelsPass, det, { ratio: 0.3 }, CHECKS);
    const stats = result.report.stats;
    expect(stats['groupsPruned']).toBe(36);
    expect(stats['groupsSkipped']).toBe(1);
    const kept = result.report.changes.filter((c) => c.action === 'kept');
    expect(kept.map((c) => c.detail)).toEqual(["reaches graph output 'sigmoid_0.tmp_0'"]);
    // Two coupled dimensions shrink by 0.7 each: parameters land near 0.49x.
    expect(stats['paramsAfter']! / stats['paramsBefore']!).toBeLessThan(0.55);
    const dims = { x: [1, 3, 64, 96] };
    expect(await outputDims(result.model, dims)).toEqual(await outputDims(det, dims));
  });
});

describe('prune-unstructured on the PaddleOCR classifier', () => {
  it('reaches the target sparsity over all weights and the deflated file shrinks', async () => {
    const cls = decodeModel(readFileSync(PADDLE_MODELS.cls));
    const result = runPass(pruneUnstructuredPass, cls, { sparsity: 0.5 }, CHECKS);
    const s = result.report.stats;
    expect(s['sparsity']).toBeGreaterThanOrEqual(0.5);
    expect(s['sparsity']).toBeLessThan(0.51);
    expect(s['deflatedBytesAfter']! / s['deflatedBytesBefore']!).toBeLessThan(0.7);
    // Zeros are still stored densely: the raw file stays the same size (hoisting the Constant nodes saves a little).
    expect(s['bytesAfter']! / s['bytesBefore']!).toBeGreaterThan(0.97);
    const dims = { x: [1, 3, 48, 192] };
    expect(await outputDims(result.model, dims)).toEqual(await outputDims(cls, dims));
  });
});

describe('the prune methods through compressModel (what `edgevolve compress --method prune-*` runs)', () => {
  it('prune-channels folds first, then prunes; the PaddleOCR classifier shrinks and still runs', async () => {
    const cls = decodeModel(readFileSync(PADDLE_MODELS.cls));
    const result = await compressModel(cls, 'prune-channels', { ratio: 0.3 }, {});
    expect(result.report.passes.map((p) => p.pass)).toEqual(['fold', 'prune-channels']);
    expect(result.report.sizeRatio).toBeLessThan(0.6);
    const dims = { x: [1, 3, 48, 192] };
    expect(await outputDims(decodeModel(result.bytes), dims)).toEqual(await outputDims(cls, dims));
  });

  it('rejects an option of another method with E_COMPRESS_METHOD naming it', async () => {
    const cls = decodeModel(readFileSync(PADDLE_MODELS.cls));
    await expect(compressModel(cls, 'prune-unstructured', { sparsity: 0.5, ratio: 0.3 }, {})).rejects.toMatchObject({ code: 'E_COMPRESS_METHOD', message: expect.stringMatching(/--ratio/) as unknown });
  });
});

describe.runIf(haveFixtures(MNIST_CNN, MNIST_TEACHER))('prune-channels on the MNIST fixtures', () => {
  for (const [file, groups] of [
    [MNIST_CNN, ['conv1', 'conv2']],
    [MNIST_TEACHER, ['fc1', 'fc2']],
  ] as const) {
    it(`${file}: ratio 0.3 prunes ${groups.join(' and ')}, parameters fall by about the ratio, the classifier layer stays`, async () => {
      const model = decodeModel(readFileSync(file));
      const result = runPass(pruneChannelsPass, model, { ratio: 0.3 }, CHECKS);
      expect(result.report.changes.filter((c) => c.action === 'pruned').map((c) => c.target)).toEqual([...groups]);
      expect(result.report.changes.find((c) => c.action === 'kept')?.detail).toBe("reaches graph output 'logits'");
      const ratio = result.report.stats['paramsAfter']! / result.report.stats['paramsBefore']!;
      expect(ratio).toBeGreaterThan(0.45);
      expect(ratio).toBeLessThan(0.75);
      const dims = { input: [2, 1, 28, 28] };
      expect(await outputDims(result.model, dims)).toEqual(await outputDims(model, dims));
    });
  }
});
