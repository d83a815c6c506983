import { describe, expect, it } from 'vitest';
import { budgetMisses, bySensitivity, chooseMetric, scoreOf, type EvaluationReport, type SensitivityLayer } from '../../../src/planner/index.ts';

function report(accuracy: number | null, agreement: number | null, cosine = 0.99): EvaluationReport {
  return {
    samples: 100,
    layout: 'npy',
    mode: 'batched',
    batchSize: 32,
    accuracy: accuracy === null ? null : { output: 'logits', top1: accuracy, top5: null, classes: 10, samples: 100 },
    fidelity: { against: 'reference-model', outputs: [{ output: 'logits', samples: 100, rowLength: 10, classes: 10, top1Agreement: agreement, meanCosine: cosine, relativeL2: 0.01, maxAbsError: 0.1 }] },
    timing: { runMs: 1, samplesPerSecond: 1, referenceRunMs: 1 },
  };
}

describe('accuracy metric', () => {
  it('labels win; without them class scores ([N, C] or [N, T, C]) use top-1 agreement and anything else cosine', () => {
    expect(chooseMetric(report(0.97, 1), 'logits', 2).kind).toBe('top1-labels');
    expect(chooseMetric(report(null, 1), 'logits', 2).kind).toBe('top1-agreement');
    expect(chooseMetric(report(null, 1), 'logits', 3).kind).toBe('top1-agreement');
    // A detector's [N, 1, H, W] probability map: an argmax along its width is no class.
    expect(chooseMetric(report(null, 1), 'logits', 4).kind).toBe('cosine');
    expect(chooseMetric(report(null, null), 'logits', 2).kind).toBe('cosine');
  });

  it('scores in points: top-1 %, agreement %, cosine × 100; the drop is against the given fp32 baseline', () => {
    expect(scoreOf(report(0.965, 0.99), { kind: 'top1-labels', output: 'logits' }, 97.3).drop).toBeCloseTo(0.8, 9);
    const agreement = scoreOf(report(null, 0.995), { kind: 'top1-agreement', output: 'logits' }, 100);
    expect(agreement.score).toBeCloseTo(99.5, 9);
    expect(agreement.disagreement).toBeCloseTo(0.005, 9);
    expect(scoreOf(report(null, null, 0.985), { kind: 'cosine', output: 'logits' }, 100).drop).toBeCloseTo(1.5, 9);
  });

  it('a drop equal to the budget meets it: 97.15 − 97.10 is 0.05 pt, not 0.05000000000001 (floating point)', () => {
    // 0.9710 × 100 is 97.1 in floating point, and 97.15 − 97.1 is 0.0500000000000114 unrounded.
    const score = scoreOf(report(0.971, 1), { kind: 'top1-labels', output: 'logits' }, 97.15);
    expect(score.drop).toBe(0.05);
    expect(budgetMisses({ maxAccuracyDrop: 0.05 }, { accuracyDrop: score.drop })).toEqual([]);
    expect(budgetMisses({ maxAccuracyDrop: 0.04 }, { accuracyDrop: score.drop }).map((m) => m.budget)).toEqual(['accuracy-drop']);
  });
});

describe('sensitivity ranking', () => {
  const layer = (node: string, drop: number, revertedDrop: number, error: number): SensitivityLayer => ({ node, opType: 'Gemm', macs: 1, drop, revertedDrop, error });

  it('the layer whose revert alone leaves the least drop comes first, even when alone in int8 it flips no more than the others (interaction)', () => {
    // mnist-mlp, int8-dynamic per-tensor, agreement on 2000 images (measured): each layer alone flips one image;
    // reverting fc2 alone from all-int8 recovers everything, reverting fc1 or fc3 leaves 0.10 pt.
    const layers = [layer('fc1', 0.05, 0.1, 6.7e-5), layer('fc2', 0.05, 0, 6.7e-6), layer('fc3', 0.05, 0.1, 8.2e-6)];
    expect([...layers].sort(bySensitivity).map((l) => l.node)).toEqual(['fc2', 'fc1', 'fc3']);
  });

  it('ties on the revert fall to the drop alone, then to the output error alone', () => {
    const layers = [layer('a', 0, 0.2, 1e-3), layer('b', 0.1, 0.2, 1e-6), layer('c', 0, 0.2, 1e-2)];
    expect([...layers].sort(bySensitivity).map((l) => l.node)).toEqual(['b', 'c', 'a']);
  });
});
