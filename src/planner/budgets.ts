/**
 * Budgets the user sets for `edgevolve optimize`, and how far a measured candidate
 * misses each one. Pure: numbers in, misses out. MB means MiB (2^20 bytes), as the
 * bench prints memory.
 */
import { EdgevolveError } from '../errors/index.ts';

export const MIB = 1024 * 1024;

/** Any subset; an absent budget is not checked. */
export interface Budgets {
  /** p95 latency of one run (at the search's batch, 1 by default) in the isolated bench, ms. */
  readonly latencyP95Ms?: number;
  /** Peak resident memory of the bench process above its baseline, MiB. */
  readonly memoryMB?: number;
  /** Size of the model file, MiB. */
  readonly sizeMB?: number;
  /** Points of the accuracy score (top-1 %, agreement % or cosine × 100) the candidate may lose against fp32. */
  readonly maxAccuracyDrop?: number;
}

export type Objective = 'accuracy' | 'latency' | 'size';
export const OBJECTIVES: readonly Objective[] = ['accuracy', 'latency', 'size'];

export type BudgetName = 'latency-p95' | 'memory' | 'size' | 'accuracy-drop';

/** One budget a candidate misses: by how much, in the budget's unit. */
export interface BudgetMiss {
  readonly budget: BudgetName;
  readonly limit: number;
  readonly actual: number;
  /** actual − limit (> 0). */
  readonly over: number;
  readonly unit: 'ms' | 'MiB' | 'pt';
}

/** What is known of a candidate so far; unknown numbers are not checked. */
export interface KnownNumbers {
  readonly sizeBytes?: number | null;
  readonly p95Ms?: number | null;
  readonly peakBytes?: number | null;
  readonly accuracyDrop?: number | null;
}

/** Checks budgets from outside (flags, config): finite and positive (the accuracy drop may be 0). */
export function validateBudgets(budgets: Budgets): Budgets {
  const check = (name: string, value: number | undefined, allowZero: boolean): void => {
    if (value === undefined) return;
    if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
      throw new EdgevolveError('E_PLAN_BUDGET_INVALID', `${name} ${value}: expected a ${allowZero ? 'non-negative' : 'positive'} number`, { context: { budget: name, value } });
    }
  };
  check('--latency-p95', budgets.latencyP95Ms, false);
  check('--memory', budgets.memoryMB, false);
  check('--size', budgets.sizeMB, false);
  check('--max-accuracy-drop', budgets.maxAccuracyDrop, true);
  return budgets;
}

export function hasAnyBudget(budgets: Budgets): boolean {
  return budgets.latencyP95Ms !== undefined || budgets.memoryMB !== undefined || budgets.sizeMB !== undefined || budgets.maxAccuracyDrop !== undefined;
}

/** Every budget the known numbers exceed. */
export function budgetMisses(budgets: Budgets, known: KnownNumbers): BudgetMiss[] {
  const misses: BudgetMiss[] = [];
  const add = (budget: BudgetName, limit: number | undefined, actual: number | null | undefined, unit: BudgetMiss['unit']): void => {
    if (limit === undefined || actual === undefined || actual === null) return;
    if (actual > limit) misses.push({ budget, limit, actual, over: actual - limit, unit });
  };
  add('size', budgets.sizeMB, known.sizeBytes == null ? null : known.sizeBytes / MIB, 'MiB');
  add('latency-p95', budgets.latencyP95Ms, known.p95Ms, 'ms');
  add('memory', budgets.memoryMB, known.peakBytes == null ? null : known.peakBytes / MIB, 'MiB');
  add('accuracy-drop', budgets.maxAccuracyDrop, known.accuracyDrop, 'pt');
  return misses;
}

/** "latency-p95 1.20 ms > 1.00 ms (+20%)". */
export function describeMiss(miss: BudgetMiss): string {
  const digits = miss.unit === 'ms' ? 3 : 2;
  const relative = miss.limit > 0 ? ` (+${((miss.over / miss.limit) * 100).toFixed(0)}%)` : '';
  return `${miss.budget} ${miss.actual.toFixed(digits)} ${miss.unit} > ${miss.limit.toFixed(digits)} ${miss.unit}${relative}`;
}

/** The flag a user would relax for a miss, with the value that the candidate would have met. */
export function relaxAdvice(miss: BudgetMiss): string {
  const flag = { 'latency-p95': '--latency-p95', memory: '--memory', size: '--size', 'accuracy-drop': '--max-accuracy-drop' }[miss.budget];
  const digits = miss.unit === 'ms' ? 3 : 2;
  // Round up so that the advised value really admits the candidate.
  const step = 10 ** -digits;
  return `${flag} ${(Math.ceil(miss.actual / step) * step).toFixed(digits)}`;
}
