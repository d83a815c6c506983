import { describe, expect, it } from 'vitest';
import { MIB, budgetMisses, describeMiss, relaxAdvice, validateBudgets } from '../../../src/planner/index.ts';
import { codeOf } from '../../helpers/error-code.ts';

describe('planner budgets', () => {
  it('reports every exceeded budget with the amount over it, and nothing for unknown numbers', () => {
    const misses = budgetMisses(
      { latencyP95Ms: 1, memoryMB: 10, sizeMB: 2, maxAccuracyDrop: 0.5 },
      { sizeBytes: 3 * MIB, p95Ms: 1.5, peakBytes: null, accuracyDrop: 0.25 },
    );
    expect(misses.map((m) => [m.budget, m.over])).toEqual([
      ['size', 1],
      ['latency-p95', 0.5],
    ]);
    expect(describeMiss(misses[1]!)).toBe('latency-p95 1.500 ms > 1.000 ms (+50%)');
  });

  it('meeting a budget exactly is not a miss', () => {
    expect(budgetMisses({ maxAccuracyDrop: 0.5, latencyP95Ms: 2 }, { accuracyDrop: 0.5, p95Ms: 2 })).toEqual([]);
  });

  it('advises a relaxed value that admits the candidate (rounded up, not to nearest)', () => {
    const [miss] = budgetMisses({ latencyP95Ms: 1 }, { p95Ms: 1.23449 });
    expect(relaxAdvice(miss!)).toBe('--latency-p95 1.235');
    const [drop] = budgetMisses({ maxAccuracyDrop: 0.5 }, { accuracyDrop: 0.701 });
    expect(relaxAdvice(drop!)).toBe('--max-accuracy-drop 0.71');
  });

  it('refuses non-finite, negative or zero budgets with E_PLAN_BUDGET_INVALID naming the flag, but allows a zero accuracy drop', () => {
    expect(codeOf(() => validateBudgets({ latencyP95Ms: 0 }))).toBe('E_PLAN_BUDGET_INVALID');
    expect(codeOf(() => validateBudgets({ memoryMB: Number.NaN }))).toBe('E_PLAN_BUDGET_INVALID');
    expect(codeOf(() => validateBudgets({ maxAccuracyDrop: -1 }))).toBe('E_PLAN_BUDGET_INVALID');
    expect(() => validateBudgets({ sizeMB: -2 })).toThrow(/--size -2/);
    expect(validateBudgets({ maxAccuracyDrop: 0 })).toEqual({ maxAccuracyDrop: 0 });
  });
});
