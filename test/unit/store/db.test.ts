import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/host/index.ts';
import { MIGRATIONS, ModelRepository, compareVersions, migrate, openStateDatabase, type NewVersion } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const hex = (c: string): string => `sha256:${c.repeat(64)}`;

describe('state database', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => cleanup());

  it('opens in WAL mode with synchronous=FULL and foreign keys on', () => {
    const db = openStateDatabase(join(dir, 'state.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)?.version);
    db.close();
  });

  it('migrates a version-1 database with data to the latest schema, keeping the rows', () => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    migrate(old, MIGRATIONS.filter((m) => m.version === 1));
    old.prepare('INSERT INTO blobs VALUES (?, 1, ?, 0)').run(hex('a'), 'x');
    old.prepare('INSERT INTO blobs VALUES (?, 1, ?, 0)').run(hex('b'), 'x');
    old
      .prepare('INSERT INTO versions (name, version, source, index_digest, manifest_digest, variant, model_digest, config_digest, pulled_at) VALUES (?,?,?,?,?,?,?,?,0)')
      .run('m', '1.0', 'src', hex('c'), hex('d'), 'fp32', hex('a'), hex('b'));
    expect(old.pragma('user_version', { simple: true })).toBe(1);
    old.close();

    const db = openStateDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)?.version);
    const repo = new ModelRepository(db, { now: () => 42, sleep: () => Promise.resolve() });
    const [v] = repo.versions('m');
    expect(v).toMatchObject({ name: 'm', version: '1.0', signed: false });
    expect(repo.activate(v?.id ?? -1, 'pull').version).toBe('1.0');
    expect(repo.active('m')?.id).toBe(v?.id);
    db.close();
  });

  it('refuses a database written by a newer edgevolve', () => {
    const path = join(dir, 'new.db');
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => openStateDatabase(path)).toThrow(expect.objectContaining({ code: 'E_STORE_DB' }) as Error);
  });

  it('a failing migration leaves the schema at the previous version', () => {
    const path = join(dir, 'fail.db');
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    const broken = [...MIGRATIONS, { version: latest + 1, description: 'broken', sql: 'CREATE TABLE t (x); SELECT nope FROM missing;' }];
    expect(() => openStateDatabase(path, broken)).toThrow(expect.objectContaining({ code: 'E_STORE_DB' }) as Error);
    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(latest);
    expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get()).toEqual({ n: 0 });
    db.close();
  });
});

describe('ModelRepository', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let now = 1000;
  const clock: Clock = { now: () => now++, sleep: () => Promise.resolve() };
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => cleanup());

  function addVersion(repo: ModelRepository, version: string, c: string): number {
    for (const d of [hex(c), hex(String.fromCharCode(c.charCodeAt(0) + 6))]) repo.recordBlob(d, 1, 'x');
    const v: NewVersion = {
      name: 'det',
      version,
      source: 'r/det',
      indexDigest: hex('f'),
      manifestDigest: hex(c),
      variant: 'fp32',
      modelDigest: hex(c),
      configDigest: hex(String.fromCharCode(c.charCodeAt(0) + 6)),
      signed: true,
    };
    return repo.addVersion(v).id;
  }

  it('activation moves the pointer, writes history and the last accepted version together; rollback does not raise trust', () => {
    const db = openStateDatabase(join(dir, 's.db'));
    const repo = new ModelRepository(db, clock);
    const v1 = addVersion(repo, '1.0', '1');
    const v2 = addVersion(repo, '2.0', '2');
    repo.activate(v1, 'pull');
    repo.activate(v2, 'pull');
    expect(repo.active('det')?.version).toBe('2.0');
    expect(repo.lastAccepted('det')?.version).toBe('2.0');
    expect(repo.rollback('det').version).toBe('1.0');
    expect(repo.active('det')?.version).toBe('1.0');
    expect(repo.lastAccepted('det')?.version).toBe('2.0');
    expect(repo.history('det').map((h) => h.reason)).toEqual(['rollback', 'pull', 'pull']);
    db.close();
  });

  it('prune keeps the active and the previous N versions and returns their blobs', () => {
    const db = openStateDatabase(join(dir, 's.db'));
    const repo = new ModelRepository(db, clock);
    const ids = ['1', '2', '3', '4'].map((c, i) => addVersion(repo, `${i + 1}.0`, c));
    for (const id of ids) repo.activate(id, 'pull');
    const referenced = repo.prune(1);
    expect(repo.versions('det').map((v) => v.version)).toEqual(['3.0', '4.0']);
    expect(referenced.has(hex('4'))).toBe(true);
    expect(referenced.has(hex('3'))).toBe(true);
    expect(referenced.has(hex('1'))).toBe(false);
    db.close();
  });

  it('survives a reopen: committed activation is there after close', () => {
    const path = join(dir, 's.db');
    const db = openStateDatabase(path);
    const repo = new ModelRepository(db, clock);
    repo.activate(addVersion(repo, '7', '1'), 'pull');
    db.close();
    const again = new ModelRepository(openStateDatabase(path), clock);
    expect(again.active('det')?.version).toBe('7');
  });
});

describe('compareVersions', () => {
  it('orders numerically, not lexically, and treats missing parts as zero', () => {
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
    expect(compareVersions('2', '2.0.0')).toBe(0);
    expect(compareVersions('1.2.3', '1.3')).toBeLessThan(0);
  });
  it('refuses versions it cannot order', () => {
    expect(() => compareVersions('1.0-beta', '1.0')).toThrow(expect.objectContaining({ code: 'E_STORE_VERSION_INVALID' }) as Error);
  });
});
