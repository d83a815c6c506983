import { describe, expect, it } from 'vitest';
import {
  BatchNorm2d,
  Conv2d,
  Dense,
  Flatten,
  MaxPool2d,
  Relu,
  Rng,
  sizeOf,
  softmaxCrossEntropy,
  type Layer,
} from '../../../../src/coevolution/train/index.ts';

/**
 * Finite-difference checks of every layer's backward pass. The probe loss is
 * L = sum(y * r) for a fixed random r, so dL/dy = r; each checked coordinate of the input
 * and of every parameter is nudged by ±EPS and the central difference compared with the
 * analytic gradient. Inputs are drawn away from ReLU's and MaxPool's kinks.
 */
const EPS = 1e-2;
const BATCH = 3;
const CHECKS_PER_TENSOR = 24;

function probeLoss(layer: Layer, x: Float32Array, r: Float32Array): number {
  const y = layer.forward(x, BATCH, true);
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += y[i]! * r[i]!;
  return sum;
}

function expectClose(numeric: number, analytic: number, what: string): void {
  const tolerance = 2e-3 + 1e-2 * Math.abs(analytic);
  expect(Math.abs(numeric - analytic), `${what}: numeric ${numeric} vs analytic ${analytic}`).toBeLessThanOrEqual(tolerance);
}

function checkLayer(layer: Layer, rng: Rng, makeInput: (n: number) => Float32Array, checkInput = true): void {
  const x = makeInput(BATCH * sizeOf(layer.inputShape));
  const outSize = BATCH * sizeOf(layer.outputShape);
  const r = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) r[i] = rng.normal();
  probeLoss(layer, x, r);
  const dx = Float32Array.from(layer.backward(r, BATCH));
  const paramGrads = layer.params.map((p) => Float32Array.from(p.grad));

  const nudge = (values: Float32Array, index: number): number => {
    const saved = values[index]!;
    values[index] = saved + EPS;
    const up = probeLoss(layer, x, r);
    values[index] = saved - EPS;
    const down = probeLoss(layer, x, r);
    values[index] = saved;
    return (up - down) / (2 * EPS);
  };
  if (checkInput) {
    for (let c = 0; c < CHECKS_PER_TENSOR; c++) {
      const index = rng.int(x.length);
      expectClose(nudge(x, index), dx[index]!, `${layer.kind} input[${index}]`);
    }
  }
  layer.params.forEach((param, p) => {
    for (let c = 0; c < CHECKS_PER_TENSOR; c++) {
      const index = rng.int(param.value.length);
      expectClose(nudge(param.value, index), paramGrads[p]![index]!, `${layer.kind} ${param.role}[${index}]`);
    }
  });
}

/** Uniform in ±[0.2, 1]: at least 0.2 from ReLU's kink. */
function awayFromZero(rng: Rng): (n: number) => Float32Array {
  return (n) => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (0.2 + 0.8 * rng.uniform()) * (rng.uniform() < 0.5 ? -1 : 1);
    return x;
  };
}

/** A permutation of evenly spaced values: distinct by 0.05, so a ±EPS nudge never changes a pooling winner. */
function distinctValues(rng: Rng): (n: number) => Float32Array {
  return (n) => {
    const order = rng.permutation(n);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = (order[i]! - n / 2) * 0.05;
    return x;
  };
}

describe('layer gradients match finite differences', () => {
  it('Dense: input, weight and bias gradients', () => {
    const rng = new Rng(1);
    checkLayer(new Dense(7, 5, BATCH, rng), rng, awayFromZero(rng));
  });

  it('Dense built without an input gradient still gives weight and bias gradients', () => {
    const rng = new Rng(2);
    const layer = new Dense(6, 4, BATCH, rng, false);
    checkLayer(layer, rng, awayFromZero(rng), false);
    expect(layer.backward(new Float32Array(BATCH * 4), BATCH).length).toBe(0);
  });

  it('Relu: input gradient', () => {
    const rng = new Rng(3);
    checkLayer(new Relu([10], BATCH), rng, awayFromZero(rng));
  });

  it('Conv2d 3x3 with padding 1: input, weight and bias gradients', () => {
    const rng = new Rng(4);
    checkLayer(new Conv2d(2, 3, 5, 6, 3, 1, BATCH, rng), rng, awayFromZero(rng));
  });

  it('Conv2d 5x5 without padding: input, weight and bias gradients', () => {
    const rng = new Rng(5);
    checkLayer(new Conv2d(3, 2, 7, 7, 5, 0, BATCH, rng), rng, awayFromZero(rng));
  });

  it('BatchNorm2d in training mode: input (through the batch statistics), scale and bias gradients', () => {
    const rng = new Rng(6);
    const layer = new BatchNorm2d(3, 4, 4, BATCH);
    for (let c = 0; c < 3; c++) {
      layer.scale.value[c] = 0.5 + rng.uniform();
      layer.shift.value[c] = rng.normal();
    }
    checkLayer(layer, rng, awayFromZero(rng));
  });

  it('MaxPool2d 2x2: input gradient, including odd sizes whose last row and column are dropped', () => {
    const rng = new Rng(7);
    checkLayer(new MaxPool2d(2, 5, 6, 2, BATCH), rng, distinctValues(rng));
  });

  it('Flatten passes values and gradients through unchanged', () => {
    const rng = new Rng(8);
    checkLayer(new Flatten([2, 3, 4]), rng, awayFromZero(rng));
  });

  it('softmax cross-entropy: gradient with respect to the logits', () => {
    const rng = new Rng(9);
    const classes = 5;
    const logits = new Float32Array(BATCH * classes).map(() => rng.normal() * 3);
    const labels = Uint8Array.from([0, 3, 4]);
    const grad = new Float32Array(logits.length);
    softmaxCrossEntropy(logits, labels, BATCH, classes, grad);
    const scratch = new Float32Array(logits.length);
    for (let i = 0; i < logits.length; i++) {
      const saved = logits[i]!;
      logits[i] = saved + EPS;
      const up = softmaxCrossEntropy(logits, labels, BATCH, classes, scratch);
      logits[i] = saved - EPS;
      const down = softmaxCrossEntropy(logits, labels, BATCH, classes, scratch);
      logits[i] = saved;
      expectClose((up - down) / (2 * EPS), grad[i]!, `logit[${i}]`);
    }
  });

  it('softmax cross-entropy stays finite on logits of 1e4 (max subtracted before exp)', () => {
    const logits = Float32Array.from([1e4, 0, -1e4, 1e4 - 1]);
    const grad = new Float32Array(4);
    const loss = softmaxCrossEntropy(logits, [1, 0], 2, 2, grad);
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(1e3);
    expect([...grad].every(Number.isFinite)).toBe(true);
  });
});

describe('Dense on raw inputs (no input gradient) skips zeros without changing a bit', () => {
  it('forward outputs and weight gradients equal the dense GEMM path exactly on 80%-zero inputs', () => {
    const batch = 7;
    const dense = new Dense(50, 9, batch, new Rng(10), true);
    const sparse = new Dense(50, 9, batch, new Rng(10), false);
    const rng = new Rng(11);
    const x = new Float32Array(batch * 50);
    for (let i = 0; i < x.length; i++) x[i] = rng.uniform() < 0.8 ? 0 : rng.uniform();
    const dy = new Float32Array(batch * 9).map(() => rng.normal());
    const yDense = Float32Array.from(dense.forward(x, batch));
    const ySparse = Float32Array.from(sparse.forward(x, batch));
    expect(Buffer.compare(Buffer.from(yDense.buffer), Buffer.from(ySparse.buffer))).toBe(0);
    dense.backward(dy, batch);
    sparse.backward(dy, batch);
    expect(Buffer.compare(Buffer.from(dense.weight.grad.buffer), Buffer.from(sparse.weight.grad.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(dense.bias.grad.buffer), Buffer.from(sparse.bias.grad.buffer))).toBe(0);
  });
});
