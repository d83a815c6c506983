import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { birthSchema, deathSchema, eventSchema, telemetryPayloadSchema } from '../../../src/telemetry/schemas.ts';
import { openTelemetry, type TelemetryService } from '../../../src/telemetry/service.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { checkOrderedComplete, serviceOptions, startCollector, testMqttConfig, testTelemetryConfig, type Collector } from './support.ts';

const BASE = 'edgevolve/v1/fleet-t/dev-1';

describe.runIf(requireMosquitto())('telemetry link against a real mosquitto', () => {
  let broker: RunningMosquitto | undefined;
  let collector: Collector | undefined;
  let service: TelemetryService | undefined;
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await service?.stop();
    await collector?.close();
    await broker?.close();
    service = undefined;
    collector = undefined;
    broker = undefined;
    await cleanup();
  });

  it('publishes a retained birth, drains events and telemetry in seq order, hands commands to the handler and sends acks through the outbox', async () => {
    broker = await startMosquitto();
    collector = await startCollector(broker.url, 'edgevolve/v1/fleet-t/#');
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url] })));
    const commands: string[] = [];
    service.onCommand((topic, payload) => commands.push(`${topic} ${payload.toString()}`));
    service.start();
    await service.link.waitConnected();
    for (let i = 0; i < 20; i++) await service.tick();
    for (let i = 0; i < 5; i++) service.event('deploy', 'info', `deploy ${i}`, { i });
    await service.publish(`${BASE}/cmd/c-1/ack`, JSON.stringify({ id: 'c-1' }));
    await collector.client.publishAsync(`${BASE}/cmd`, 'hello', { qos: 1 });
    await collector.client.publishAsync('edgevolve/v1/fleet-t/$all/cmd', 'everyone', { qos: 1 });
    await collector.until((m) => m.filter((x) => x.topic === `${BASE}/events`).length >= 6 && collector!.seqs(`${BASE}/telemetry`).length >= 20 && m.some((x) => x.topic.endsWith('/ack')));
    await expect.poll(() => commands.length).toBe(2);
    expect(commands).toEqual([`${BASE}/cmd hello`, 'edgevolve/v1/fleet-t/$all/cmd everyone']);

    const birth = collector.messages.find((m) => m.topic === `${BASE}/state`);
    expect(birthSchema.parse(birth?.json).model).toEqual({ name: 'mnist-mlp', precision: 'int8' });
    const telemetry = collector.messages.filter((m) => m.topic === `${BASE}/telemetry`);
    for (const m of telemetry) expect(telemetryPayloadSchema.safeParse(m.json).success).toBe(true);
    const events = collector.messages.filter((m) => m.topic === `${BASE}/events`);
    for (const m of events) expect(eventSchema.safeParse(m.json).success).toBe(true);
    const seqs = collector.seqs(`${BASE}/telemetry`);
    expect(checkOrderedComplete(seqs, seqs).outOfOrder).toBe(0);
    await expect.poll(() => service!.outbox.stats().rows).toBe(0);

    // A late subscriber still finds the retained birth.
    const late = await startCollector(broker.url, `${BASE}/state`);
    await late.until((m) => m.length > 0);
    expect(late.messages[0]?.retain).toBe(true);
    await late.close();
  });

  it('refuses to publish outside its own subtree and over maxPayloadBytes, with typed errors', async () => {
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [], maxPayloadBytes: 100 })));
    await expect(service.publish('edgevolve/v1/fleet-t/dev-2/telemetry', 'x')).rejects.toMatchObject({ code: 'E_TELEMETRY_TOPIC' });
    await expect(service.publish(`${BASE}/#`, 'x')).rejects.toMatchObject({ code: 'E_TELEMETRY_TOPIC' });
    await expect(service.publish(`${BASE}/samples`, Buffer.alloc(101))).rejects.toMatchObject({ code: 'E_TELEMETRY_PAYLOAD_TOO_LARGE' });
    expect(service.outbox.stats().rows).toBe(0);
  });

  it('commits a budget-violation event when an interval breaks the latency budget', async () => {
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [] })));
    service.recorder.setBudgets({ latencyP95Ms: 5 });
    for (let i = 0; i < 100; i++) service.recorder.recordInference(30, true);
    await service.tick();
    const events = service.outbox.peek(1, 0, 10).map((m) => eventSchema.parse(JSON.parse(m.payload.toString())));
    expect(events.map((e) => e.type)).toEqual(['budget-violation']);
    expect(events[0]?.message).toContain('latency p95');
  });

  it('turns a full disk (real SQLITE_FULL) into storage-degraded and storage-recovered events and keeps ticking', async () => {
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [] })));
    for (let i = 0; i < 20; i++) await service.tick();
    const db = service.outbox.database;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    for (let i = 0; i < 40; i++) await service.tick();
    await new Promise((r) => setImmediate(r));
    db.pragma('max_page_count = 1073741823');
    await service.tick();
    await new Promise((r) => setImmediate(r));
    const types = service.outbox.peek(1, 0, 100).map((m) => eventSchema.parse(JSON.parse(m.payload.toString())).type);
    expect(types).toContain('storage-degraded');
    expect(types).toContain('storage-recovered');
    expect(service.outbox.stats().degraded).toBe(false);
    expect(service.outbox.stats().droppedTotal.metric).toBeGreaterThan(0);
  });

  it('group-commits the publishes of one event-loop turn: 200 concurrent publishes are one transaction, and each resolves only once its row is readable from another connection', async () => {
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [] })));
    const reader = new Database(join(dir, 'telemetry.db'), { readonly: true });
    try {
      const walFrames = (mode: 'TRUNCATE' | 'PASSIVE'): number => (service!.outbox.database.pragma(`wal_checkpoint(${mode})`) as { log: number }[])[0]?.log ?? 0;
      await service.publish(`${BASE}/samples`, 'warm');
      expect(walFrames('TRUNCATE')).toBe(0);
      const visibleAtResolve: number[] = [];
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          service!.publish(`${BASE}/cmd/c${i}/ack`, `{"i":${i}}`).then(() => {
            visibleAtResolve.push(reader.prepare('SELECT count(*) FROM outbox').pluck().get() as number);
          }),
        ),
      );
      expect(Math.min(...visibleAtResolve)).toBe(201);
      // One commit of 200 small rows writes a handful of pages; 200 commits would write at least 200 frames.
      expect(walFrames('PASSIVE')).toBeLessThan(20);
    } finally {
      reader.close();
    }
  });

  it('rejects a publish the full outbox could not store with E_TELEMETRY_OUTBOX_FULL (real SQLITE_FULL, no metrics left to evict)', async () => {
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [] })));
    await service.publish(`${BASE}/cmd/c1/result`, Buffer.alloc(2000, 0x61));
    const db = service.outbox.database;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    await expect(service.publish(`${BASE}/cmd/c2/result`, Buffer.alloc(64 * 1024, 0x62))).rejects.toMatchObject({ code: 'E_TELEMETRY_OUTBOX_FULL' });
    expect(service.outbox.stats().droppedTotal.event).toBe(1);
    db.pragma('max_page_count = 1073741823');
  });

  it('sets the retained death through the Last Will when the connection is lost, and on a clean stop', async () => {
    broker = await startMosquitto();
    collector = await startCollector(broker.url, `${BASE}/state`);
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url] })));
    service.start();
    await service.link.waitConnected();
    await collector.until((m) => m.some((x) => (x.json as { status?: string }).status === 'online'));
    const birth = birthSchema.parse(collector.messages.at(-1)?.json);
    // Kick the device off the broker without a DISCONNECT: a second client with the same id takes over the session.
    const usurper = await mqtt.connectAsync(broker.url, { clientId: 'dev-1', reconnectPeriod: 0 });
    await collector.until((m) => m.some((x) => (x.json as { status?: string }).status === 'offline'));
    const death = deathSchema.parse(collector.messages.find((x) => (x.json as { status?: string }).status === 'offline')?.json);
    expect(death).toMatchObject({ reason: 'connection-lost', session: birth.session });
    await usurper.endAsync(true);
    await service.link.waitConnected();
    await collector.until((m) => m.filter((x) => (x.json as { status?: string }).status === 'online').length >= 2);
    await service.stop();
    service = undefined;
    await collector.until((m) => m.some((x) => (x.json as { reason?: string }).reason === 'shutdown'));
  });

  it('loses nothing when the broker is stopped under steady telemetry and restarted: every seq arrives, in order', async () => {
    broker = await startMosquitto({ persistence: true });
    collector = await startCollector(broker.url, `${BASE}/telemetry`);
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url], batchMaxMessages: 10 })));
    service.start();
    await service.link.waitConnected();
    const produce = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        await service!.tick();
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
      }
    };
    await produce(100);
    await broker.stop();
    await produce(200);
    expect(service.link.getStatus().state).not.toBe('connected');
    await broker.start();
    await produce(100);
    const last = service.outbox.lastSeq();
    await collector.until(() => new Set(collector!.seqs(`${BASE}/telemetry`)).size >= 400, 30_000);
    const seqs = collector.seqs(`${BASE}/telemetry`);
    const expected = Array.from({ length: last }, (_, i) => i + 1).filter((s) => s !== 1); // seq 1 is the agent-start event
    const check = checkOrderedComplete(seqs, expected);
    expect(check.missing).toEqual([]);
    expect(check.outOfOrder).toBe(0);
    await expect.poll(() => service!.outbox.stats().rows).toBe(0);
  });

  it('starts with the broker unreachable, keeps committing, and drains everything once it is up', async () => {
    broker = await startMosquitto({ persistence: true });
    collector = await startCollector(broker.url, `${BASE}/#`);
    await broker.stop();
    service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url] })));
    service.start();
    for (let i = 0; i < 50; i++) await service.tick();
    service.event('rollback', 'warning', 'rolled back', { to: '1.0.0' });
    await new Promise((r) => setTimeout(r, 300));
    expect(service.link.getStatus().state).not.toBe('connected');
    expect(service.outbox.stats().rows).toBe(52);
    await broker.start();
    await service.link.waitConnected();
    await expect.poll(() => service!.outbox.stats().rows, { timeout: 10_000 }).toBe(0);
    await collector.until(() => new Set(collector!.seqs(`${BASE}/telemetry`)).size === 50 && collector!.seqs(`${BASE}/events`).length >= 2);
    expect(checkOrderedComplete(collector.seqs(`${BASE}/telemetry`), []).outOfOrder).toBe(0);
  });

  it('under a tiny outbox cap evicts metrics first and reports the count in an outbox-dropped event', async () => {
    broker = await startMosquitto({ persistence: true });
    collector = await startCollector(broker.url, `${BASE}/#`);
    await broker.stop();
    service = openTelemetry(
      serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url] }), testTelemetryConfig({ outbox: { maxRows: 20, maxBytes: 1 << 30, maxAgeHours: 1 } })),
    );
    service.start();
    for (let i = 0; i < 60; i++) await service.tick();
    const stats = service.outbox.stats();
    expect(stats.rows).toBeLessThanOrEqual(20);
    await broker.start();
    await service.link.waitConnected();
    await expect.poll(() => service!.outbox.stats().rows, { timeout: 10_000 }).toBe(0);
    // The next interval reports what was dropped after the last report was written.
    await service.tick();
    const total = service.outbox.stats().droppedTotal;
    expect(total.metric).toBeGreaterThan(0);
    const reports = () => collector!.messages.filter((x) => (x.json as { type?: string }).type === 'outbox-dropped').map((x) => eventSchema.parse(x.json));
    await collector.until(() => reports().some((e) => e.data.totalMetric === total.metric));
    const unique = new Map(reports().map((e) => [e.seq, e]));
    const reportedMetric = [...unique.values()].reduce((sum, e) => sum + (e.data.metric as number), 0);
    expect(reportedMetric).toBe(total.metric);
    expect(total.event).toBe(0);
    // The agent-start event survived: events outlive metrics.
    await collector.until((m) => m.some((x) => (x.json as { type?: string }).type === 'agent-start'));
  });
});

describe.runIf(requireMosquitto())('telemetry link: the link drops while the backlog is being replayed (MQTT.js#2015)', () => {
  it('loses no row when the broker goes away mid-replay while new messages keep arriving', async () => {
    const { dir, cleanup } = await makeTempDir();
    const broker = await startMosquitto({ persistence: true });
    const collector = await startCollector(broker.url, `${BASE}/telemetry`);
    const service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [broker.url], maxInflight: 1, batchMaxMessages: 1 })));
    try {
      for (let i = 0; i < 300; i++) await service.tick();
      service.start();
      await collector.until(() => collector.seqs(`${BASE}/telemetry`).length >= 50);
      await broker.stop();
      expect(service.outbox.stats().rows).toBeGreaterThan(100); // the replay was cut in the middle
      for (let i = 0; i < 50; i++) await service.tick();
      await broker.start();
      for (let i = 0; i < 50; i++) await service.tick();
      await expect.poll(() => service.outbox.stats().rows, { timeout: 20_000 }).toBe(0);
      const expected = Array.from({ length: 400 }, (_, i) => i + 1).filter((s) => s !== 301); // 301 is the agent-start event
      await collector.until(() => new Set(collector.seqs(`${BASE}/telemetry`)).size >= 400);
      const check = checkOrderedComplete(collector.seqs(`${BASE}/telemetry`), expected);
      expect(check.missing).toEqual([]);
      expect(check.outOfOrder).toBe(0);
    } finally {
      await service.stop();
      await collector.close();
      await broker.close();
      await cleanup();
    }
  });

  it('stops promptly while the broker is unreachable, keeping what it committed', async () => {
    const { dir, cleanup } = await makeTempDir();
    const service = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: ['mqtt://127.0.0.1:1'] })));
    service.start();
    await service.tick();
    await service.stop();
    expect(service.link.getStatus().state).toBe('stopped');
    const reopened = openTelemetry(serviceOptions(dir, 'dev-1', testMqttConfig({ urls: [] })));
    expect(reopened.outbox.stats().rows).toBe(2);
    expect(reopened.health()).toMatchObject({ ok: true });
    await reopened.stop();
    await cleanup();
  });
});
