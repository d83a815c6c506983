import { openStateDatabase, type StateDatabase } from '../../store/db.ts';
import type { Migration } from '../../store/migrations.ts';
import { eventSchema, statePayloadSchema, telemetryPayloadSchema, type TelemetryRecord } from '../../telemetry/schemas.ts';
import { EdgevolveError } from '../../errors/index.ts';

/**
 * The cloud's view of the fleet: one better-sqlite3 file (WAL) fed by `ingest`. At-least-
 * once delivery is made exactly-once here: (device, stream, seq) is the primary key of
 * telemetry and events and duplicates are ignored. For a fleet beyond one machine, point
 * several workers (shared subscription) at their own files, or replace this class with
 * the same methods over PostgreSQL; nothing else reads the file.
 */
const FLEET_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, telemetry, events',
    sql: `
      CREATE TABLE devices (
        fleet          TEXT NOT NULL,
        device         TEXT NOT NULL,
        status         TEXT NOT NULL,
        session        INTEGER NOT NULL,
        agent_version  TEXT,
        model          TEXT,
        model_version  TEXT,
        variant        TEXT,
        state_ts       INTEGER NOT NULL,
        last_seen      INTEGER NOT NULL,
        PRIMARY KEY (fleet, device)
      ) STRICT;
      CREATE TABLE telemetry (
        fleet             TEXT NOT NULL,
        device            TEXT NOT NULL,
        stream            TEXT NOT NULL,
        seq               INTEGER NOT NULL,
        ts                INTEGER NOT NULL,
        model_version     TEXT,
        inferences        INTEGER NOT NULL,
        errors            INTEGER NOT NULL,
        p95_ms            REAL,
        hard_sample_rate  REAL,
        drift_score       REAL,
        compliant         INTEGER,
        PRIMARY KEY (device, stream, seq)
      ) STRICT;
      CREATE INDEX telemetry_by_device ON telemetry(fleet, device, ts);
      CREATE TABLE events (
        fleet     TEXT NOT NULL,
        device    TEXT NOT NULL,
        stream    TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        ts        INTEGER NOT NULL,
        type      TEXT NOT NULL,
        severity  TEXT NOT NULL,
        message   TEXT NOT NULL,
        data      TEXT NOT NULL,
        PRIMARY KEY (device, stream, seq)
      ) STRICT;
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
    `,
  },
];

const TOPIC = /^edgevolve\/v1\/([A-Za-z0-9_-]{1,64})\/([A-Za-z0-9_-]{1,64})\/(state|telemetry|events)$/;

/** One device as `edgevolve cloud fleet` shows it. */
export interface FleetDevice {
  readonly fleet: string;
  readonly device: string;
  readonly status: 'online' | 'offline';
  readonly model: string | null;
  readonly version: string | null;
  readonly agentVersion: string | null;
  readonly lastSeen: number;
  /** Over the recent telemetry window: requests, error share, worst p95, budget compliance. */
  readonly inferences: number;
  readonly errorRate: number | null;
  readonly p95Ms: number | null;
  readonly compliant: boolean | null;
  /** Latest drift score and the mean hard-sample rate over the window. */
  readonly driftScore: number | null;
  readonly hardSampleRate: number | null;
  readonly health: 'ok' | 'degraded' | 'offline';
}

export type IngestOutcome = 'stored' | 'duplicate' | 'stale' | 'ignored';

export class FleetDatabase {
  private readonly statements;

  constructor(private readonly db: StateDatabase) {
    this.statements = {
      stateRow: db.prepare<[string, string], { session: number; state_ts: number }>('SELECT session, state_ts FROM devices WHERE fleet = ? AND device = ?'),
      upsertDevice: db.prepare(`INSERT INTO devices (fleet, device, status, session, agent_version, model, model_version, variant, state_ts, last_seen)
        VALUES (@fleet, @device, @status, @session, @agentVersion, @model, @modelVersion, @variant, @ts, @ts)
        ON CONFLICT(fleet, device) DO UPDATE SET status = @status, session = @session, state_ts = @ts, last_seen = max(last_seen, @ts),
          agent_version = coalesce(@agentVersion, agent_version), model = coalesce(@model, model), model_version = coalesce(@modelVersion, model_version), variant = coalesce(@variant, variant)`),
      touch: db.prepare(`INSERT INTO devices (fleet, device, status, session, model, model_version, state_ts, last_seen) VALUES (@fleet, @device, 'online', 0, @model, @modelVersion, 0, @ts)
        ON CONFLICT(fleet, device) DO UPDATE SET last_seen = max(last_seen, @ts), model = coalesce(@model, model), model_version = coalesce(@modelVersion, model_version)`),
      insertTelemetry: db.prepare(`INSERT OR IGNORE INTO telemetry VALUES (@fleet, @device, @stream, @seq, @ts, @modelVersion, @inferences, @errors, @p95, @hardSampleRate, @driftScore, @compliant)`),
      insertEvent: db.prepare('INSERT OR IGNORE INTO events VALUES (@fleet, @device, @stream, @seq, @ts, @type, @severity, @message, @data)'),
      bump: db.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1'),
      counters: db.prepare<[], { name: string; value: number }>('SELECT name, value FROM counters'),
      devices: db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY fleet, device'),
      window: db.prepare<[string, string, number], WindowRow>(`SELECT SUM(inferences) AS inferences, SUM(errors) AS errors, MAX(p95_ms) AS p95,
        AVG(hard_sample_rate) AS hard_rate, MIN(compliant) AS compliant FROM telemetry WHERE fleet = ? AND device = ? AND ts >= ?`),
      lastDrift: db.prepare<[string, string], { drift_score: number | null }>('SELECT drift_score FROM telemetry WHERE fleet = ? AND device = ? AND drift_score IS NOT NULL ORDER BY ts DESC LIMIT 1'),
      versionStats: db.prepare<[string, string, string, number], WindowRow>(`SELECT SUM(inferences) AS inferences, SUM(errors) AS errors, MAX(p95_ms) AS p95,
        AVG(hard_sample_rate) AS hard_rate, MIN(compliant) AS compliant FROM telemetry WHERE fleet = ? AND device = ? AND model_version = ? AND ts >= ?`),
      events: db.prepare<[string, number], EventRow>('SELECT * FROM events WHERE type = ? AND ts >= ? ORDER BY ts'),
    };
  }

  static open(path: string): FleetDatabase {
    return new FleetDatabase(openStateDatabase(path, FLEET_MIGRATIONS));
  }

  close(): void {
    this.db.close();
  }

  /**
   * Stores one MQTT message of the device topic tree. A payload that is not valid JSON of
   * the documented schema throws E_COEVO_MESSAGE (the caller counts and drops it); topics
   * outside state/telemetry/events are 'ignored'; a state older than the stored one is 'stale'.
   */
  ingest(topic: string, payload: Uint8Array | string): IngestOutcome {
    const match = TOPIC.exec(topic);
    if (match === null) return 'ignored';
    const [, fleet = '', device = '', kind] = match;
    let json: unknown;
    try {
      json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
    } catch (err) {
      this.statements.bump.run('invalid');
      throw new EdgevolveError('E_COEVO_MESSAGE', `${topic}: not JSON`, { cause: err, context: { topic } });
    }
    const fail = (issues: readonly { path: PropertyKey[]; message: string }[]): never => {
      this.statements.bump.run('invalid');
      const first = issues[0];
      throw new EdgevolveError('E_COEVO_MESSAGE', `${topic}: ${first === undefined ? 'invalid' : `${first.path.map(String).join('.') || '(root)'}: ${first.message}`}`, { context: { topic } });
    };
    if (kind === 'state') {
      const parsed = statePayloadSchema.safeParse(json);
      if (!parsed.success) return fail(parsed.error.issues);
      const state = parsed.data;
      if (state.device !== device) return fail([{ path: ['device'], message: `says ${state.device}, the topic ${device}` }]);
      const known = this.statements.stateRow.get(fleet, device);
      // A retained death of an older session must not overwrite a newer birth.
      if (known !== undefined && (state.session < known.session || (state.session === known.session && state.ts < known.state_ts && state.status === 'online'))) return 'stale';
      const model = state.status === 'online' ? state.model : null;
      this.statements.upsertDevice.run({
        fleet, device, status: state.status, session: state.session, ts: state.ts,
        agentVersion: state.status === 'online' ? state.agentVersion : null,
        model: model?.name ?? null, modelVersion: model?.version ?? null, variant: model?.variant ?? null,
      });
      return 'stored';
    }
    if (kind === 'telemetry') {
      const parsed = telemetryPayloadSchema.safeParse(json);
      if (!parsed.success) return fail(parsed.error.issues);
      const records: readonly TelemetryRecord[] = 'batch' in parsed.data ? parsed.data.batch : [parsed.data];
      let stored = 0;
      this.db.transaction(() => {
        for (const r of records) {
          const info = this.statements.insertTelemetry.run({
            fleet, device, stream: r.stream, seq: r.seq, ts: r.ts, modelVersion: r.model?.version ?? null,
            inferences: r.inference.count, errors: r.inference.errors, p95: r.inference.latencyMs.p95,
            hardSampleRate: r.quality.hardSampleRate, driftScore: r.quality.driftScore,
            compliant: r.budgets.compliant === null ? null : r.budgets.compliant ? 1 : 0,
          });
          stored += info.changes;
          this.statements.touch.run({ fleet, device, ts: r.ts, model: r.model?.name ?? null, modelVersion: r.model?.version ?? null });
        }
      })();
      return stored > 0 ? 'stored' : 'duplicate';
    }
    const parsed = eventSchema.safeParse(json);
    if (!parsed.success) return fail(parsed.error.issues);
    const e = parsed.data;
    const info = this.statements.insertEvent.run({ fleet, device, stream: e.stream, seq: e.seq, ts: e.ts, type: e.type, severity: e.severity, message: e.message, data: JSON.stringify(e.data) });
    this.statements.touch.run({ fleet, device, ts: e.ts, model: null, modelVersion: null });
    return info.changes > 0 ? 'stored' : 'duplicate';
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.statements.counters.all().map((r) => [r.name, r.value]));
  }

  /** Every known device with health over the telemetry of the last `windowMs` before `now`. */
  fleet(now: number, windowMs: number): FleetDevice[] {
    return this.statements.devices.all().map((row) => {
      const w = this.statements.window.get(row.fleet, row.device, now - windowMs);
      const inferences = w?.inferences ?? 0;
      const errorRate = inferences > 0 ? (w?.errors ?? 0) / inferences : null;
      const compliant = w?.compliant === null || w?.compliant === undefined ? null : w.compliant === 1;
      const status = row.status === 'offline' ? 'offline' : 'online';
      const health = status === 'offline' ? 'offline' : (errorRate ?? 0) > 0.01 || compliant === false ? 'degraded' : 'ok';
      return {
        fleet: row.fleet, device: row.device, status, model: row.model, version: row.model_version, agentVersion: row.agent_version, lastSeen: row.last_seen,
        inferences, errorRate, p95Ms: w?.p95 ?? null, compliant,
        driftScore: this.statements.lastDrift.get(row.fleet, row.device)?.drift_score ?? null,
        hardSampleRate: w?.hard_rate ?? null, health,
      };
    });
  }

  /** Events of one type since `since` (e.g. the rollbacks of a rollout). */
  events(type: string, since: number): { fleet: string; device: string; ts: number; message: string; data: Record<string, unknown> }[] {
    return this.statements.events.all(type, since).map((e) => ({ fleet: e.fleet, device: e.device, ts: e.ts, message: e.message, data: JSON.parse(e.data) as Record<string, unknown> }));
  }

  /** Telemetry of one device while it served `version`, since `since`: what the rollout watches. */
  versionStats(fleet: string, device: string, version: string, since: number): { inferences: number; errorRate: number | null; p95Ms: number | null; hardSampleRate: number | null } {
    const w = this.statements.versionStats.get(fleet, device, version, since);
    const inferences = w?.inferences ?? 0;
    return { inferences, errorRate: inferences > 0 ? (w?.errors ?? 0) / inferences : null, p95Ms: w?.p95 ?? null, hardSampleRate: w?.hard_rate ?? null };
  }
}

interface DeviceRow {
  fleet: string; device: string; status: string; session: number; agent_version: string | null; model: string | null;
  model_version: string | null; variant: string | null; state_ts: number; last_seen: number;
}
interface WindowRow { inferences: number | null; errors: number | null; p95: number | null; hard_rate: number | null; compliant: number | null }
interface EventRow { fleet: string; device: string; stream: string; seq: number; ts: number; type: string; severity: string; message: string; data: string }
