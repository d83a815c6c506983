import Database from 'better-sqlite3';
import { EdgevolveError } from '../errors/index.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';

export type StateDatabase = Database.Database;

/**
 * Opens the state database once: WAL, synchronous=FULL (deployment and trust rows must
 * survive a power cut, P8; better-sqlite3 defaults WAL to NORMAL), foreign keys, a busy
 * timeout, then runs pending migrations. A database from a newer edgevolve is refused.
 */
export function openStateDatabase(path: string, migrations: readonly Migration[] = MIGRATIONS): StateDatabase {
  let db: StateDatabase;
  try {
    db = new Database(path);
  } catch (err) {
    throw new EdgevolveError('E_STORE_DB', `cannot open state database ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    // brave#38046: temp files on a small /tmp give SQLITE_FULL with a roomy data disk.
    db.pragma('temp_store = MEMORY');
    migrate(db, migrations);
  } catch (err) {
    db.close();
    if (err instanceof EdgevolveError) throw err;
    throw new EdgevolveError('E_STORE_DB', `state database ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
  return db;
}

/** Applies every migration above the database's user_version, each atomically with its bump. */
export function migrate(db: StateDatabase, migrations: readonly Migration[]): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  if (current > latest) {
    throw new EdgevolveError('E_STORE_DB', `state database schema version ${current} is newer than this edgevolve knows (${latest}); upgrade edgevolve`, {
      context: { current, latest },
    });
  }
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
  return latest;
}
