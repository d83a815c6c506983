/**
 * Fleet commands against a running shadow, end to end: a daemon started in-process with its
 * KServe slots, a real mosquitto and Ed25519-signed commands. The command channel runs one
 * state-changing command at a time, and the deploy command whose candidate is in shadow
 * holds that slot; a rollback or a deploy of another ref queued behind it must still cancel
 * the shadow at once (src/daemon/preemption.ts), not after deploy.shadow.maxDurationMs.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireMosquitto } from '../../helpers/mosquitto.ts';
import { CNN, publish } from './fixtures.ts';
import { startFleetRig, type FleetRig } from './fleet-rig.ts';

/** No traffic reaches the shadow and it would wait ten minutes: only a cancellation ends it within the test's timeout. */
const SHADOW = { enabled: true, share: 1, minRequests: 1_000_000, maxDurationMs: 600_000, onNoTraffic: 'reject' };

describe.runIf(requireMosquitto())('rollback and deploy commands queued behind a deploy command in shadow', () => {
  let rig: FleetRig;
  let oci: string;
  beforeEach(async () => {
    rig = await startFleetRig('edgevolve-shadow-commands-', async (dir) => {
      oci = join(dir, 'oci');
      for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) await publish(oci, version, [{ name: 'fp32', modelPath: CNN }]);
      return { daemon: { seedFixtures: false, models: [{ name: 'm', ref: `oci-layout:${oci}:1.0.0` }] }, deploy: { shadow: SHADOW } };
    });
  });
  afterEach(async () => {
    await rig.close();
  });

  const send = (type: 'deploy' | 'rollback', payload: unknown) => rig.send(type, payload, 45_000);
  const shadowOf = async (version: string): Promise<void> => {
    // Shown in status once the candidate's session runs beside the live one.
    for (let i = 0; i < 2000 && !rig.handle.daemon.runtimeStatus().shadows.some((s) => s.version === version); i++) await sleep(10);
    expect(rig.handle.daemon.runtimeStatus().shadows.map((s) => s.version)).toEqual([version]);
  };
  const served = (): string[] => rig.handle.daemon.runtimeStatus().served.map((m) => m.version);

  it('a rollback ends the shadow at once (the candidate abandoned, 1.0.0 kept, nothing rolled back further); a deploy of another ref supersedes one', async () => {
    expect(served()).toEqual(['1.0.0']);

    const deploy2 = send('deploy', { ref: `oci-layout:${oci}:2.0.0` });
    await shadowOf('2.0.0');
    const rollback = await send('rollback', {});
    expect(rollback).toMatchObject({ status: 'done', result: { outcome: 'rolled-back', to: { version: '1.0.0' }, reason: 'rollback command: the candidate in shadow was abandoned; 1.0.0/fp32 kept serving' } });
    expect(await deploy2).toMatchObject({ status: 'failed', error: { code: 'E_DEPLOY_SUPERSEDED', message: expect.stringMatching(/: shadow cancelled after 0 mirrored requests: rollback command$/) as unknown } });
    expect(served()).toEqual(['1.0.0']);

    const deploy3 = send('deploy', { ref: `oci-layout:${oci}:3.0.0` });
    await shadowOf('3.0.0');
    const deploy4 = send('deploy', { ref: `oci-layout:${oci}:4.0.0` });
    expect(await deploy3).toMatchObject({ status: 'failed', error: { code: 'E_DEPLOY_SUPERSEDED', message: expect.stringContaining(`superseded by the deploy command for oci-layout:${oci}:4.0.0`) as unknown } });
    await shadowOf('4.0.0');
    expect(await send('rollback', {})).toMatchObject({ status: 'done', result: { outcome: 'rolled-back', to: { version: '1.0.0' } } });
    expect(await deploy4).toMatchObject({ status: 'failed', error: { code: 'E_DEPLOY_SUPERSEDED' } });

    // 1.0.0 served throughout; the rolled-back candidates are remembered as failed, the superseded one is not.
    expect(served()).toEqual(['1.0.0']);
    const failed = (await rig.handle.daemon.report()).models.find((m) => m.name === 'm')?.failed.map((f) => f.reason);
    expect(failed).toEqual(['shadow cancelled after 0 mirrored requests: rollback command', 'shadow cancelled after 0 mirrored requests: rollback command']);
    expect(rig.handle.daemon.runtimeStatus().shadows).toEqual([]);
  }, 60_000);
});
