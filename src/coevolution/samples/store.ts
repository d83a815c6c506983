import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { openStateDatabase, type StateDatabase } from '../../store/db.ts';
import type { Migration } from '../../store/migrations.ts';
import { fsyncDirectory } from '../../host/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import type { ConfidenceScores } from '../confidence.ts';

/**
 * The device's hard samples: one SQLite file (samples.db, WAL, its own migrations) indexes
 * NPY files in `files/`. A sample's files are written atomically BEFORE its row commits, so
 * a row always has its files; files without a row (a crash in between) are removed on open.
 */
const SAMPLE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'hard samples, upload batches, per-day usage',
    sql: `
      CREATE TABLE samples (
        id           INTEGER PRIMARY KEY,
        model        TEXT NOT NULL,
        version      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        scores       TEXT NOT NULL,
        bytes        INTEGER NOT NULL,
        batch_id     TEXT REFERENCES batches(id)
      ) STRICT;
      CREATE INDEX samples_unbatched ON samples(batch_id, id);
      CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE daily_usage (
        day    TEXT PRIMARY KEY,
        count  INTEGER NOT NULL,
        bytes  INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE counters (
        name   TEXT PRIMARY KEY,
        value  INTEGER NOT NULL
      ) STRICT;
    `,
  },
];

/** One stored hard sample as its index row says. */
export interface StoredSample {
  readonly id: number;
  readonly model: string;
  readonly version: string;
  readonly createdAt: number;
  readonly scores: ConfidenceScores | Readonly<Record<string, number>>;
  readonly bytes: number;
}

/** A hard sample to keep: its input and output as complete NPY files. */
export interface NewSample {
  readonly model: string;
  readonly version: string;
  readonly createdAt: number;
  readonly scores: ConfidenceScores | Readonly<Record<string, number>>;
  readonly inputNpy: Uint8Array;
  readonly outputNpy: Uint8Array;
}

export interface SampleLimits {
  readonly maxPerDay: number;
  readonly maxBytesPerDay: number;
  /** Bytes the sample files may occupy on disk at once. */
  readonly quotaBytes: number;
}

export type AddResult = { readonly stored: true; readonly id: number } | { readonly stored: false; readonly reason: 'day-count' | 'day-bytes' | 'quota' };

export interface PendingBatch {
  readonly id: string;
  readonly samples: readonly StoredSample[];
  readonly attempts: number;
}

/** UTC calendar day of a timestamp: the caps reset at midnight UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export class SampleStore {
  private readonly filesDir: string;
  private readonly statements;

  private constructor(private readonly db: StateDatabase, readonly dir: string, private readonly limits: SampleLimits) {
    this.filesDir = path.join(dir, 'files');
    this.statements = {
      usage: db.prepare<[string], { count: number; bytes: number }>('SELECT count, bytes FROM daily_usage WHERE day = ?'),
      onDisk: db.prepare<[], { total: number | null }>('SELECT SUM(bytes) AS total FROM samples'),
      insert: db.prepare('INSERT INTO samples (model, version, created_at, scores, bytes) VALUES (?, ?, ?, ?, ?)'),
      bumpUsage: db.prepare('INSERT INTO daily_usage (day, count, bytes) VALUES (?, 1, ?) ON CONFLICT(day) DO UPDATE SET count = count + 1, bytes = bytes + excluded.bytes'),
      bumpCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1'),
      counters: db.prepare<[], { name: string; value: number }>('SELECT name, value FROM counters'),
      openBatch: db.prepare<[], { id: string; attempts: number }>('SELECT id, attempts FROM batches ORDER BY created_at, id LIMIT 1'),
      batchSamples: db.prepare<[string], SampleRow>('SELECT * FROM samples WHERE batch_id = ? ORDER BY id'),
      unbatched: db.prepare<[number], { id: number }>('SELECT id FROM samples WHERE batch_id IS NULL ORDER BY id LIMIT ?'),
      newBatch: db.prepare('INSERT INTO batches (id, created_at) VALUES (?, ?)'),
      assign: db.prepare('UPDATE samples SET batch_id = ? WHERE id = ?'),
      attempt: db.prepare('UPDATE batches SET attempts = attempts + 1 WHERE id = ?'),
      deleteSamples: db.prepare('DELETE FROM samples WHERE batch_id = ?'),
      deleteBatch: db.prepare('DELETE FROM batches WHERE id = ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM samples'),
      allIds: db.prepare<[], { id: number }>('SELECT id FROM samples'),
    };
  }

  /** Opens (creating) the store in `dir` and removes sample files no row refers to. */
  static async open(dir: string, limits: SampleLimits): Promise<SampleStore> {
    try {
      mkdirSync(path.join(dir, 'files'), { recursive: true });
    } catch (err) {
      throw new EdgevolveError('E_COEVO_SAMPLE_STORE', `cannot create ${dir}: ${(err as Error).message}`, { cause: err, context: { dir } });
    }
    const store = new SampleStore(openStateDatabase(path.join(dir, 'samples.db'), SAMPLE_MIGRATIONS), dir, limits);
    await store.removeOrphans();
    return store;
  }

  close(): void {
    this.db.close();
  }

  inputPath(id: number): string {
    return path.join(this.filesDir, `${id}.input.npy`);
  }

  outputPath(id: number): string {
    return path.join(this.filesDir, `${id}.output.npy`);
  }

  /** Keeps a sample unless a per-day cap or the disk quota forbids it (counted per reason). */
  async add(sample: NewSample): Promise<AddResult> {
    const bytes = sample.inputNpy.byteLength + sample.outputNpy.byteLength;
    const day = utcDay(sample.createdAt);
    const refusal = this.refusal(day, bytes);
    if (refusal !== undefined) {
      this.statements.bumpCounter.run(`dropped.${refusal}`);
      return { stored: false, reason: refusal };
    }
    // Files are written under a unique pending name first; the row (and so the id) is
    // created only once they are durable, then they are renamed to the id's names.
    const token = `${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
    const tmpInput = path.join(this.filesDir, `pending-${token}.input.npy`);
    const tmpOutput = path.join(this.filesDir, `pending-${token}.output.npy`);
    try {
      await writeDurably(tmpInput, sample.inputNpy);
      await writeDurably(tmpOutput, sample.outputNpy);
    } catch (err) {
      await rm(tmpInput, { force: true });
      await rm(tmpOutput, { force: true });
      throw new EdgevolveError('E_COEVO_SAMPLE_STORE', `cannot write a hard sample in ${this.filesDir}: ${(err as Error).message}`, { cause: err });
    }
    const id = this.db.transaction(() => {
      const again = this.refusal(day, bytes);
      if (again !== undefined) return undefined;
      const info = this.statements.insert.run(sample.model, sample.version, sample.createdAt, JSON.stringify(sample.scores), bytes);
      this.statements.bumpUsage.run(day, bytes);
      this.statements.bumpCounter.run('stored');
      return Number(info.lastInsertRowid);
    })();
    if (id === undefined) {
      await rm(tmpInput, { force: true });
      await rm(tmpOutput, { force: true });
      return { stored: false, reason: 'quota' };
    }
    // Renames within one directory, made durable by one directory fsync; a crash before it
    // leaves a row without files, which removeOrphans() repairs by deleting the row (the
    // sample is lost, never half-uploaded).
    await rename(tmpInput, this.inputPath(id));
    await rename(tmpOutput, this.outputPath(id));
    await fsyncDirectory(this.filesDir);
    return { stored: true, id };
  }

  private refusal(day: string, bytes: number): 'day-count' | 'day-bytes' | 'quota' | undefined {
    const usage = this.statements.usage.get(day) ?? { count: 0, bytes: 0 };
    if (usage.count + 1 > this.limits.maxPerDay) return 'day-count';
    if (usage.bytes + bytes > this.limits.maxBytesPerDay) return 'day-bytes';
    const onDisk = this.statements.onDisk.get()?.total ?? 0;
    if (onDisk + bytes > this.limits.quotaBytes) return 'quota';
    return undefined;
  }

  /** Samples on the device (not yet confirmed by the cloud). */
  count(): number {
    return this.statements.count.get()?.n ?? 0;
  }

  bytesOnDisk(): number {
    return this.statements.onDisk.get()?.total ?? 0;
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.statements.counters.all().map((row) => [row.name, row.value]));
  }

  /**
   * The batch to upload next: the oldest unconfirmed batch (a resumed upload sends the same
   * id and samples again, so the cloud can deduplicate), else a new one of up to `maxSamples`.
   * Undefined when there is nothing to send.
   */
  nextBatch(maxSamples: number, newId: () => string, now: number): PendingBatch | undefined {
    return this.db.transaction(() => {
      let open = this.statements.openBatch.get();
      if (open === undefined) {
        const ids = this.statements.unbatched.all(maxSamples);
        if (ids.length === 0) return undefined;
        const id = newId();
        this.statements.newBatch.run(id, now);
        for (const row of ids) this.statements.assign.run(id, row.id);
        open = { id, attempts: 0 };
      }
      this.statements.attempt.run(open.id);
      return { id: open.id, attempts: open.attempts + 1, samples: this.statements.batchSamples.all(open.id).map(toSample) };
    })();
  }

  async readFiles(id: number): Promise<{ input: Buffer; output: Buffer }> {
    try {
      return { input: await readFile(this.inputPath(id)), output: await readFile(this.outputPath(id)) };
    } catch (err) {
      throw new EdgevolveError('E_COEVO_SAMPLE_STORE', `sample ${id}: its files are missing or unreadable: ${(err as Error).message}`, { cause: err, context: { id } });
    }
  }

  /** The cloud confirmed the batch: its rows go in one transaction, then their files. */
  async confirm(batchId: string): Promise<number> {
    const samples = this.statements.batchSamples.all(batchId);
    this.db.transaction(() => {
      this.statements.deleteSamples.run(batchId);
      this.statements.deleteBatch.run(batchId);
      for (let i = 0; i < samples.length; i++) this.statements.bumpCounter.run('uploaded');
    })();
    for (const row of samples) {
      await rm(this.inputPath(row.id), { force: true });
      await rm(this.outputPath(row.id), { force: true });
    }
    return samples.length;
  }

  private async removeOrphans(): Promise<void> {
    const known = new Set(this.statements.allIds.all().map((row) => row.id));
    const names = await readdir(this.filesDir);
    const present = new Set<number>();
    for (const name of names) {
      const id = Number(name.split('.')[0]);
      if (name.startsWith('pending-') || !Number.isInteger(id) || !known.has(id)) {
        await rm(path.join(this.filesDir, name), { force: true });
      } else if (name.endsWith('.input.npy')) {
        present.add(id);
      }
    }
    const missing = [...known].filter((id) => !present.has(id));
    if (missing.length > 0) {
      const del = this.db.prepare('DELETE FROM samples WHERE id = ?');
      this.db.transaction(() => {
        for (const id of missing) del.run(id);
      })();
      for (const id of missing) await rm(this.outputPath(id), { force: true });
    }
  }
}

/** Writes and fsyncs a new file (no directory fsync: the caller does one for several files). */
async function writeDurably(file: string, data: Uint8Array): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface SampleRow {
  id: number;
  model: string;
  version: string;
  created_at: number;
  scores: string;
  bytes: number;
}

function toSample(row: SampleRow): StoredSample {
  return { id: row.id, model: row.model, version: row.version, createdAt: row.created_at, scores: JSON.parse(row.scores) as Record<string, number>, bytes: row.bytes };
}
