import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { birthSchema, telemetryBatchSchema } from '../../../src/telemetry/schemas.ts';
import { openTelemetry, type TelemetryService } from '../../../src/telemetry/service.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { checkOrderedComplete, serviceOptions, startCollector, testMqttConfig, type Collector } from './support.ts';

const BASE = 'edgevolve/v1/fleet-t/dev-1';

/**
 * A fake "3.1.1-only broker" (a hostile peer mosquitto cannot be made into): refuses an
 * MQTT 5 CONNECT with CONNACK return code 1 (unacceptable protocol version), as 3.1.1
 * brokers do, and forwards any other connection to the real mosquitto.
 */
async function v311OnlyProxy(targetPort: number): Promise<{ url: string; refusedV5: () => number; close: () => Promise<void> }> {
  let refused = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      // Fixed header (1) + remaining length (1-4) + protocol name (2 + 4) + level (1).
      let offset = 1;
      while (offset < head.length && ((head[offset] ?? 0) & 0x80) !== 0) offset += 1;
      const levelAt = offset + 1 + 6;
      if (head.length <= levelAt) return;
      client.off('data', onData);
      if (head[levelAt] === 5) {
        refused += 1;
        client.end(Buffer.from([0x20, 0x02, 0x00, 0x01]));
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1', () => {
        upstream.write(head);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    refusedV5: () => refused,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe.runIf(requireMosquitto())('telemetry link: protocol fallback, batching and gzip (real mosquitto)', () => {
  let broker: RunningMosquitto;
  let collector: Collector;
  let service: TelemetryService | undefined;
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeEach(async () => {
    broker = await startMosquitto();
    collector = await startCollector(broker.url, `${BASE}/#`);
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    await collector.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('falls back to MQTT 3.1.1 when the broker refuses 5, and says so in the birth', async () => {
    const proxy = await v311OnlyProxy(broker.port);
    try {
      service = openTelemetry(serviceOptions(tmp.dir, 'dev-1', testMqttConfig({ urls: [proxy.url] })));
      service.start();
      await service.link.waitConnected();
      expect(proxy.refusedV5()).toBe(1);
      expect(service.link.getStatus().protocol).toBe('3.1.1');
      await collector.until((m) => m.some((x) => x.topic === `${BASE}/state`));
      expect(birthSchema.parse(collector.messages.find((x) => x.topic === `${BASE}/state`)?.json).protocol).toBe('3.1.1');
    } finally {
      await service?.stop();
      service = undefined;
      await proxy.close();
    }
  });

  it('drains a backlog as gzipped batches of telemetry records, every seq once and in order', async () => {
    service = openTelemetry(serviceOptions(tmp.dir, 'dev-1', testMqttConfig({ urls: [broker.url], gzip: true, gzipMinBytes: 0, batchMaxMessages: 10 })));
    for (let i = 0; i < 30; i++) await service.tick();
    service.start();
    await collector.until(() => collector.seqs(`${BASE}/telemetry`).length >= 30);
    const telemetry = collector.messages.filter((x) => x.topic === `${BASE}/telemetry`);
    for (const m of telemetry) expect([m.payload[0], m.payload[1]]).toEqual([0x1f, 0x8b]);
    expect(telemetry.length).toBeLessThanOrEqual(3);
    expect(telemetryBatchSchema.parse(telemetry[0]?.json).batch).toHaveLength(10);
    const seqs = collector.seqs(`${BASE}/telemetry`);
    expect(checkOrderedComplete(seqs, Array.from({ length: 30 }, (_, i) => i + 1))).toEqual({ missing: [], outOfOrder: 0, duplicates: 0 });
  });
});
