import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetDatabase } from '../../../src/coevolution/cloud/fleet-db.ts';
import { startIngest } from '../../../src/coevolution/cloud/ingest.ts';
import { telemetryRecordSchema, birthSchema, type TelemetryRecord } from '../../../src/telemetry/schemas.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { codeOf } from '../../helpers/error-code.ts';

const T0 = Date.UTC(2026, 10, 28, 12);
const EMPTY_HISTOGRAM = { bounds: [0.5], counts: [0, 0] };

function record(device: string, seq: number, overrides: { version?: string; p95?: number; hardSampleRate?: number; driftScore?: number; errors?: number } = {}): TelemetryRecord {
  return telemetryRecordSchema.parse({
    v: 1, device, stream: 's1', seq, ts: T0 + seq * 1000, kind: 'metrics', intervalMs: 1000,
    inference: { count: 100, errors: overrides.errors ?? 0, latencyMs: { p50: 1, p95: overrides.p95 ?? 2, p99: 3, max: 4, mean: 1.5, histogram: EMPTY_HISTOGRAM } },
    queueDepth: { last: 0, max: 1 },
    system: { cpuPercent: 10, memoryUsedBytes: 1, memoryTotalBytes: 2, processRssBytes: 1, temperatureC: null, throttled: null, diskFreeBytes: 1 },
    model: { name: 'student', version: overrides.version ?? '1.0.0' },
    budgets: { compliant: true, violations: [] },
    quality: { confidence: EMPTY_HISTOGRAM, entropy: EMPTY_HISTOGRAM, hardSampleRate: overrides.hardSampleRate ?? 0.1, driftScore: overrides.driftScore ?? 0.05 },
    outbox: { depth: 0, bytes: 0, droppedTotal: 0, degraded: false },
  });
}

function birth(device: string, session: number): unknown {
  return birthSchema.parse({
    v: 1, status: 'online', device, fleet: 'f1', ts: T0, session, protocol: '5', agentVersion: '0.1.0',
    hardware: { arch: 'arm64' }, model: { name: 'student', version: '1.0.0' }, budgets: {},
  });
}

describe('fleet database (real SQLite)', () => {
  it('stores telemetry once per (device, stream, seq) and shows devices with health, drift and hard-sample rate', async () => {
    const tmp = await makeTempDir();
    const db = FleetDatabase.open(path.join(tmp.dir, 'fleet.db'));
    try {
      expect(db.ingest('edgevolve/v1/f1/d1/state', JSON.stringify(birth('d1', 1)))).toBe('stored');
      expect(db.ingest('edgevolve/v1/f1/d1/telemetry', JSON.stringify(record('d1', 1, { driftScore: 0.4, hardSampleRate: 0.3 })))).toBe('stored');
      expect(db.ingest('edgevolve/v1/f1/d1/telemetry', JSON.stringify(record('d1', 1)))).toBe('duplicate');
      expect(db.ingest('edgevolve/v1/f1/d2/telemetry', JSON.stringify({ v: 1, batch: [record('d2', 1, { errors: 5 }), record('d2', 2, { errors: 5 })] }))).toBe('stored');
      const fleet = db.fleet(T0 + 10_000, 60_000);
      expect(fleet.map((d) => d.device)).toEqual(['d1', 'd2']);
      expect(fleet[0]).toMatchObject({ status: 'online', version: '1.0.0', agentVersion: '0.1.0', inferences: 100, driftScore: 0.4, hardSampleRate: 0.3, health: 'ok' });
      expect(fleet[1]).toMatchObject({ inferences: 200, errorRate: 0.05, health: 'degraded' });
    } finally {
      db.close();
      await tmp.cleanup();
    }
  });

  it('ignores a retained death of an older session after a newer birth', async () => {
    const tmp = await makeTempDir();
    const db = FleetDatabase.open(path.join(tmp.dir, 'fleet.db'));
    try {
      db.ingest('edgevolve/v1/f1/d1/state', JSON.stringify(birth('d1', 2)));
      const oldDeath = { v: 1, status: 'offline', device: 'd1', fleet: 'f1', ts: T0 - 1, session: 1, reason: 'connection-lost' };
      expect(db.ingest('edgevolve/v1/f1/d1/state', JSON.stringify(oldDeath))).toBe('stale');
      expect(db.fleet(T0, 1000)[0]!.status).toBe('online');
    } finally {
      db.close();
      await tmp.cleanup();
    }
  });

  it('refuses malformed messages with E_COEVO_MESSAGE naming the field, and counts them', async () => {
    const tmp = await makeTempDir();
    const db = FleetDatabase.open(path.join(tmp.dir, 'fleet.db'));
    try {
      expect(codeOf(() => db.ingest('edgevolve/v1/f1/d1/telemetry', '{not json'))).toBe('E_COEVO_MESSAGE');
      const bad = { ...record('d1', 1), seq: -1 };
      expect(() => db.ingest('edgevolve/v1/f1/d1/telemetry', JSON.stringify(bad))).toThrow(/seq/);
      expect(db.ingest('edgevolve/v1/f1/d1/cmd', '{}')).toBe('ignored');
      expect(db.counters().invalid).toBe(2);
    } finally {
      db.close();
      await tmp.cleanup();
    }
  });
});

describe.runIf(requireMosquitto())('cloud ingest over a shared subscription (real mosquitto)', () => {
  let broker: RunningMosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  }, 20_000);
  afterAll(async () => {
    await broker.close();
  });

  it('two workers of one group split the messages, each stored exactly once in the shared database', async () => {
    const tmp = await makeTempDir();
    const file = path.join(tmp.dir, 'fleet.db');
    const dbs = [FleetDatabase.open(file), FleetDatabase.open(file)];
    const workers = await Promise.all(dbs.map((db, i) => startIngest(db, { brokerUrl: broker.url, group: 'cloud', fleet: 'f1', clientId: `worker-${i}` })));
    const device = await mqtt.connectAsync(broker.url, { clientId: 'sim-device', protocolVersion: 5 });
    try {
      const total = 40;
      for (let seq = 1; seq <= total; seq++) {
        const name = `d${seq % 4}`;
        await device.publishAsync(`edgevolve/v1/f1/${name}/telemetry`, JSON.stringify(record(name, seq)), { qos: 1 });
      }
      await device.publishAsync('edgevolve/v1/f1/d0/telemetry', 'garbage', { qos: 1 });
      const deadline = Date.now() + 10_000;
      while (workers.reduce((n, w) => n + w.stats.received, 0) < total + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(workers.reduce((n, w) => n + w.stats.received, 0)).toBe(total + 1);
      expect(workers.every((w) => w.stats.received > 0)).toBe(true);
      expect(workers.reduce((n, w) => n + w.stats.invalid, 0)).toBe(1);
      const fleet = dbs[0]!.fleet(T0 + 100_000, 1_000_000);
      expect(fleet.reduce((n, d) => n + d.inferences, 0)).toBe(total * 100);
    } finally {
      await device.endAsync();
      for (const w of workers) await w.close();
      for (const db of dbs) db.close();
      await tmp.cleanup();
    }
  }, 30_000);
});
