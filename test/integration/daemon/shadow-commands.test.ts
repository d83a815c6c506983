/**
 * Fleet commands against a running shadow, end to end: a daemon started in-process with its
 * KServe slots, a real mosquitto and Ed25519-signed commands. The command channel runs one
 * state-changing command at a time, and the deploy command whose candidate is in shadow
 * holds that slot; a rollback or a deploy of another ref queued behind it must still cancel
 * the shadow at once (src/daemon/preemption.ts), not after deploy.shadow.maxDurationMs.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePrivateKey, sendCommand, type FleetSigningKey } from '../../../src/control/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';
import { CNN, publish } from './fixtures.ts';

const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };
/** No traffic reaches the shadow and it would wait ten minutes: only a cancellation ends it within the test's timeout. */
const SHADOW = { enabled: true, share: 1, minRequests: 1_000_000, maxDurationMs: 600_000, onNoTraffic: 'reject' };

describe.runIf(requireMosquitto())('rollback and deploy commands queued behind a deploy command in shadow', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let broker: RunningMosquitto;
  let handle: DaemonHandle | undefined;
  let client: MqttClient | undefined;
  let signer: FleetSigningKey;
  let oci: string;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-shadow-commands-');
    broker = await startMosquitto();
    const pair = generateKeyPairSync('ed25519');
    signer = parsePrivateKey('fleet-key', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    oci = join(tmp.dir, 'oci');
    for (const version of ['1.0.0', '2.0.0', '3.0.0', '4.0.0']) await publish(oci, version, [{ name: 'fp32', modelPath: CNN }]);
    const configFile = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), {
      mqtt: { urls: [broker.url], fleet: 'f1', deviceId: 'dev1' },
      control: { publicKeys: { 'fleet-key': pair.publicKey.export({ type: 'spki', format: 'pem' }) as string } },
      daemon: { seedFixtures: false, models: [{ name: 'm', ref: `oci-layout:${oci}:1.0.0` }] },
      deploy: { shadow: SHADOW },
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

  const send = async (type: 'deploy' | 'rollback', payload: unknown) => {
    const outcome = await sendCommand(client!, { fleet: 'f1', device: 'dev1', type, payload, signer, timeoutMs: 45_000 });
    const result = outcome.results.get('dev1')?.result;
    if (result === undefined) throw new Error(`no result for ${type} ${JSON.stringify(payload)} within 45 s`);
    return result;
  };
  const shadowOf = async (version: string): Promise<void> => {
    // Shown in status once the candidate's session runs beside the live one.
    for (let i = 0; i < 2000 && !handle!.daemon.runtimeStatus().shadows.some((s) => s.version === version); i++) await sleep(10);
    expect(handle!.daemon.runtimeStatus().shadows.map((s) => s.version)).toEqual([version]);
  };
  const served = (): string[] => handle!.daemon.runtimeStatus().served.map((m) => m.version);

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
    const failed = (await handle!.daemon.report()).models.find((m) => m.name === 'm')?.failed.map((f) => f.reason);
    expect(failed).toEqual(['shadow cancelled after 0 mirrored requests: rollback command', 'shadow cancelled after 0 mirrored requests: rollback command']);
    expect(handle!.daemon.runtimeStatus().shadows).toEqual([]);
  }, 60_000);
});
