import { describe, expect, it } from 'vitest';
import { runDemo } from '../../../scripts/coevolution-demo.ts';
import { requireMosquitto } from '../../helpers/mosquitto.ts';
import { requireRegistry } from '../../helpers/registry-server.ts';

/**
 * scripts/coevolution-demo.ts in a small form: 2 devices, 600 field requests, 3 epochs on
 * the mined samples plus 300 replayed digits, over real mosquitto and docker-registry. The
 * full demo's goals (+5 points, cascade <= 20% / >= half the gap) are asserted by the
 * in-process round test with the full stream; here every stage must run and improve.
 */
describe.runIf(requireMosquitto() && requireRegistry())('co-evolution demo, small form (real broker and registry)', () => {
  it('mines, uploads, distils a better student, publishes it and rolls it out to every device', async () => {
    const result = await runDemo({ devices: 2, epochs: 3, replay: 300, stream: 600 });
    expect(result.inferences).toBe(600);
    expect(result.hardSamples).toBeGreaterThan(100);
    expect(result.live.offloadShare).toBeGreaterThan(0);
    expect(result.live.cascadeAccuracy).toBeGreaterThan(result.live.studentAccuracy);
    expect(result.studentFieldAfter).toBeGreaterThan(result.studentFieldBefore);
    expect(result.rollout?.outcome).toBe('promoted');
    expect(result.fleetView.map((d) => d.version)).toEqual(['1.1.0', '1.1.0']);
    expect(result.secondsFromFirstHardSampleToAllServing).toBeGreaterThan(0);
  }, 120_000);
});
