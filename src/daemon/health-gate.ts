/**
 * The health gate a version on trial must pass (reliability.md P2), and the shadow gate a
 * candidate must pass before its trial: pure verdicts from what was measured so far, so
 * every rule is tested without a clock.
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

export interface ShadowRules {
  readonly minRequests: number;
  readonly maxDurationMs: number;
  readonly minAgreement: number;
  readonly maxLatencyRatio: number;
  readonly onNoTraffic: 'promote' | 'reject';
  /** Shared with the trial gate: the highest share of failed candidate runs. */
  readonly maxErrorRate: number;
  readonly latencyTolerance: number;
  readonly latencyP95BudgetMs: number | undefined;
}

/** What the shadow gate reads of a mirror's statistics (runtime/serving ShadowStats). */
export interface ShadowMeasured {
  readonly mirrored: number;
  readonly failed: number;
  readonly compared: number;
  readonly agreement: number | undefined;
  readonly metric: string | undefined;
  readonly liveLatencyMs: { readonly p95: number } | undefined;
  readonly candidateLatencyMs: { readonly p95: number } | undefined;
}

export type ShadowVerdict =
  | { readonly verdict: 'pending'; readonly reason: string }
  /** `evidence` false: promoted by `onNoTraffic` when too few requests were mirrored in time. */
  | { readonly verdict: 'pass'; readonly reason: string; readonly evidence: boolean }
  | { readonly verdict: 'fail'; readonly reason: string; readonly evidence: boolean };

/**
 * Judged once `minRequests` were mirrored, not before: agreement over a handful of
 * requests says little, and the candidate costs nothing while the serving version answers.
 */
export function judgeShadow(measured: ShadowMeasured, elapsedMs: number, rules: ShadowRules): ShadowVerdict {
  if (measured.mirrored < rules.minRequests) {
    if (elapsedMs < rules.maxDurationMs) return { verdict: 'pending', reason: `${measured.mirrored}/${rules.minRequests} mirrored requests` };
    const reason = `only ${measured.mirrored} of ${rules.minRequests} requests mirrored within ${ms(rules.maxDurationMs)}`;
    return rules.onNoTraffic === 'promote'
      ? { verdict: 'pass', reason: `${reason}; promoted without shadow evidence (onNoTraffic: promote)`, evidence: false }
      : { verdict: 'fail', reason: `${reason}; rejected (onNoTraffic: reject)`, evidence: false };
  }
  const errorRate = measured.failed / measured.mirrored;
  if (errorRate > rules.maxErrorRate) {
    return { verdict: 'fail', reason: `candidate failed ${measured.failed} of ${measured.mirrored} mirrored requests (${pct(errorRate)} > ${pct(rules.maxErrorRate)})`, evidence: true };
  }
  const agreement = measured.agreement ?? 0;
  const over = `over ${measured.compared} mirrored requests`;
  if (agreement < rules.minAgreement) {
    return { verdict: 'fail', reason: `agreement ${pct(agreement)} (${measured.metric ?? 'none'}) ${over} is below ${pct(rules.minAgreement)}`, evidence: true };
  }
  const live = measured.liveLatencyMs?.p95;
  const candidate = measured.candidateLatencyMs?.p95;
  const latency = live === undefined || candidate === undefined ? '' : `, p95 ${ms(candidate)} vs live ${ms(live)}`;
  if (live !== undefined && candidate !== undefined) {
    // A live p95 near zero (timer resolution) must not make any candidate look infinitely slower.
    const ratio = candidate / Math.max(live, 0.01);
    if (ratio > rules.maxLatencyRatio) {
      return { verdict: 'fail', reason: `candidate p95 ${ms(candidate)} is ${ratio.toFixed(2)}x the live p95 ${ms(live)} (limit ${rules.maxLatencyRatio}x) ${over}`, evidence: true };
    }
    const limit = rules.latencyP95BudgetMs === undefined ? undefined : rules.latencyP95BudgetMs * (1 + rules.latencyTolerance);
    if (limit !== undefined && candidate > limit) {
      return { verdict: 'fail', reason: `candidate p95 ${ms(candidate)} exceeds the budget ${ms(rules.latencyP95BudgetMs ?? 0)} (+${pct(rules.latencyTolerance)}) ${over}`, evidence: true };
    }
  }
  return { verdict: 'pass', reason: `agreement ${pct(agreement)} (${measured.metric ?? 'none'}) ${over}${latency}`, evidence: true };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function ms(x: number): string {
  return `${x.toFixed(x < 10 ? 2 : 1)} ms`;
}
