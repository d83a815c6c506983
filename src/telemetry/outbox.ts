/**
 * The store-and-forward outbox: every message is committed to its own SQLite file
 * (<stateDir>/telemetry.db, WAL) before it is sent, and deleted only when the broker
 * acknowledges it (PUBACK, QoS 1). mqtt.js's own stores are a transmit window at most:
 * they key messages by the 16-bit packet id and drop publishes made during replay
 * (MQTT.js#2015), so this table, keyed by our own sequence number, is the source of truth.
 *
 * INVARIANTS:
 * - `seq` is the primary key, assigned here from a persisted counter in the same
 *   transaction as the insert: it increases by one per message across restarts, and
 *   (stream, seq) names a message forever (`stream` is random per database file).
 * - Bounds (rows, bytes, age) are enforced on every insert; eviction takes the lowest
 *   priority first (metrics before events), oldest first, and every evicted row is
 *   counted in `meta` (persisted) for the next report. Nothing is dropped silently.
 * - SQLITE_FULL (disk or max_page_count full) switches to degraded mode: evict metrics to
 *   make room and retry once; a message that still does not fit is dropped and counted.
 *   The next insert that succeeds ends degraded mode. The listener hears both changes.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { EdgevolveError } from '../errors/index.ts';
import type { Clock } from '../host/index.ts';
import { migrate, type Migration } from '../store/index.ts';

/** Eviction order: a lower priority is evicted first. */
export const PRIORITY = { metric: 0, event: 1 } as const;
export type Priority = (typeof PRIORITY)[keyof typeof PRIORITY];
const PRIORITIES: readonly Priority[] = [PRIORITY.metric, PRIORITY.event];

export interface OutboxLimits {
  /** Most rows kept; older rows of the lowest priority are evicted past it. */
  readonly maxRows: number;
  /** Most payload bytes kept. */
  readonly maxBytes: number;
  /** Rows older than this are evicted whatever their priority. */
  readonly maxAgeMs: number;
}

export interface NewMessage {
  readonly topic: string;
  readonly priority: Priority;
  /**
   * A JSON object: the outbox adds `stream` and `seq` to it. Or raw bytes (command acks
   * and results, samples), stored as given; their seq travels in MQTT 5 user properties.
   */
  readonly body: Readonly<Record<string, unknown>> | Buffer;
  readonly retain?: boolean;
  /** Several consecutive batchable JSON rows of one topic may go out as one `{v, batch}` publish. */
  readonly batchable?: boolean;
}

export interface StoredMessage {
  readonly seq: number;
  readonly topic: string;
  readonly priority: Priority;
  readonly batchable: boolean;
  readonly retain: boolean;
  readonly payload: Buffer;
  /** True when the payload is JSON holding `stream` and `seq` (an object body); false for raw bytes. */
  readonly numbered: boolean;
  readonly createdAt: number;
}

export interface DropCounts {
  readonly metric: number;
  readonly event: number;
}

export interface OutboxStats {
  readonly rows: number;
  readonly bytes: number;
  /** Evicted or refused since the database was created. */
  readonly droppedTotal: DropCounts;
  /** Evicted or refused since the last takeDropReport(). */
  readonly droppedUnreported: DropCounts;
  readonly degraded: boolean;
}

export type OutboxChange =
  | { readonly type: 'degraded'; readonly error: string }
  | { readonly type: 'recovered'; readonly droppedWhileDegraded: DropCounts };

export interface OutboxOptions {
  readonly device: string;
  readonly limits: OutboxLimits;
  readonly clock: Pick<Clock, 'now'>;
  /** Hears degraded/recovered transitions (the telemetry service turns them into events). */
  readonly onChange?: (change: OutboxChange) => void;
}

/** What a message id (`key`) looks like: stable, ours, never an MQTT packet id. */
export function messageKey(stream: string, seq: number): string {
  return `${stream}:${seq}`;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'outbox rows, counters and the stream id',
    sql: `
      CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        priority INTEGER NOT NULL,
        batchable INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX outbox_priority_seq ON outbox (priority, seq);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE meta_text (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    version: 2,
    description: 'numbered: the payload is JSON carrying its own stream and seq',
    sql: 'ALTER TABLE outbox ADD COLUMN numbered INTEGER NOT NULL DEFAULT 0;',
  },
];

interface Row {
  seq: number;
  topic: string;
  priority: number;
  batchable: number;
  retain: number;
  payload: Buffer;
  numbered: number;
  created_at: number;
}

/** How many rows one eviction step removes: amortizes the statement over many inserts. */
const EVICTION_CHUNK_DIVISOR = 100;

export class Outbox {
  readonly stream: string;
  private readonly db: Database.Database;
  private readonly options: OutboxOptions;
  private nextSeq: number;
  private rows: number;
  private bytes: number;
  private readonly dropped = { total: [0, 0], unreported: [0, 0] };
  private readonly droppedWhileDegraded = [0, 0];
  private degraded = false;
  private lastAgeSweep = 0;
  /** The newest seq committed per priority, so the drain can skip a query when nothing is new. */
  private readonly newest = [0, 0];
  private readonly stmt: ReturnType<Outbox['prepare']>;

  private constructor(db: Database.Database, options: OutboxOptions) {
    this.db = db;
    this.options = options;
    this.stmt = this.prepare();
    this.stream = this.loadStream();
    // The counter is persisted only when rows are deleted (see persistSeq); while rows exist their max is the floor.
    const storedMax = (this.db.prepare('SELECT max(seq) FROM outbox').pluck().get() as number | null) ?? 0;
    this.nextSeq = Math.max(this.metaGet('seq'), storedMax) + 1;
    const totals = this.stmt.totals.get() as { rows: number; bytes: number | null };
    this.rows = totals.rows;
    this.bytes = totals.bytes ?? 0;
    for (const p of PRIORITIES) {
      this.newest[p] = (this.db.prepare('SELECT max(seq) FROM outbox WHERE priority = ?').pluck().get(p) as number | null) ?? 0;
      this.dropped.total[p] = this.metaGet(`dropped.total.${p}`);
      this.dropped.unreported[p] = this.metaGet(`dropped.unreported.${p}`);
    }
  }

  /** Opens (creating if needed) the outbox database at `path`. */
  static open(path: string, options: OutboxOptions): Outbox {
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err) {
      throw new EdgevolveError('E_TELEMETRY_OUTBOX_DB', `cannot open outbox ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
    }
    try {
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL survives a process crash (SIGKILL) with every committed row; a power
      // cut may lose the last transactions of telemetry, which is the trade the issue
      // allows for this file (deployment and command state live in state.db with FULL).
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('temp_store = MEMORY');
      migrate(db, MIGRATIONS);
      return new Outbox(db, options);
    } catch (err) {
      db.close();
      if (err instanceof EdgevolveError && err.code === 'E_TELEMETRY_OUTBOX_DB') throw err;
      throw new EdgevolveError('E_TELEMETRY_OUTBOX_DB', `outbox ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
    }
  }

  /** The underlying database, for fault injection in tests (e.g. PRAGMA max_page_count). */
  get database(): Database.Database {
    return this.db;
  }

  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare('INSERT INTO outbox (seq, topic, priority, batchable, retain, payload, numbered, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      metaGet: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      metaSet: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      textGet: db.prepare('SELECT value FROM meta_text WHERE key = ?').pluck(),
      textSet: db.prepare('INSERT INTO meta_text (key, value) VALUES (?, ?)'),
      totals: db.prepare('SELECT count(*) AS rows, sum(length(payload)) AS bytes FROM outbox'),
      peek: db.prepare('SELECT seq, topic, priority, batchable, retain, payload, numbered, created_at FROM outbox WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?'),
      exists: db.prepare('SELECT 1 FROM outbox WHERE seq = ?').pluck(),
      remove: db.prepare('DELETE FROM outbox WHERE seq = ? RETURNING priority, length(payload) AS bytes'),
      evict: db.prepare(
        'DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE priority = ? ORDER BY seq LIMIT ?) RETURNING length(payload) AS bytes',
      ),
      oldest: db.prepare('SELECT created_at FROM outbox ORDER BY seq LIMIT 1').pluck(),
      evictOld: db.prepare(
        'DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?) AND created_at < ? RETURNING priority, length(payload) AS bytes',
      ),
    };
  }

  private loadStream(): string {
    const existing = this.stmt.textGet.get('stream') as string | undefined;
    if (existing !== undefined) return existing;
    const stream = randomBytes(8).toString('hex');
    this.stmt.textSet.run('stream', stream);
    return stream;
  }

  private metaGet(key: string): number {
    return (this.stmt.metaGet.get(key) as number | undefined) ?? 0;
  }

  /**
   * Commits one message and returns its seq, or undefined when it could not be stored
   * (disk full even after evicting metrics; counted as dropped).
   */
  enqueue(message: NewMessage): number | undefined {
    return this.enqueueMany([message])[0];
  }

  /** Commits several messages in one transaction (one fsync of the WAL, not one per message). */
  enqueueMany(messages: readonly NewMessage[]): (number | undefined)[] {
    if (messages.length === 0) return [];
    try {
      const seqs = this.insertAll(messages);
      if (this.degraded) this.recover();
      return seqs;
    } catch (err) {
      if (!isDiskFull(err)) {
        throw new EdgevolveError('E_TELEMETRY_OUTBOX_DB', `outbox insert failed: ${(err as Error).message}`, { cause: err });
      }
      return this.enqueueWhileFull(messages, err as Error);
    }
  }

  private insertAll(messages: readonly NewMessage[]): number[] {
    const now = this.options.clock.now();
    const first = this.nextSeq;
    let addedBytes = 0;
    this.db.transaction(() => {
      let seq = first;
      for (const message of messages) {
        const payload = encodeBody(message.body, this.stream, seq);
        const numbered = Buffer.isBuffer(message.body) ? 0 : 1;
        // Only numbered (JSON) rows can be combined into a {v, batch} document.
        const batchable = message.batchable === true && numbered === 1 ? 1 : 0;
        this.stmt.insert.run(seq, message.topic, message.priority, batchable, message.retain === true ? 1 : 0, payload, numbered, now);
        addedBytes += payload.length;
        seq += 1;
      }
      this.rows += messages.length;
      this.bytes += addedBytes;
      // Advanced before eviction: if the new rows are evicted at once, persistSeq must still cover them.
      this.nextSeq = first + messages.length;
      try {
        this.enforceLimits(now);
      } catch (err) {
        this.rows -= messages.length;
        this.bytes -= addedBytes;
        this.nextSeq = first;
        throw err;
      }
    })();
    messages.forEach((m, i) => {
      this.newest[m.priority] = first + i;
    });
    return messages.map((_, i) => first + i);
  }

  /** Degraded mode: make room by evicting metrics, retry once, then drop and count. */
  private enqueueWhileFull(messages: readonly NewMessage[], error: Error): (number | undefined)[] {
    if (!this.degraded) {
      this.degraded = true;
      this.options.onChange?.({ type: 'degraded', error: error.message });
    }
    const metricRows = this.countPriority(PRIORITY.metric);
    if (metricRows > 0) {
      try {
        this.db.transaction(() => {
          this.evictPriority(PRIORITY.metric, Math.max(messages.length, Math.ceil(metricRows / 10)));
          this.persistDropCounters();
        })();
      } catch {
        // Deleting can itself fail on a full disk (WAL growth); dropping the new messages below still keeps us running.
      }
      try {
        const seqs = this.insertAll(messages);
        this.recover();
        return seqs;
      } catch (err) {
        if (!isDiskFull(err)) throw new EdgevolveError('E_TELEMETRY_OUTBOX_DB', `outbox insert failed: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const message of messages) {
      this.dropped.total[message.priority] = (this.dropped.total[message.priority] ?? 0) + 1;
      this.dropped.unreported[message.priority] = (this.dropped.unreported[message.priority] ?? 0) + 1;
      this.droppedWhileDegraded[message.priority] = (this.droppedWhileDegraded[message.priority] ?? 0) + 1;
    }
    return messages.map(() => undefined);
  }

  private recover(): void {
    this.degraded = false;
    const droppedWhileDegraded = { metric: this.droppedWhileDegraded[0] ?? 0, event: this.droppedWhileDegraded[1] ?? 0 };
    this.droppedWhileDegraded.fill(0);
    // Drops counted in memory while nothing could be written are persisted now.
    try {
      this.db.transaction(() => this.persistDropCounters())();
    } catch {
      // Still tight on space; the counters stay in memory and are written with the next eviction.
    }
    this.options.onChange?.({ type: 'recovered', droppedWhileDegraded });
  }

  private countPriority(priority: Priority): number {
    return (this.db.prepare('SELECT count(*) FROM outbox WHERE priority = ?').pluck().get(priority) as number) ?? 0;
  }

  /** Inside a transaction: age first, then rows and bytes, lowest priority first. */
  private enforceLimits(now: number): void {
    const { maxRows, maxBytes, maxAgeMs } = this.options.limits;
    let changed = false;
    if (now - this.lastAgeSweep >= 1000 || this.rows > maxRows || this.bytes > maxBytes) {
      this.lastAgeSweep = now;
      changed = this.evictExpired(now - maxAgeMs) || changed;
    }
    const chunk = Math.max(1, Math.floor(maxRows / EVICTION_CHUNK_DIVISOR));
    for (const priority of PRIORITIES) {
      while (this.rows > maxRows || this.bytes > maxBytes) {
        const over = Math.max(this.rows - maxRows, 1);
        if (this.evictPriority(priority, Math.max(over, chunk)) === 0) break;
        changed = true;
      }
    }
    if (changed) this.persistDropCounters();
  }

  private evictExpired(cutoff: number): boolean {
    let evicted = false;
    for (;;) {
      const oldest = this.stmt.oldest.get() as number | undefined;
      if (oldest === undefined || oldest >= cutoff) return evicted;
      const removed = this.stmt.evictOld.all(256, cutoff) as { priority: number; bytes: number }[];
      if (removed.length === 0) return evicted;
      for (const r of removed) this.countDrop(r.priority as Priority, r.bytes);
      evicted = true;
    }
  }

  private evictPriority(priority: Priority, count: number): number {
    const removed = this.stmt.evict.all(priority, count) as { bytes: number }[];
    for (const r of removed) this.countDrop(priority, r.bytes);
    return removed.length;
  }

  private countDrop(priority: Priority, bytes: number): void {
    this.rows -= 1;
    this.bytes -= bytes;
    this.dropped.total[priority] = (this.dropped.total[priority] ?? 0) + 1;
    this.dropped.unreported[priority] = (this.dropped.unreported[priority] ?? 0) + 1;
  }

  /**
   * Writes the seq counter. Called in every transaction that deletes rows: an insert
   * commits a row holding its seq, so the counter only needs saving when rows go away;
   * that keeps one page write out of every insert commit.
   */
  private persistSeq(): void {
    this.stmt.metaSet.run('seq', this.nextSeq - 1);
  }

  private persistDropCounters(): void {
    this.persistSeq();
    for (const p of PRIORITIES) {
      this.stmt.metaSet.run(`dropped.total.${p}`, this.dropped.total[p] ?? 0);
      this.stmt.metaSet.run(`dropped.unreported.${p}`, this.dropped.unreported[p] ?? 0);
    }
  }

  /** Up to `limit` messages of one priority after `afterSeq`, oldest first. */
  peek(priority: Priority, afterSeq: number, limit: number): StoredMessage[] {
    const rows = this.stmt.peek.all(priority, afterSeq, limit) as Row[];
    return rows.map((r) => ({
      seq: r.seq,
      topic: r.topic,
      priority: r.priority as Priority,
      batchable: r.batchable === 1,
      retain: r.retain === 1,
      payload: r.payload,
      numbered: r.numbered === 1,
      createdAt: r.created_at,
    }));
  }

  /** Deletes acknowledged messages (PUBACK received) in one transaction. Unknown seqs (already evicted) are ignored. */
  acknowledge(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.db.transaction(() => {
      for (const seq of seqs) {
        const removed = this.stmt.remove.get(seq) as { priority: number; bytes: number } | undefined;
        if (removed === undefined) continue;
        this.rows -= 1;
        this.bytes -= removed.bytes;
      }
      this.persistSeq();
    })();
  }

  /**
   * Deletes messages the broker refused for good (a PUBACK reason code such as
   * not-authorized) and counts them as dropped: resending them would fail the same way.
   */
  discard(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.db.transaction(() => {
      for (const seq of seqs) {
        const removed = this.stmt.remove.get(seq) as { priority: number; bytes: number } | undefined;
        if (removed !== undefined) this.countDrop(removed.priority as Priority, removed.bytes);
      }
      this.persistDropCounters();
    })();
  }

  /** The newest seq ever committed with this priority (0 when none since open and none stored). */
  newestSeq(priority: Priority): number {
    return this.newest[priority] ?? 0;
  }

  /** True while the message is still stored (not yet acknowledged or evicted). */
  contains(seq: number): boolean {
    return this.stmt.exists.get(seq) !== undefined;
  }

  /** Increments and returns a persisted counter (the birth/death session number). */
  bumpCounter(name: 'session'): number {
    const key = `counter.${name}`;
    const next = this.metaGet(key) + 1;
    this.stmt.metaSet.run(key, next);
    return next;
  }

  stats(): OutboxStats {
    return {
      rows: this.rows,
      bytes: this.bytes,
      droppedTotal: { metric: this.dropped.total[0] ?? 0, event: this.dropped.total[1] ?? 0 },
      droppedUnreported: { metric: this.dropped.unreported[0] ?? 0, event: this.dropped.unreported[1] ?? 0 },
      degraded: this.degraded,
    };
  }

  /** The drops not yet reported, and marks them reported (persisted with the same write). */
  takeDropReport(): DropCounts {
    const report = { metric: this.dropped.unreported[0] ?? 0, event: this.dropped.unreported[1] ?? 0 };
    if (report.metric === 0 && report.event === 0) return report;
    this.dropped.unreported.fill(0);
    try {
      this.db.transaction(() => this.persistDropCounters())();
    } catch {
      // A full disk: the in-memory state is right; the persisted counters catch up later.
    }
    return report;
  }

  /** The highest seq handed out so far (0 when none). */
  lastSeq(): number {
    return this.nextSeq - 1;
  }

  close(): void {
    this.db.close();
  }
}

function encodeBody(body: Readonly<Record<string, unknown>> | Buffer, stream: string, seq: number): Buffer {
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(JSON.stringify({ ...body, stream, seq }));
}

function isDiskFull(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_FULL';
}
