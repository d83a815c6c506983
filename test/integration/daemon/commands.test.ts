/**
 * The optimize and config commands end to end: a daemon started in-process with its real
 * store, KServe slots and planner, a real mosquitto, commands signed with a fleet key and
 * sent the way the cloud sends them.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { overlayPath } from '../../../src/daemon/index.ts';
import { OciLayout, pushArtifact } from '../../../src/registry/index.ts';
import { requireMosquitto } from '../../helpers/mosquitto.ts';
import { MLP } from './fixtures.ts';
import { startFleetRig, type FleetRig } from './fleet-rig.ts';

const CALIB = 'test/fixtures/data/mnist-calib';

describe.runIf(requireMosquitto())('signed optimize and config commands over a real broker', () => {
  let rig: FleetRig;
  beforeEach(async () => {
    rig = await startFleetRig('edgevolve-commands-', async (dir) => {
      const layout = new OciLayout(join(dir, 'oci'));
      await layout.init();
      await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
      return {
        daemon: { seedFixtures: false, models: [{ name: 'mlp', ref: `oci-layout:${join(dir, 'oci')}:1.0.0` }] },
        planner: { subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2 },
      };
    });
  });
  afterEach(async () => {
    await rig.close();
  });

  it('optimize builds an int8 variant on the device and serves it after its gate; it is still served after a restart', async () => {
    expect(rig.handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual(['fp32']);
    const result = await rig.send('optimize', { budgets: { sizeMb: 0.5, maxAccuracyDropPct: 5 }, methods: ['int8-dynamic'] }, 120_000);
    expect(result).toMatchObject({
      status: 'done',
      result: { model: 'mlp', parent: '1.0.0/fp32', outcome: 'built', chosen: expect.stringMatching(/^int8-dynamic/) as unknown, deployed: true, deploy: 'committed', cached: false },
    });
    const variant = String(result.result?.variant);
    expect(rig.handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
    expect(rig.handle.daemon.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ model: 'mlp', trigger: 'command', outcome: 'built', parent: '1.0.0/fp32', variant }]);

    const handle = await rig.restart();
    expect(handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
    await handle.daemon.reconcileAll('test');
    expect(handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
  }, 180_000);

  it('a config patch with a bad value or a key only a restart can change is rejected with a result naming the key and changes nothing', async () => {
    const before = rig.handle.daemon.config;
    const bad = await rig.send('config', { patch: { deploy: { maxErrorRate: 5 } } });
    expect(bad).toMatchObject({ status: 'rejected', error: { code: 'E_CONTROL_INVALID_PAYLOAD', message: expect.stringContaining('deploy.maxErrorRate') as unknown } });
    const unknown = await rig.send('config', { patch: { deploy: { maxErrorRat: 0.1 } } });
    expect(unknown).toMatchObject({ status: 'rejected', error: { message: expect.stringContaining('maxErrorRat') as unknown } });
    const restart = await rig.send('config', { patch: { server: { port: 1234 } } });
    expect(restart).toMatchObject({ status: 'rejected', error: { message: expect.stringContaining('server.port cannot change while the daemon runs') as unknown } });
    expect(rig.handle.daemon.config).toBe(before);
    await expect(access(overlayPath(before.stateDir))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a good config patch changes the running configuration and survives a restart through the overlay file', async () => {
    expect(rig.handle.daemon.config.deploy.maxErrorRate).toBe(0.02);
    const good = await rig.send('config', { patch: { deploy: { maxErrorRate: 0.1 }, daemon: { reconcileIntervalMs: 600_000 } } });
    expect(good).toMatchObject({ status: 'done', result: { overlay: overlayPath(rig.handle.config.stateDir) } });
    expect([...(good.result?.changed as string[])].sort()).toEqual(['daemon.reconcileIntervalMs', 'deploy']);
    expect(rig.handle.daemon.config.deploy.maxErrorRate).toBe(0.1);
    expect(rig.handle.daemon.config.daemon.reconcileIntervalMs).toBe(600_000);

    const handle = await rig.restart();
    expect(handle.daemon.config.deploy.maxErrorRate).toBe(0.1);
    expect(handle.daemon.config.daemon.reconcileIntervalMs).toBe(600_000);
    // Untouched keys keep the file's values.
    expect(handle.daemon.config.deploy.minSamples).toBe(5);
  });
});
