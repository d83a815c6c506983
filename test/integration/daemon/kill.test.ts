import { describe, expect, it } from 'vitest';
import { runKillTest } from '../../../scripts/kill-test.ts';

describe('power loss during an update (scripts/kill-test.ts, few runs; `npx tsx scripts/kill-test.ts --runs 50` for the full count)', () => {
  it('after a SIGKILL at a random point of pull, activation or trial, the restarted daemon serves the old or the new version, never neither', async () => {
    const result = await runKillTest({ runs: 3, seed: 7 });
    expect(result.runs).toHaveLength(3);
    for (const run of result.runs) {
      expect(['1.0.0', '2.0.0']).toContain(run.served);
      expect(run.inferenceOk).toBe(true);
    }
    expect(result.failures).toEqual([]);
  }, 600_000);
});
