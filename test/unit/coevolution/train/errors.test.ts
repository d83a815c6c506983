import { describe, expect, it } from 'vitest';
import {
  Dense,
  Relu,
  Rng,
  Sequential,
  buildMlp,
  makeDetInputs,
  parseMnistDigits,
  splitSet,
  train,
  type LabelledSet,
} from '../../../../src/coevolution/train/index.ts';
import { isEdgevolveError } from '../../../../src/errors/index.ts';

function expectCode(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(isEdgevolveError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toMatch(message);
    return;
  }
  expect.fail('expected an EdgevolveError');
}

const tiny: LabelledSet = { inputs: new Float32Array(4 * 784), labels: new Uint8Array(4), count: 4, sampleShape: [1, 28, 28] };

describe('bad training input gets a typed error naming the problem', () => {
  it('layers whose sizes do not chain: E_TRAIN_INVALID naming the layer', () => {
    const rng = new Rng(1);
    expectCode(() => new Sequential([new Dense(4, 3, 2, rng), new Relu([5], 2)], 2), 'E_TRAIN_INVALID', /layer 1 \(relu\) expects 5 values per sample, the previous layer gives 3/);
  });

  it('a batch larger than the network was built for, or samples of the wrong size: E_TRAIN_INVALID', () => {
    const network = buildMlp([1, 28, 28], [4], 10, { seed: 1, maxBatch: 2 });
    expectCode(() => train(network, tiny, { epochs: 1, batchSize: 4, learningRate: 1e-3, seed: 1 }), 'E_TRAIN_INVALID', /batch size 4 exceeds the network's maxBatch 2/);
    const wrong: LabelledSet = { ...tiny, inputs: new Float32Array(4 * 100), sampleShape: [1, 10, 10] };
    expectCode(() => train(network, wrong, { epochs: 1, batchSize: 2, learningRate: 1e-3, seed: 1 }), 'E_TRAIN_INVALID', /samples have 100 values, the network takes 784/);
  });

  it('malformed MNIST digit files: E_TRAIN_DATA naming the digit', () => {
    const good = JSON.stringify({ data: new Array<number>(784).fill(0) });
    expectCode(() => parseMnistDigits([good, good]), 'E_TRAIN_DATA', /expected 10 digit files, got 2/);
    const files = new Array<string>(10).fill(good);
    files[3] = '{"data": [1, 2, 3]}';
    expectCode(() => parseMnistDigits(files), 'E_TRAIN_DATA', /digit 3: "data" must be an array of 784-value images/);
    files[3] = '{not json';
    expectCode(() => parseMnistDigits(files), 'E_TRAIN_DATA', /digit 3: not JSON/);
  });

  it('a split that leaves no training or test samples, or a detector size off the 32 grid: E_TRAIN_INVALID', () => {
    expectCode(() => splitSet(tiny, 4, 1), 'E_TRAIN_INVALID', /test count 4 must be within 1\.\.3/);
    expectCode(() => makeDetInputs(1, 1, 64, 100), 'E_TRAIN_INVALID', /64x100: both sides must be multiples of 32/);
  });
});
