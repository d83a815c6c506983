import { describe, expect, it } from 'vitest';
import { isHard, lowConfidenceBoxShare, scoreLogits } from '../../../src/coevolution/index.ts';
import { codeOf } from '../../helpers/error-code.ts';

describe('scoreLogits', () => {
  it('gives max probability 1/k, margin 0 and normalized entropy 1 for equal logits', () => {
    const s = scoreLogits([2, 2, 2, 2], 0, 4);
    expect(s.maxProbability).toBeCloseTo(0.25, 9);
    expect(s.margin).toBeCloseTo(0, 9);
    expect(s.normalizedEntropy).toBeCloseTo(1, 9);
  });

  it('reads the requested row and agrees with a hand-computed softmax', () => {
    const logits = [0, 0, 0, Math.log(3), Math.log(1), 0];
    const s = scoreLogits(logits, 1, 3);
    // softmax = [3/5, 1/5, 1/5]
    expect(s.maxProbability).toBeCloseTo(0.6, 9);
    expect(s.margin).toBeCloseTo(0.4, 9);
    const h = -(0.6 * Math.log(0.6) + 2 * 0.2 * Math.log(0.2));
    expect(s.normalizedEntropy).toBeCloseTo(h / Math.log(3), 9);
  });

  it('does not overflow on huge logits', () => {
    const s = scoreLogits([1000, 0, -1000], 0, 3);
    expect(s.maxProbability).toBe(1);
    expect(s.normalizedEntropy).toBeGreaterThanOrEqual(0);
  });

  it('rejects a row past the end with E_COEVO_INVALID', () => {
    expect(codeOf(() => scoreLogits([1, 2, 3], 1, 3))).toBe('E_COEVO_INVALID');
  });
});

describe('isHard', () => {
  const unsure = { maxProbability: 0.4, margin: 0.05, normalizedEntropy: 0.9 };
  const sure = { maxProbability: 0.99, margin: 0.98, normalizedEntropy: 0.02 };
  it('fires when any configured criterion says so and never without criteria', () => {
    expect(isHard(unsure, {})).toBe(false);
    expect(isHard(unsure, { maxProbabilityBelow: 0.5 })).toBe(true);
    expect(isHard(unsure, { marginBelow: 0.01, normalizedEntropyAbove: 0.8 })).toBe(true);
    expect(isHard(sure, { maxProbabilityBelow: 0.5, marginBelow: 0.3, normalizedEntropyAbove: 0.5 })).toBe(false);
  });
});

describe('lowConfidenceBoxShare', () => {
  it('counts kept boxes below the confident threshold, ignoring dropped boxes', () => {
    expect(lowConfidenceBoxShare([0.05, 0.3, 0.4, 0.9, 0.95], 0.25, 0.5)).toBeCloseTo(0.5, 9);
    expect(lowConfidenceBoxShare([0.01, 0.02], 0.25, 0.5)).toBe(0);
  });
});
