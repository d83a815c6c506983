/**
 * The optimize and config commands end to end: a daemon started in-process with its real
 * store, KServe slots and planner, a real mosquitto, commands signed with a fleet key and
 * sent the way the cloud sends them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePrivateKey, sendCommand, type FleetSigningKey } from '../../../src/control/index.ts';
import { overlayPath } from '../../../src/daemon/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { OciLayout, pushArtifact } from '../../../src/registry/index.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';
import { MLP } from './fixtures.ts';

const CALIB = 'test/fixtures/data/mnist-calib';
const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };

describe.runIf(requireMosquitto())('signed optimize and config commands over a real broker', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let broker: RunningMosquitto;
  let handle: DaemonHandle | undefined;
  let client: MqttClient | undefined;
  let signer: FleetSigningKey;
  let configFile: string;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-commands-');
    broker = await startMosquitto();
    const pair = generateKeyPairSync('ed25519');
    signer = parsePrivateKey('fleet-key', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const layout = new OciLayout(join(tmp.dir, 'oci'));
    await layout.init();
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    configFile = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), {
      mqtt: { urls: [broker.url], fleet: 'f1', deviceId: 'dev1' },
      control: { publicKeys: { 'fleet-key': pair.publicKey.export({ type: 'spki', format: 'pem' }) as string } },
      daemon: { seedFixtures: false, models: [{ name: 'mlp', ref: `oci-layout:${join(tmp.dir, 'oci')}:1.0.0` }] },
      planner: { subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2 },
    });
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
    client = await connectAsync(broker.url, { clientId: 'operator' });
  });
  afterEach(async () => {
    await client?.endAsync();
    await handle?.stop();
    await broker.close();
    await tmp.cleanup();
  });

  const send = async (type: 'optimize' | 'config', payload: unknown, timeoutMs = 30_000) => {
    const outcome = await sendCommand(client!, { fleet: 'f1', device: 'dev1', type, payload, signer, timeoutMs });
    const result = outcome.results.get('dev1')?.result;
    if (result === undefined) throw new Error(`no result for ${type} within ${timeoutMs} ms`);
    return result;
  };

  it('optimize builds an int8 variant on the device and serves it after its gate; it is still served after a restart', async () => {
    expect(handle!.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual(['fp32']);
    const result = await send('optimize', { budgets: { sizeMb: 0.5, maxAccuracyDropPct: 5 }, methods: ['int8-dynamic'] }, 120_000);
    expect(result).toMatchObject({
      status: 'done',
      result: { model: 'mlp', parent: '1.0.0/fp32', outcome: 'built', chosen: expect.stringMatching(/^int8-dynamic/) as unknown, deployed: true, deploy: 'committed', cached: false },
    });
    const variant = String(result.result?.variant);
    expect(handle!.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
    expect(handle!.daemon.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ model: 'mlp', trigger: 'command', outcome: 'built', parent: '1.0.0/fp32', variant }]);

    await handle!.stop();
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
    expect(handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
    await handle.daemon.reconcileAll('test');
    expect(handle.daemon.runtimeStatus().served.map((m) => m.variant)).toEqual([variant]);
  }, 180_000);

  it('a config patch with a bad value or a key only a restart can change is rejected with a result naming the key and changes nothing', async () => {
    const before = handle!.daemon.config;
    const bad = await send('config', { patch: { deploy: { maxErrorRate: 5 } } });
    expect(bad).toMatchObject({ status: 'rejected', error: { code: 'E_CONTROL_INVALID_PAYLOAD', message: expect.stringContaining('deploy.maxErrorRate') as unknown } });
    const unknown = await send('config', { patch: { deploy: { maxErrorRat: 0.1 } } });
    expect(unknown).toMatchObject({ status: 'rejected', error: { message: expect.stringContaining('maxErrorRat') as unknown } });
    const restart = await send('config', { patch: { server: { port: 1234 } } });
    expect(restart).toMatchObject({ status: 'rejected', error: { message: expect.stringContaining('server.port cannot change while the daemon runs') as unknown } });
    expect(handle!.daemon.config).toBe(before);
    await expect(access(overlayPath(before.stateDir))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a good config patch changes the running configuration and survives a restart through the overlay file', async () => {
    expect(handle!.daemon.config.deploy.maxErrorRate).toBe(0.02);
    const good = await send('config', { patch: { deploy: { maxErrorRate: 0.1 }, daemon: { reconcileIntervalMs: 600_000 } } });
    expect(good).toMatchObject({ status: 'done', result: { overlay: overlayPath(handle!.config.stateDir) } });
    expect([...(good.result?.changed as string[])].sort()).toEqual(['daemon.reconcileIntervalMs', 'deploy']);
    expect(handle!.daemon.config.deploy.maxErrorRate).toBe(0.1);
    expect(handle!.daemon.config.daemon.reconcileIntervalMs).toBe(600_000);

    await handle!.stop();
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
    expect(handle.daemon.config.deploy.maxErrorRate).toBe(0.1);
    expect(handle.daemon.config.daemon.reconcileIntervalMs).toBe(600_000);
    // Untouched keys keep the file's values.
    expect(handle.daemon.config.deploy.minSamples).toBe(5);
  });
});
