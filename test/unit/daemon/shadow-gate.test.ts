import { describe, expect, it } from 'vitest';
import { judgeShadow, type ShadowMeasured, type ShadowRules } from '../../../src/daemon/index.ts';

const RULES: ShadowRules = {
  minRequests: 100,
  maxDurationMs: 60_000,
  minAgreement: 0.98,
  maxLatencyRatio: 1.5,
  onNoTraffic: 'promote',
  maxErrorRate: 0.02,
  latencyTolerance: 0.2,
  latencyP95BudgetMs: undefined,
};

function measured(over: Partial<ShadowMeasured> = {}): ShadowMeasured {
  return { mirrored: 100, failed: 0, compared: 100, agreement: 0.99, metric: 'top1', liveLatencyMs: { p95: 2 }, candidateLatencyMs: { p95: 2.5 }, ...over };
}

describe('judgeShadow: the gate a candidate passes before its trial', () => {
  it('waits for minRequests mirrored requests, whatever they show so far', () => {
    expect(judgeShadow(measured({ mirrored: 99, compared: 99, agreement: 0.1 }), 1000, RULES)).toEqual({ verdict: 'pending', reason: '99/100 mirrored requests' });
  });

  it('passes with enough agreement and latency within the ratio, naming both', () => {
    const v = judgeShadow(measured(), 1000, RULES);
    expect(v).toMatchObject({ verdict: 'pass', evidence: true });
    expect(v.reason).toBe('agreement 99.0% (top1) over 100 mirrored requests, p95 2.50 ms vs live 2.00 ms');
  });

  it('fails on agreement below minAgreement, naming the measured agreement', () => {
    const v = judgeShadow(measured({ agreement: 0.93 }), 1000, RULES);
    expect(v).toEqual({ verdict: 'fail', reason: 'agreement 93.0% (top1) over 100 mirrored requests is below 98.0%', evidence: true });
  });

  it('fails a candidate slower than maxLatencyRatio times the live p95, or over the p95 budget', () => {
    expect(judgeShadow(measured({ candidateLatencyMs: { p95: 3.2 } }), 1000, RULES).reason).toBe('candidate p95 3.20 ms is 1.60x the live p95 2.00 ms (limit 1.5x) over 100 mirrored requests');
    const budget = judgeShadow(measured(), 1000, { ...RULES, latencyP95BudgetMs: 2 });
    expect(budget).toMatchObject({ verdict: 'fail' });
    expect(budget.reason).toMatch(/^candidate p95 2.50 ms exceeds the budget 2.00 ms \(\+20.0%\)/);
  });

  it('fails a candidate whose runs fail more often than maxErrorRate', () => {
    expect(judgeShadow(measured({ failed: 3, compared: 97 }), 1000, RULES)).toMatchObject({ verdict: 'fail', reason: 'candidate failed 3 of 100 mirrored requests (3.0% > 2.0%)' });
  });

  it('without enough traffic by maxDurationMs, promotes without evidence or rejects, as onNoTraffic says', () => {
    const idle = measured({ mirrored: 3, compared: 3 });
    expect(judgeShadow(idle, 60_000, RULES)).toEqual({
      verdict: 'pass',
      reason: 'only 3 of 100 requests mirrored within 60000.0 ms; promoted without shadow evidence (onNoTraffic: promote)',
      evidence: false,
    });
    expect(judgeShadow(idle, 60_000, { ...RULES, onNoTraffic: 'reject' })).toMatchObject({ verdict: 'fail', evidence: false });
  });
});
