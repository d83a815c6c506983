import { describe, expect, it } from 'vitest';
import { uniform01 } from '../../../src/data/prng.ts';
import { backoffCeiling, backoffDelay } from '../../../src/telemetry/backoff.ts';

const POLICY = { initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2 };

describe('reconnect backoff', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    expect([0, 1, 2, 5, 6, 7, 100].map((a) => backoffCeiling(a, POLICY))).toEqual([1000, 2000, 4000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('spreads a fleet of 1000 devices reconnecting after the same outage over the whole window (full jitter), never past the ceiling', () => {
    const random = { random: uniform01(7) };
    const delays = Array.from({ length: 1000 }, () => backoffDelay(3, POLICY, random));
    const ceiling = backoffCeiling(3, POLICY);
    expect(Math.max(...delays)).toBeLessThan(ceiling);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    // Ten equal slices of the window each get roughly a tenth: no lockstep at one instant.
    const slices = new Array<number>(10).fill(0);
    for (const d of delays) slices[Math.floor((d / ceiling) * 10)] = (slices[Math.floor((d / ceiling) * 10)] ?? 0) + 1;
    for (const count of slices) expect(count).toBeGreaterThan(60);
  });
});
