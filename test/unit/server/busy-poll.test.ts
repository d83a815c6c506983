import { describe, expect, it } from 'vitest';
import { BusyPoll } from '../../../src/server/busy-poll.ts';

/** Lets `turns` event-loop turns pass (each setImmediate runs after the chain's pending one). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('BusyPoll', () => {
  it('keeps spinning while the window is open and stops at the first turn after it closes', async () => {
    let now = 1000;
    const poll = new BusyPoll(5, () => now);
    poll.touch();
    expect(poll.spinning).toBe(true);
    await turns(20);
    expect(poll.spinning).toBe(true);
    now += 4.9;
    await turns(5);
    expect(poll.spinning).toBe(true);
    now += 0.1;
    await turns(2);
    expect(poll.spinning).toBe(false);
    expect(poll.spunMs).toBeCloseTo(5, 9);
  });

  it('extends the window from the last touch, and a touch after it closed starts a new one', async () => {
    let now = 0;
    const poll = new BusyPoll(5, () => now);
    poll.touch();
    now = 4;
    poll.touch();
    now = 8;
    await turns(3);
    expect(poll.spinning).toBe(true);
    now = 9;
    await turns(2);
    expect(poll.spinning).toBe(false);
    now = 100;
    poll.touch();
    expect(poll.spinning).toBe(true);
    now = 105;
    await turns(2);
    expect(poll.spinning).toBe(false);
    expect(poll.spunMs).toBeCloseTo(14, 9);
  });

  it('does nothing with a window of 0, and nothing after stop()', async () => {
    const off = new BusyPoll(0, () => 0);
    off.touch();
    expect(off.spinning).toBe(false);

    let now = 0;
    const poll = new BusyPoll(5, () => now);
    poll.touch();
    now = 2;
    poll.stop();
    expect(poll.spinning).toBe(false);
    expect(poll.spunMs).toBe(2);
    poll.touch();
    await turns(2);
    expect(poll.spinning).toBe(false);
  });
});
