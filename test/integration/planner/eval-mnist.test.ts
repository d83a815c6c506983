/**
 * The evaluation harness reproduces, to the sample, the test accuracy that
 * `npm run train-fixtures` measured with onnxruntime for each committed MNIST
 * fixture model (test/fixtures/models/mnist-fixtures.json).
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
