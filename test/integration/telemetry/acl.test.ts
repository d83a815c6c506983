import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTelemetry } from '../../../src/telemetry/service.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { serviceOptions, startCollector, testMqttConfig, type Collector } from './support.ts';

const ACL_FILE = join(import.meta.dirname, '..', '..', '..', 'config', 'mosquitto', 'acl');
const USERS = { 'dev-a': 'pa', 'dev-b': 'pb', 'cloud-fleet-a': 'pc', 'cloud-fleet-b': 'pd' };

describe.runIf(requireMosquitto())('config/mosquitto/acl on a real mosquitto: each device reaches only its own subtree', () => {
  let broker: RunningMosquitto;
  let cloud: Collector;
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    broker = await startMosquitto({ aclFile: ACL_FILE, users: USERS, extraConfig: ['use_username_as_clientid true'] });
    cloud = await startCollector(broker.url, 'edgevolve/v1/fleet-a/#', { username: 'cloud-fleet-a', password: 'pc' });
    tmp = await makeTempDir();
  });
  afterAll(async () => {
    await cloud.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('lets a device publish telemetry under its own id and receive its commands; the fleet cloud sees both', async () => {
    const service = openTelemetry(serviceOptions(tmp.dir, 'dev-a', testMqttConfig({ urls: [broker.url], fleet: 'fleet-a', username: 'dev-a', password: 'pa' })));
    const commands: string[] = [];
    service.onCommand((topic) => commands.push(topic));
    service.start();
    await service.link.waitConnected();
    await service.tick();
    await cloud.until((m) => m.some((x) => x.topic === 'edgevolve/v1/fleet-a/dev-a/telemetry'));
    await cloud.client.publishAsync('edgevolve/v1/fleet-a/dev-a/cmd', 'ping', { qos: 1 });
    await expect.poll(() => commands).toEqual(['edgevolve/v1/fleet-a/dev-a/cmd']);
    await service.stop();
  });

  it('refuses (PUBACK not authorized) a device publishing into another device\'s subtree, and nothing reaches the cloud', async () => {
    const devB = await mqtt.connectAsync(broker.url, { username: 'dev-b', password: 'pb', protocolVersion: 5, reconnectPeriod: 0 });
    const refused = await devB.publishAsync('edgevolve/v1/fleet-a/dev-a/telemetry', 'forged', { qos: 1 }).then(
      () => 'accepted',
      (err: { code?: number }) => err.code,
    );
    expect(refused).toBe(0x87);
    await devB.publishAsync('edgevolve/v1/fleet-a/dev-b/telemetry', 'own', { qos: 1 });
    await cloud.until((m) => m.some((x) => x.payload.toString() === 'own'));
    expect(cloud.messages.some((x) => x.payload.toString() === 'forged')).toBe(false);
    await devB.endAsync();
  });

  it('delivers nothing of another device to a device subscribed to #, not even its commands', async () => {
    const devB = await mqtt.connectAsync(broker.url, { username: 'dev-b', password: 'pb', protocolVersion: 5, reconnectPeriod: 0 });
    const seen: string[] = [];
    devB.on('message', (topic) => seen.push(topic));
    await devB.subscribeAsync('#', { qos: 1 });
    await cloud.client.publishAsync('edgevolve/v1/fleet-a/dev-a/cmd', 'secret', { qos: 1 });
    await cloud.client.publishAsync('edgevolve/v1/fleet-a/dev-b/cmd', 'mine', { qos: 1 });
    await expect.poll(() => seen).toContain('edgevolve/v1/fleet-a/dev-b/cmd');
    expect(seen.filter((t) => t.includes('/dev-a/'))).toEqual([]);
    await devB.endAsync();
  });

  it('keeps a fleet cloud user out of other fleets and a device from pretending to be another by client id', async () => {
    const cloudB = await mqtt.connectAsync(broker.url, { username: 'cloud-fleet-b', password: 'pd', protocolVersion: 5, reconnectPeriod: 0 });
    const code = await cloudB.publishAsync('edgevolve/v1/fleet-a/dev-a/cmd', 'hijack', { qos: 1 }).then(
      () => 'accepted',
      (err: { code?: number }) => err.code,
    );
    expect(code).toBe(0x87);
    await cloudB.endAsync();
    // use_username_as_clientid: dev-b asking for client id dev-a still gets dev-b's rights.
    const spoof = await mqtt.connectAsync(broker.url, { username: 'dev-b', password: 'pb', clientId: 'dev-a', protocolVersion: 5, reconnectPeriod: 0 });
    const spoofed = await spoof.publishAsync('edgevolve/v1/fleet-a/dev-a/events', 'spoof', { qos: 1 }).then(
      () => 'accepted',
      (err: { code?: number }) => err.code,
    );
    expect(spoofed).toBe(0x87);
    await spoof.endAsync();
  });
});
