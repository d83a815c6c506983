import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readTlsMaterial } from '../../../src/telemetry/link.ts';
import { birthSchema } from '../../../src/telemetry/schemas.ts';
import { openTelemetry, type TelemetryService } from '../../../src/telemetry/service.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { serviceOptions, startCollector, testMqttConfig, type Collector } from './support.ts';

const ACL_FILE = join(import.meta.dirname, '..', '..', '..', 'config', 'mosquitto', 'acl');

describe.runIf(requireMosquitto())('telemetry over mqtts with mTLS (certificate CN = device id) on a real mosquitto', () => {
  let broker: RunningMosquitto;
  let cloud: Collector | undefined;
  let service: TelemetryService | undefined;
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeEach(async () => {
    broker = await startMosquitto({
      tls: { requireCertificate: true, useIdentityAsUsername: true },
      aclFile: ACL_FILE,
      allowAnonymous: false,
      extraConfig: ['use_username_as_clientid true'],
    });
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    await cloud?.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('connects with the CA and a client certificate read from files, and its birth reaches the fleet cloud', async () => {
    const tls = broker.tls;
    if (tls === undefined) throw new Error('tls expected');
    const cloudCert = tls.issueClientCert('cloud-fleet-a');
    cloud = await startCollector(broker.url, 'edgevolve/v1/fleet-a/#', { ca: tls.ca, cert: cloudCert.cert, key: cloudCert.key });
    const device = tls.issueClientCert('dev-a');
    const config = testMqttConfig({ urls: [broker.url], fleet: 'fleet-a', caFile: tls.caPath, certFile: device.certPath, keyFile: device.keyPath });
    const material = await readTlsMaterial(config, (p) => readFile(p));
    service = openTelemetry({ ...serviceOptions(tmp.dir, 'dev-a', config), tls: material });
    service.start();
    await service.link.waitConnected();
    await cloud.until((m) => m.some((x) => x.topic === 'edgevolve/v1/fleet-a/dev-a/state'));
    expect(birthSchema.parse(cloud.messages.find((x) => x.topic.endsWith('/state'))?.json).device).toBe('dev-a');
  });

  it('never connects with a certificate from another CA, and keeps committing to the outbox', async () => {
    const tls = broker.tls;
    if (tls === undefined) throw new Error('tls expected');
    const rogue = tls.issueUntrustedClientCert('dev-a');
    service = openTelemetry({ ...serviceOptions(tmp.dir, 'dev-a', testMqttConfig({ urls: [broker.url], fleet: 'fleet-a' })), tls: { ca: tls.ca, cert: rogue.cert, key: rogue.key } });
    service.start();
    await service.tick();
    await expect.poll(() => service!.link.getStatus().attempts, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    expect(service.link.getStatus().connects).toBe(0);
    expect(service.outbox.stats().rows).toBe(2); // agent-start and one telemetry record
  });

  it('names the unreadable TLS file with E_TELEMETRY_TLS_FILE', async () => {
    await expect(readTlsMaterial({ caFile: join(tmp.dir, 'missing.crt') }, (p) => readFile(p))).rejects.toMatchObject({ code: 'E_TELEMETRY_TLS_FILE' });
  });
});
