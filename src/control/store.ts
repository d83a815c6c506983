/**
 * The command store: one row per command id a device accepted, in its own SQLite file
 * (WAL, synchronous=FULL: a command that was acknowledged and then lost to a power cut
 * could be run twice, P8). It is what makes commands idempotent across restarts and
 * what remembers nonces for replay refusal.
 *
 * INVARIANTS: a row is inserted before its handler starts and moves
 * received → running → done|failed, never back; `result` is set exactly when the state
 * is done or failed; `reported_at` is set only after the result's PUBACK.
 */
import { openStateDatabase, type Migration, type StateDatabase } from '../store/index.ts';
import { resultSchema, type CommandResult, type CommandState } from './schemas.ts';

export const CONTROL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'commands by id, with their nonce, state and stored result',
    sql: `
      CREATE TABLE commands (
        id           TEXT PRIMARY KEY,
        body_sha256  TEXT NOT NULL,
        type         TEXT NOT NULL,
        nonce        TEXT NOT NULL UNIQUE,
        state        TEXT NOT NULL CHECK (state IN ('received', 'running', 'done', 'failed')),
        received_at  INTEGER NOT NULL,
        started_at   INTEGER,
        finished_at  INTEGER,
        result       TEXT,
        reported_at  INTEGER
      ) STRICT;
      CREATE INDEX commands_received_at ON commands (received_at);
      CREATE INDEX commands_unreported ON commands (finished_at) WHERE reported_at IS NULL AND result IS NOT NULL;
    `,
  },
];

export interface StoredCommand {
  readonly id: string;
  readonly bodySha256: string;
  readonly type: string;
  readonly nonce: string;
  readonly state: CommandState;
  readonly receivedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly result: CommandResult | null;
  readonly reportedAt: number | null;
}

interface Row {
  id: string;
  body_sha256: string;
  type: string;
  nonce: string;
  state: CommandState;
  received_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: string | null;
  reported_at: number | null;
}

function fromRow(row: Row): StoredCommand {
  return {
    id: row.id,
    bodySha256: row.body_sha256,
    type: row.type,
    nonce: row.nonce,
    state: row.state,
    receivedAt: row.received_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    // Our own writes, but read back through the schema: a hand-edited row must not crash the channel.
    result: row.result === null ? null : resultSchema.parse(JSON.parse(row.result)),
    reportedAt: row.reported_at,
  };
}

export class CommandStore {
  readonly #db: StateDatabase;
  readonly #get;
  readonly #nonce;
  readonly #insert;
  readonly #running;
  readonly #finish;
  readonly #reported;
  readonly #unfinished;
  readonly #unreported;
  readonly #prune;

  /** Opens (creating and migrating) the command store at `path`. */
  static open(path: string): CommandStore {
    return new CommandStore(openStateDatabase(path, CONTROL_MIGRATIONS));
  }

  constructor(db: StateDatabase) {
    this.#db = db;
    this.#get = db.prepare<[string], Row>('SELECT * FROM commands WHERE id = ?');
    this.#nonce = db.prepare<[string], { id: string }>('SELECT id FROM commands WHERE nonce = ?');
    this.#insert = db.prepare<[string, string, string, string, CommandState, number, number | null]>(
      'INSERT INTO commands (id, body_sha256, type, nonce, state, received_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.#running = db.prepare<[number, string]>("UPDATE commands SET state = 'running', started_at = ? WHERE id = ? AND state = 'received'");
    this.#finish = db.prepare<[CommandState, number, string, string]>(
      "UPDATE commands SET state = ?, finished_at = ?, result = ? WHERE id = ? AND state IN ('received', 'running')",
    );
    this.#reported = db.prepare<[number, string]>('UPDATE commands SET reported_at = ? WHERE id = ? AND reported_at IS NULL');
    this.#unfinished = db.prepare<[], Row>("SELECT * FROM commands WHERE state IN ('received', 'running') ORDER BY received_at, id");
    this.#unreported = db.prepare<[], Row>('SELECT * FROM commands WHERE reported_at IS NULL AND result IS NOT NULL ORDER BY finished_at, id');
    this.#prune = db.prepare<[number]>('DELETE FROM commands WHERE received_at < ? AND state IN (\'done\', \'failed\')');
  }

  get(id: string): StoredCommand | undefined {
    const row = this.#get.get(id);
    return row === undefined ? undefined : fromRow(row);
  }

  /** The id of the command that used this nonce, if any. */
  nonceOwner(nonce: string): string | undefined {
    return this.#nonce.get(nonce)?.id;
  }

  /** Records an accepted command; `running` when its handler starts at once (saves a commit). */
  insert(command: { id: string; bodySha256: string; type: string; nonce: string }, state: 'received' | 'running', at: number): void {
    this.#insert.run(command.id, command.bodySha256, command.type, command.nonce, state, at, state === 'running' ? at : null);
  }

  markRunning(id: string, at: number): void {
    this.#running.run(at, id);
  }

  /** Stores the final result; returns false when the command had already finished (the first result stands). */
  finish(result: CommandResult): boolean {
    const state: CommandState = result.status === 'done' ? 'done' : 'failed';
    return this.#finish.run(state, result.finishedAt, JSON.stringify(result), result.id).changes === 1;
  }

  /**
   * Notes the result's PUBACK. Without fsync: losing this flag to a power cut costs one
   * repeated result publish after the restart (which senders de-duplicate by id), and
   * sparing the fsync halves a command's disk flushes (insert and finish remain FULL).
   */
  markReported(id: string, at: number): void {
    this.#db.pragma('synchronous = NORMAL');
    try {
      this.#reported.run(at, id);
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }

  /**
   * After a restart: every command that was received or running when the process stopped
   * is finished with the result `interrupted` builds, in one transaction. Returns them.
   */
  failUnfinished(interrupted: (command: StoredCommand) => CommandResult): CommandResult[] {
    return this.#db.transaction(() => {
      const results: CommandResult[] = [];
      for (const row of this.#unfinished.all()) {
        const result = interrupted(fromRow(row));
        this.#finish.run('failed', result.finishedAt, JSON.stringify(result), row.id);
        results.push(result);
      }
      return results;
    })();
  }

  /** Finished commands whose result was never PUBACKed, oldest first. */
  unreported(): CommandResult[] {
    return this.#unreported.all().flatMap((row) => (row.result === null ? [] : [resultSchema.parse(JSON.parse(row.result))]));
  }

  /** Deletes finished commands received before `before`; their ids and nonces are then forgotten. */
  prune(before: number): number {
    return this.#prune.run(before).changes;
  }

  close(): void {
    this.#db.close();
  }
}
