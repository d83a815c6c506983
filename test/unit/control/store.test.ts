/** The command store on a real SQLite file: states, first result stands, restart recovery, pruning. */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandStore, type CommandResult } from '../../../src/control/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const result = (id: string, status: CommandResult['status'], finishedAt: number): CommandResult => ({
  v: 1,
  id,
  device: 'd1',
  type: 'ping',
  status,
  ...(status === 'done' ? { result: { pong: true } } : { error: { code: 'E_X', message: 'x' } }),
  bodySha256: 'a'.repeat(64),
  duplicate: false,
  receivedAt: finishedAt - 1,
  finishedAt,
});

describe('CommandStore', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let path: string;
  beforeEach(async () => {
    tmp = await makeTempDir();
    path = join(tmp.dir, 'control.db');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('is a WAL database of its own, at schema version 1', () => {
    CommandStore.open(path).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    db.close();
  });

  it('keeps ids, nonces, states and results across a reopen; the first result stands', () => {
    let store = CommandStore.open(path);
    store.insert({ id: 'c1', bodySha256: 'h1', type: 'ping', nonce: 'n1' }, 'received', 100);
    store.markRunning('c1', 101);
    expect(store.finish(result('c1', 'done', 102))).toBe(true);
    expect(store.finish(result('c1', 'failed', 103))).toBe(false);
    store.close();

    store = CommandStore.open(path);
    expect(store.get('c1')).toMatchObject({ state: 'done', bodySha256: 'h1', receivedAt: 100, startedAt: 101, finishedAt: 102, result: { status: 'done' }, reportedAt: null });
    expect(store.nonceOwner('n1')).toBe('c1');
    expect(store.nonceOwner('n2')).toBeUndefined();
    expect(() => store.insert({ id: 'c2', bodySha256: 'h2', type: 'ping', nonce: 'n1' }, 'received', 104)).toThrow(/UNIQUE/);
    store.close();
  });

  it('fails unfinished commands (received or running) in one go and lists unreported results oldest first', () => {
    const store = CommandStore.open(path);
    store.insert({ id: 'a', bodySha256: 'h', type: 'deploy', nonce: 'na' }, 'received', 1);
    store.insert({ id: 'b', bodySha256: 'h', type: 'deploy', nonce: 'nb' }, 'running', 2);
    store.insert({ id: 'c', bodySha256: 'h', type: 'ping', nonce: 'nc' }, 'received', 3);
    store.finish(result('c', 'done', 4));
    store.markReported('c', 5);
    const failed = store.failUnfinished((command) => ({ ...result(command.id, 'failed', 10 + command.receivedAt), type: command.type }));
    expect(failed.map((r) => r.id)).toEqual(['a', 'b']);
    expect(store.get('a')?.state).toBe('failed');
    expect(store.get('b')?.state).toBe('failed');
    expect(store.unreported().map((r) => r.id)).toEqual(['a', 'b']);
    store.markReported('a', 20);
    expect(store.unreported().map((r) => r.id)).toEqual(['b']);
    store.close();
  });

  it('prunes only finished commands received before the cutoff', () => {
    const store = CommandStore.open(path);
    store.insert({ id: 'old-done', bodySha256: 'h', type: 'ping', nonce: 'n1' }, 'running', 10);
    store.finish(result('old-done', 'done', 11));
    store.insert({ id: 'old-running', bodySha256: 'h', type: 'deploy', nonce: 'n2' }, 'running', 10);
    store.insert({ id: 'new-done', bodySha256: 'h', type: 'ping', nonce: 'n3' }, 'running', 100);
    store.finish(result('new-done', 'done', 101));
    expect(store.prune(50)).toBe(1);
    expect(store.get('old-done')).toBeUndefined();
    expect(store.nonceOwner('n1')).toBeUndefined();
    expect(store.get('old-running')).toBeDefined();
    expect(store.get('new-done')).toBeDefined();
    store.close();
  });
});
