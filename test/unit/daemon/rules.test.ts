import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/index.ts';
import { judgeTrial, LatencyWindow, percentile, planReload, precisionBits, resolveConfigFile, stepBreach, watchdogIntervalMs, type GateRules } from '../../../src/daemon/index.ts';

const RULES: GateRules = { minTrialMs: 1000, trialDeadlineMs: 10_000, minSamples: 10, maxErrorRate: 0.1, latencyTolerance: 0.2, latencyP95BudgetMs: 10 };
const ok = (samples: number, p95Ms: number | undefined, errors = 0) => ({ samples, errors, errorRate: samples === 0 ? 0 : errors / samples, p95Ms });

describe('judgeTrial: the health gate of a version on trial', () => {
  it('stays pending before the minimum trial time even with enough good samples', () => {
    expect(judgeTrial(ok(50, 5), 500, RULES).verdict).toBe('pending');
  });
  it('passes once time, samples, error rate and p95 are all within bounds', () => {
    expect(judgeTrial(ok(10, 11.9), 1000, RULES)).toMatchObject({ verdict: 'pass' });
  });
  it('fails early on an error rate over the limit once there are enough samples', () => {
    expect(judgeTrial(ok(10, 5, 2), 10, RULES)).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/error rate 20\.0% over 10 inferences exceeds 10\.0%/) as unknown });
  });
  it('does not judge the error rate on fewer samples than required', () => {
    expect(judgeTrial(ok(3, 5, 3), 2000, RULES).verdict).toBe('pending');
  });
  it('waits for a slow p95 until the deadline, then fails naming the budget', () => {
    expect(judgeTrial(ok(20, 12.5), 5000, RULES).verdict).toBe('pending');
    expect(judgeTrial(ok(20, 12.5), 10_000, RULES)).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/p95 12\.5 ms exceeds the budget 10\.0 ms \(\+20\.0%\)/) as unknown });
  });
  it('fails at the deadline when too few inferences were seen', () => {
    expect(judgeTrial(ok(4, 1), 10_000, RULES)).toMatchObject({ verdict: 'fail', reason: expect.stringMatching(/only 4 of 10 inferences/) as unknown });
  });
  it('has no latency rule without a budget', () => {
    expect(judgeTrial(ok(10, 1e6), 1000, { ...RULES, latencyP95BudgetMs: undefined }).verdict).toBe('pass');
  });
});

describe('LatencyWindow', () => {
  it('summarises only the outcomes inside the time window, p95 over successes only', () => {
    const w = new LatencyWindow(8);
    for (let i = 1; i <= 20; i++) w.record(i, i, i % 10 !== 0);
    // Capacity 8 keeps t=13..20; since t=15 leaves 15..20, of which 20 failed.
    const s = w.summary(15);
    expect(s).toEqual({ samples: 6, errors: 1, errorRate: 1 / 6, p95Ms: 19 });
  });
  it('reports no p95 without successful inferences', () => {
    const w = new LatencyWindow(4);
    w.record(0, 5, false);
    expect(w.summary().p95Ms).toBeUndefined();
  });
  it('percentile is nearest-rank', () => {
    expect(percentile(new Float64Array([5, 1, 4, 2, 3]), 0.95)).toBe(5);
    expect(percentile(new Float64Array([5, 1, 4, 2, 3]), 0.5)).toBe(3);
  });
});

describe('stepBreach: when the budget watch re-plans', () => {
  const rules = { breachForMs: 1000, minSamples: 5 };
  it('starts a breach, keeps it while p95 stays over, and re-plans after breachForMs', () => {
    let step = stepBreach(null, ok(10, 20), 10, 0, rules);
    expect(step).toEqual({ state: 0, replan: false });
    step = stepBreach(step.state, ok(10, 20), 10, 999, rules);
    expect(step).toEqual({ state: 0, replan: false });
    expect(stepBreach(step.state, ok(10, 20), 10, 1000, rules)).toEqual({ state: null, replan: true });
  });
  it('a window within budget ends the breach', () => {
    expect(stepBreach(0, ok(10, 9), 10, 500, rules)).toEqual({ state: null, replan: false });
  });
  it('a window with too few samples neither starts nor ends a breach', () => {
    expect(stepBreach(0, ok(2, 50), 10, 5000, rules)).toEqual({ state: 0, replan: false });
    expect(stepBreach(null, ok(2, 50), 10, 5000, rules)).toEqual({ state: null, replan: false });
  });
});

describe('planReload: what SIGHUP applies and what needs a restart', () => {
  const base = validateConfig({ stateDir: '/s', daemon: { models: [{ name: 'm', ref: 'oci-layout:/x:1' }] } }, 'test');
  it('applies log level, deploy gates, watchdog bounds and budgets', () => {
    const next = validateConfig(
      { stateDir: '/s', log: { level: 'debug' }, deploy: { maxErrorRate: 0.5 }, daemon: { watchdog: { maxEventLoopLagMs: 10 }, models: [{ name: 'm', ref: 'oci-layout:/x:1', budgets: { latencyP95Ms: 5 } }] } },
      'test',
    );
    const plan = planReload(base, next);
    expect([...plan.applied].sort()).toEqual(['daemon.models.budgets', 'daemon.watchdog', 'deploy', 'log.level']);
    expect(plan.needsRestart).toEqual([]);
  });
  it('names a change of a model\'s optimize settings apart from its budgets', () => {
    const next = validateConfig({ stateDir: '/s', daemon: { models: [{ name: 'm', ref: 'oci-layout:/x:1', optimize: 'always', optimizeTimeLimitS: 30 }] } }, 'test');
    expect(planReload(base, next)).toEqual({ applied: ['daemon.models.optimize'], needsRestart: [] });
  });
  it('says the state directory and the model list need a restart', () => {
    const next = validateConfig({ stateDir: '/other', daemon: { models: [{ name: 'n', ref: 'oci-layout:/x:1' }] } }, 'test');
    expect(planReload(base, next)).toEqual({ applied: [], needsRestart: ['stateDir', 'daemon.models (names or refs)'] });
  });
});

describe('small rules', () => {
  it('resolveConfigFile: the flag wins, then /etc/edgevolve/config.yaml when it exists, else none', () => {
    expect(resolveConfigFile('/a.yaml', () => true)).toBe('/a.yaml');
    expect(resolveConfigFile(undefined, (p) => p === '/etc/edgevolve/config.yaml')).toBe('/etc/edgevolve/config.yaml');
    expect(resolveConfigFile(undefined, () => false)).toBeUndefined();
  });
  it('watchdogIntervalMs: WATCHDOG_USEC in ms, only for our pid', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
  });
  it('precisionBits orders precisions for the re-plan', () => {
    expect([precisionBits('fp32'), precisionBits('fp16'), precisionBits('int8'), precisionBits('mixed')]).toEqual([32, 16, 8, 32]);
  });
});
