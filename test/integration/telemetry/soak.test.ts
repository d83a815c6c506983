/**
 * A short reconnect storm (the full one is `npm run mqtt-soak`): 30 telemetry services in
 * one process lose a real mosquitto for 2 s under steady telemetry. Claims: nothing is
 * lost or reordered (by per-device seq), every device reconnects, and the
 * devices' first reconnect attempts are spread over the backoff window by the jitter (a
 * seeded PRNG, so the draw is the same in every run), not bunched in one 100 ms.
 * The spread is checked on the attempts' planned instants (the link's backoff sleeps), a
 * property of the jitter rather than of this machine's timing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { peakInWindow, runSoak } from './soak.ts';

const DEVICES = 30;

describe.runIf(requireMosquitto())('reconnect storm: a whole fleet loses the broker at once (real mosquitto)', () => {
  let broker: RunningMosquitto;
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeEach(async () => {
    tmp = await makeTempDir();
    broker = await startMosquitto({ persistence: true, extraConfig: ['max_queued_messages 1000000', 'set_tcp_nodelay true'] });
  });
  afterEach(async () => {
    await broker.close();
    await tmp.cleanup();
  });

  it(`${DEVICES} devices: 0 lost, in order, all reconnected, first attempts spread by the jitter (no 100 ms window holds half of them)`, async () => {
    const report = await runSoak({
      broker,
      stateDir: tmp.dir,
      devices: DEVICES,
      outageMs: 2000,
      telemetryIntervalMs: 200,
      steadyMs: 600,
      reconnect: { initialDelayMs: 500, maxDelayMs: 4000, multiplier: 2 },
      timeoutMs: 30_000,
      jitter: true,
      seed: 1,
    });
    expect(report.produced).toBeGreaterThan(DEVICES * 10);
    expect(report.backlogMessages).toBeGreaterThan(DEVICES * 5);
    expect({ lost: report.lost, outOfOrder: report.outOfOrder, dropped: report.dropped, notReconnected: report.notReconnected }).toEqual({ lost: 0, outOfOrder: 0, dropped: 0, notReconnected: 0 });
    expect(report.backlogDrainMs).toBeDefined();
    // Every device made at least its first retry after the broker vanished.
    expect(report.attemptTimes.length).toBeGreaterThanOrEqual(DEVICES);
    // The storm is every device's first attempt: with full jitter they spread over the first
    // backoff window (500 ms) instead of landing together, as the lockstep baseline's do.
    expect(report.firstAttemptTimes).toHaveLength(DEVICES);
    expect(peakInWindow(report.firstAttemptTimes, 100)).toBeLessThan(DEVICES / 2);
  });
});
