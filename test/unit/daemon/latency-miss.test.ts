/**
 * missedLatencyBudget reads the deployment outcome's reason, which the gates write as text:
 * these cases run the real gates so that a change of their wording fails here, not in the field.
 */
import { describe, expect, it } from 'vitest';
import { judgeShadow, judgeTrial, missedLatencyBudget, type GateRules, type ShadowRules } from '../../../src/daemon/index.ts';

const TRIAL: GateRules = { minTrialMs: 0, trialDeadlineMs: 1000, minSamples: 5, maxErrorRate: 0.1, latencyTolerance: 0.2, latencyP95BudgetMs: 10 };
const SHADOW: ShadowRules = { minRequests: 5, maxDurationMs: 1000, minAgreement: 0.9, maxLatencyRatio: 100, onNoTraffic: 'reject', maxErrorRate: 0.1, latencyTolerance: 0.2, latencyP95BudgetMs: 10 };
const shadowStats = (candidateP95: number, agreement = 1) => ({ mirrored: 10, failed: 0, compared: 10, agreement, metric: 'top1', liveLatencyMs: { p95: 1 }, candidateLatencyMs: { p95: candidateP95 } });

function failReason(verdict: { verdict: string; reason: string }): string {
  expect(verdict.verdict).toBe('fail');
  return `health gate failed: ${verdict.reason}`;
}

describe('missedLatencyBudget: which rollbacks lead to a lighter variant', () => {
  it('is true for a trial that failed its p95 budget at the deadline, sub-millisecond budgets included', () => {
    expect(missedLatencyBudget(failReason(judgeTrial({ samples: 20, errors: 0, errorRate: 0, p95Ms: 25 }, 1000, TRIAL)))).toBe(true);
    expect(missedLatencyBudget(failReason(judgeTrial({ samples: 20, errors: 0, errorRate: 0, p95Ms: 0.05 }, 1000, { ...TRIAL, latencyP95BudgetMs: 0.000001 })))).toBe(true);
  });
  it('is true for a shadow rejected over the budget', () => {
    expect(missedLatencyBudget(`shadow gate failed: ${judgeShadow(shadowStats(30), 10, SHADOW).reason}`)).toBe(true);
  });
  it('is false for errors, too few samples, disagreement, a load failure and a state loop', () => {
    expect(missedLatencyBudget(failReason(judgeTrial({ samples: 20, errors: 10, errorRate: 0.5, p95Ms: 25 }, 10, TRIAL)))).toBe(false);
    expect(missedLatencyBudget(failReason(judgeTrial({ samples: 2, errors: 0, errorRate: 0, p95Ms: 25 }, 1000, TRIAL)))).toBe(false);
    expect(missedLatencyBudget(`shadow gate failed: ${judgeShadow(shadowStats(1, 0.5), 10, SHADOW).reason}`)).toBe(false);
    expect(missedLatencyBudget('cannot load 1.0.0/fp32: E_RUNTIME_LOAD: bad model')).toBe(false);
    expect(missedLatencyBudget('state loop detected: the daemon restarted 3 times with this version on trial (limit 2)')).toBe(false);
  });
});
