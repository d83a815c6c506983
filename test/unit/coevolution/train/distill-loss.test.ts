import { describe, expect, it } from 'vitest';
import { distillationLoss, Rng, softmaxCrossEntropy, softmaxRows } from '../../../../src/coevolution/train/index.ts';

const CLASSES = 5;
const BATCH = 3;

function randomLogits(rng: Rng): Float32Array {
  return Float32Array.from({ length: BATCH * CLASSES }, () => rng.normal() * 2);
}

describe('distillationLoss', () => {
  it('matches central finite differences of its own value (T=3, alpha=0.6)', () => {
    const rng = new Rng(11);
    const logits = randomLogits(rng);
    const teacher = new Float32Array(BATCH * CLASSES);
    softmaxRows(randomLogits(rng), BATCH, CLASSES, 3, teacher);
    const labels = [0, 3, 4];
    const grad = new Float32Array(BATCH * CLASSES);
    distillationLoss(logits, teacher, labels, BATCH, CLASSES, 3, 0.6, grad);
    const scratch = new Float32Array(BATCH * CLASSES);
    for (let i = 0; i < logits.length; i++) {
      const probe = Float64Array.from(logits);
      const at = (delta: number): number => {
        const moved = Float32Array.from(probe, (v, j) => (j === i ? v + delta : v));
        return distillationLoss(moved, teacher, labels, BATCH, CLASSES, 3, 0.6, scratch);
      };
      const numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
      expect(Math.abs(numeric - grad[i]!), `logit ${i}`).toBeLessThan(2e-3);
    }
  });

  it('is cross-entropy with the labels when alpha is 0', () => {
    const rng = new Rng(12);
    const logits = randomLogits(rng);
    const teacher = new Float32Array(BATCH * CLASSES).fill(1 / CLASSES);
    const labels = [1, 2, 0];
    const gradKd = new Float32Array(BATCH * CLASSES);
    const gradCe = new Float32Array(BATCH * CLASSES);
    const kd = distillationLoss(logits, teacher, labels, BATCH, CLASSES, 4, 0, gradKd);
    const ce = softmaxCrossEntropy(logits, labels, BATCH, CLASSES, gradCe);
    expect(kd).toBeCloseTo(ce, 5);
    for (let i = 0; i < gradCe.length; i++) expect(gradKd[i]).toBeCloseTo(gradCe[i]!, 6);
  });

  it('has zero soft loss and gradient when the student already matches the teacher at T', () => {
    const rng = new Rng(13);
    const logits = randomLogits(rng);
    const teacher = new Float32Array(BATCH * CLASSES);
    softmaxRows(logits, BATCH, CLASSES, 2, teacher);
    const grad = new Float32Array(BATCH * CLASSES);
    const loss = distillationLoss(logits, teacher, [0, 0, 0], BATCH, CLASSES, 2, 1, grad);
    expect(loss).toBeCloseTo(0, 5);
    for (const g of grad) expect(Math.abs(g)).toBeLessThan(1e-6);
  });
});
