import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlCommander } from '../../../src/coevolution/cloud/index.ts';
import { CommandChannel, CommandStore, controlConfigSchema, controlSettings, mqttCommandTransport, parsePrivateKey, parsePublicKey, type CommandHandlers } from '../../../src/control/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';

const FLEET = 'coevo';

describe.runIf(requireMosquitto())('rollout commands through src/control (real mosquitto, real command channel)', () => {
  let broker: RunningMosquitto;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    broker = await startMosquitto();
    tmp = await makeTempDir();
  }, 20_000);
  afterAll(async () => {
    await broker.close();
    await tmp.cleanup();
  });

  it('deploy and rollback reach the device as signed commands; true only when the device answered done', async () => {
    const pair = generateKeyPairSync('ed25519');
    const signer = parsePrivateKey('k1', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const publicKey = parsePublicKey('k1', pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const calls: string[] = [];
    const handlers: CommandHandlers = {
      deploy: (payload) => {
        calls.push(`deploy ${payload.ref}`);
        if (payload.ref.endsWith(':bad')) return Promise.reject(new EdgevolveError('E_REGISTRY_NOT_FOUND', 'no such tag'));
        return Promise.resolve({ version: '1.1.0' });
      },
      rollback: () => {
        calls.push('rollback');
        return Promise.resolve({});
      },
    };
    const deviceClient: MqttClient = await mqtt.connectAsync(broker.url, { clientId: 'dev-1', reconnectPeriod: 0 });
    const store = CommandStore.open(join(tmp.dir, 'dev-1-control.db'));
    const channel = new CommandChannel({
      address: { fleet: FLEET, device: 'dev-1' },
      transport: await mqttCommandTransport(deviceClient, { fleet: FLEET, device: 'dev-1' }),
      store, handlers, keys: new Map([['k1', publicKey]]),
      settings: controlSettings(controlConfigSchema.parse({})), clock: systemClock, logger: silentLogger(),
    });
    await channel.start();
    const cloud = await mqtt.connectAsync(broker.url, { clientId: 'cloud', reconnectPeriod: 0 });
    try {
      const commander = controlCommander(cloud, { fleet: FLEET, signer, timeoutMs: 5000 });
      expect(await commander.deploy('dev-1', 'reg/student:1.1.0')).toBe(true);
      expect(await commander.rollback('dev-1')).toBe(true);
      expect(await commander.deploy('dev-1', 'reg/student:bad')).toBe(false);
      expect(calls).toEqual(['deploy reg/student:1.1.0', 'rollback', 'deploy reg/student:bad']);
    } finally {
      await cloud.endAsync();
      await channel.stop(1000);
      store.close();
      await deviceClient.endAsync();
    }
  }, 30_000);
});
