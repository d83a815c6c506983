import { describe, expect, it } from 'vitest';
import { runKillTest } from '../../../scripts/kill-test.ts';

describe('power loss during a shadow (scripts/kill-test.ts --scenario shadow, few runs; `--runs 50` for the full count)', () => {
  it('SIGKILLed during shadow, promotion or trial under live traffic, the restarted daemon serves the old or the new version; a kill in every re-entered shadow ends with the candidate abandoned', async () => {
    // Run 1: one kill at a random point of the shadow or after its promotion. Run 2: a storm, killed in each re-entered shadow.
    const result = await runKillTest({ runs: 2, seed: 3, scenario: 'shadow', stormEvery: 2 });
    expect(result.runs).toHaveLength(2);
    for (const run of result.runs) {
      expect(['1.0.0', '2.0.0']).toContain(run.served);
      expect(run.inferenceOk).toBe(true);
      expect(run.maxShadowEntries).toBeLessThanOrEqual(3);
    }
    const storm = result.runs[1]!;
    // A storm sends no traffic, so every kill lands in the shadow and the re-entries reach the limit.
    expect(storm).toMatchObject({ kills: 3, phaseAtKill: 'shadowing', maxShadowEntries: 3, abandoned: true, served: '1.0.0' });
    expect(result.failures).toEqual([]);
  }, 600_000);
});
