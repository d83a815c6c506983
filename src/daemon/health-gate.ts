/**
 * The health gate a version on trial must pass (reliability.md P2): a pure verdict from
 * what was measured since the trial began, so every rule is tested without a clock.
 */
import type { WindowSummary } from './latency-window.ts';

export interface GateRules {
  readonly minTrialMs: number;
  readonly trialDeadlineMs: number;
  readonly minSamples: number;
  readonly maxErrorRate: number;
  /** p95 may exceed the budget by this fraction. */
  readonly latencyTolerance: number;
  /** The model's p95 budget, ms; no latency rule without one. */
  readonly latencyP95BudgetMs: number | undefined;
}

export type GateVerdict =
  | { readonly verdict: 'pending'; readonly reason: string }
  | { readonly verdict: 'pass'; readonly reason: string }
  | { readonly verdict: 'fail'; readonly reason: string };

export function judgeTrial(measured: WindowSummary, elapsedMs: number, rules: GateRules): GateVerdict {
  const enough = measured.samples >= rules.minSamples;
  // Errors fail early once there are enough samples: no reason to serve a broken model longer.
  if (enough && measured.errorRate > rules.maxErrorRate) {
    return { verdict: 'fail', reason: `error rate ${pct(measured.errorRate)} over ${measured.samples} inferences exceeds ${pct(rules.maxErrorRate)}` };
  }
  const limit = rules.latencyP95BudgetMs === undefined ? undefined : rules.latencyP95BudgetMs * (1 + rules.latencyTolerance);
  const slow = limit !== undefined && measured.p95Ms !== undefined && measured.p95Ms > limit;
  if (elapsedMs >= rules.minTrialMs && enough) {
    if (!slow) return { verdict: 'pass', reason: `${measured.samples} inferences, error rate ${pct(measured.errorRate)}${measured.p95Ms === undefined ? '' : `, p95 ${ms(measured.p95Ms)}`}` };
  }
  if (elapsedMs >= rules.trialDeadlineMs) {
    if (!enough) return { verdict: 'fail', reason: `only ${measured.samples} of ${rules.minSamples} inferences within the ${ms(rules.trialDeadlineMs)} trial deadline` };
    return { verdict: 'fail', reason: `p95 ${ms(measured.p95Ms ?? 0)} exceeds the budget ${ms(rules.latencyP95BudgetMs ?? 0)} (+${pct(rules.latencyTolerance)}) at the trial deadline` };
  }
  return { verdict: 'pending', reason: slow ? `p95 ${ms(measured.p95Ms ?? 0)} over the budget so far` : `${measured.samples}/${rules.minSamples} inferences` };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function ms(x: number): string {
  return `${x.toFixed(x < 10 ? 2 : 1)} ms`;
}
