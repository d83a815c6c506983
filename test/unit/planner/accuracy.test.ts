import { describe, expect, it } from 'vitest';
import { chooseMetric, scoreOf, type EvaluationReport } from '../../../src/planner/index.ts';

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
});
