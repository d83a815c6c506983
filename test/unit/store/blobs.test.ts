import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { systemDisk } from '../../../src/host/index.ts';
import { BlobStore, type Digest } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const sha = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BlobStore', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => cleanup());

  async function store(options: { maxBytes?: number; free?: number } = {}): Promise<BlobStore> {
    const disk = options.free === undefined ? systemDisk : { freeBytes: () => Promise.resolve(options.free as number) };
    const s = new BlobStore({ root: join(dir, 'blobs'), disk, ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }) });
    await s.init();
    return s;
  }

  it('commits a blob under its digest, read-only, only after the whole content hashed right', async () => {
    const s = await store();
    const bytes = randomBytes(100_000);
    const w = await s.openWriter(sha(bytes), bytes.length);
    await w.write(bytes.subarray(0, 40_000));
    expect(await s.has(sha(bytes))).toBe(false);
    await w.write(bytes.subarray(40_000));
    const path = await w.commit();
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect((await lstat(path)).mode & 0o222).toBe(0);
    expect(await readdir(join(dir, 'blobs', 'partial'))).toEqual([]);
  });

  it('rejects bytes that do not hash to the digest and deletes the partial file', async () => {
    const s = await store();
    const bytes = randomBytes(1000);
    const w = await s.openWriter(sha(bytes), bytes.length);
    const corrupted = Buffer.from(bytes);
    corrupted[500] = (corrupted[500] ?? 0) ^ 0xff;
    await w.write(corrupted);
    await expect(w.commit()).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_DIGEST_MISMATCH'));
    expect(await s.has(sha(bytes))).toBe(false);
    expect(await readdir(join(dir, 'blobs', 'partial'))).toEqual([]);
  });

  it('refuses more bytes than the descriptor declares while streaming', async () => {
    const s = await store();
    const bytes = randomBytes(1000);
    const w = await s.openWriter(sha(bytes), 999);
    await expect(w.write(bytes)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_TOO_LARGE'));
    await w.close();
  });

  it('batched writes in flight keep chunk order, and close leaves every written byte on disk for the resume', async () => {
    // Small batches so a 300 kB blob goes through many overlapped writev calls of uneven chunks.
    const s = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk, writeBatchBytes: 7_000 });
    await s.init();
    const bytes = randomBytes(300_000);
    const first = await s.openWriter(sha(bytes), bytes.length);
    let at = 0;
    for (const size of [1, 4_095, 65_536, 3, 20_000, 9_999]) {
      await first.write(bytes.subarray(at, at + size));
      at += size;
    }
    await first.close();
    const second = await s.openWriter(sha(bytes), bytes.length);
    expect(second.offset).toBe(at);
    while (at < bytes.length) {
      const size = Math.min(bytes.length - at, 1 + ((at * 7919) % 50_000));
      await second.write(bytes.subarray(at, at + size));
      at += size;
    }
    expect((await readFile(await second.commit())).equals(bytes)).toBe(true);
  });

  it('lends batch buffers and takes them back once written: 20 batches through three buffers commit the right bytes', async () => {
    const s = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk, writeBatchBytes: 64 * 1024 });
    await s.init();
    const bytes = randomBytes(20 * 64 * 1024 - 123);
    const w = await s.openWriter(sha(bytes), bytes.length);
    const seen = new Set<Buffer>();
    // The socket reader's pattern: the next buffer is taken before the full one is handed back.
    let buffer = w.batchBuffer();
    for (let at = 0; at < bytes.length; ) {
      const n = bytes.copy(buffer, 0, at, Math.min(bytes.length, at + buffer.length));
      at += n;
      seen.add(buffer);
      const next = w.batchBuffer();
      await w.writeBatch(buffer, n);
      buffer = next;
    }
    expect(seen.size).toBeLessThanOrEqual(3);
    expect((await readFile(await w.commit())).equals(bytes)).toBe(true);
  });

  it('writeBatch refuses bytes beyond the declared size like write does', async () => {
    const s = await store();
    const bytes = randomBytes(70_000);
    const w = await s.openWriter(sha(bytes), bytes.length - 1);
    const buffer = w.batchBuffer();
    bytes.copy(buffer);
    await expect(w.writeBatch(buffer, bytes.length)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_TOO_LARGE'));
    await w.close();
  });

  it('with hashInWorker, a download verifies on the worker thread: right bytes commit, a resume re-hashes there, wrong bytes are refused', async () => {
    const s = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk, hashInWorker: true, writeBatchBytes: 50_000 });
    await s.init();
    try {
      const bytes = randomBytes(400_000);
      const first = await s.openWriter(sha(bytes), bytes.length);
      await first.write(bytes.subarray(0, 150_001));
      await first.close();
      const second = await s.openWriter(sha(bytes), bytes.length);
      expect(second.offset).toBe(150_001);
      for (let at = 150_001; at < bytes.length; at += 65_536) await second.write(bytes.subarray(at, Math.min(at + 65_536, bytes.length)));
      expect((await readFile(await second.commit())).equals(bytes)).toBe(true);

      const other = randomBytes(100_000);
      const wrong = await s.openWriter(sha(other), other.length);
      await wrong.write(randomBytes(100_000));
      await expect(wrong.commit()).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_DIGEST_MISMATCH'));
    } finally {
      await s.close();
    }
  });

  it('resumes a partial blob: re-hashes the kept bytes from disk and reports their count as offset', async () => {
    const s = await store();
    const bytes = randomBytes(300_000);
    const first = await s.openWriter(sha(bytes), bytes.length);
    await first.setValidator('"etag-1"');
    await first.write(bytes.subarray(0, 123_456));
    await first.close();
    const second = await s.openWriter(sha(bytes), bytes.length);
    expect(second.offset).toBe(123_456);
    expect(second.validator).toBe('"etag-1"');
    await second.write(bytes.subarray(123_456));
    expect((await readFile(await second.commit())).equals(bytes)).toBe(true);
  });

  it('a resumed partial whose kept bytes were corrupted on disk fails verification instead of being trusted', async () => {
    const s = await store();
    const bytes = randomBytes(10_000);
    const first = await s.openWriter(sha(bytes), bytes.length);
    const bad = Buffer.from(bytes.subarray(0, 5000));
    bad[10] = (bad[10] ?? 0) ^ 1;
    await first.write(bad);
    await first.close();
    const second = await s.openWriter(sha(bytes), bytes.length);
    await second.write(bytes.subarray(5000));
    await expect(second.commit()).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_DIGEST_MISMATCH'));
  });

  it('refuses a download over the quota before writing, and leaves committed blobs intact', async () => {
    const s = await store({ maxBytes: 150_000 });
    const active = randomBytes(100_000);
    await s.putBytes(active);
    const next = randomBytes(100_000);
    await expect(s.openWriter(sha(next), next.length)).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_STORE_DISK_FULL') && /quota/.test((e as Error).message),
    );
    expect(await readdir(join(dir, 'blobs', 'partial'))).toEqual([]);
    expect((await s.readVerified(sha(active))).equals(active)).toBe(true);
  });

  it('refuses a download when the filesystem would keep less than the reserve free', async () => {
    const s = new BlobStore({ root: join(dir, 'b'), disk: { freeBytes: () => Promise.resolve(1_000_000) }, reserveBytes: 600_000 });
    await s.init();
    const bytes = randomBytes(500_000);
    await expect(s.openWriter(sha(bytes), bytes.length)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_DISK_FULL'));
  });

  it('readVerified detects a blob changed on disk after it was committed', async () => {
    const s = await store();
    const bytes = randomBytes(1000);
    const digest = await s.putBytes(bytes);
    const path = s.path(digest);
    await chmod(path, 0o644);
    await writeFile(path, randomBytes(1000));
    await expect(s.readVerified(digest)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_CORRUPT'));
    expect(await s.verify(digest)).toBe(false);
  });

  it('refuses a blob that is a symlink (a path out of the store)', async () => {
    const s = await store();
    const digest = sha(Buffer.from('x'));
    await writeFile(join(dir, 'outside'), 'x');
    await symlink(join(dir, 'outside'), s.path(digest));
    await expect(s.readVerified(digest)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_PATH_ESCAPE'));
    expect(await s.has(digest)).toBe(false);
  });

  it('never builds a path from a malformed digest', async () => {
    const s = await store();
    for (const bad of ['sha256:../../etc/passwd', `sha512:${'a'.repeat(128)}`, `sha256:${'A'.repeat(64)}`, '/etc/passwd']) {
      expect(() => s.path(bad as Digest)).toThrow(expect.objectContaining({ code: 'E_REGISTRY_DIGEST_UNSUPPORTED' }) as Error);
    }
  });

  it('refuses to share a partial file with a live process, and takes over the lock of a dead one', async () => {
    const s = await store();
    const bytes = randomBytes(1000);
    const lock = join(dir, 'blobs', 'partial', `${sha(bytes).slice(7)}.part.lock`);
    const live = spawn('sleep', ['30']);
    try {
      await writeFile(lock, `${live.pid}:othertoken`);
      await expect(s.openWriter(sha(bytes), bytes.length)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_BUSY'));
    } finally {
      live.kill('SIGKILL');
    }
    const dead = spawnSync('true');
    await writeFile(lock, `${dead.pid}:othertoken`);
    const w = await s.openWriter(sha(bytes), bytes.length);
    expect((await readFile(lock, 'utf8')).startsWith(`${process.pid}:`)).toBe(true);
    await w.write(bytes);
    await w.commit();
    await expect(lstat(lock)).rejects.toThrow();
  });

  it('treats a lock with this PID but another process token as stale (PID reuse after a restart)', async () => {
    const s = await store();
    const bytes = randomBytes(10);
    await writeFile(join(dir, 'blobs', 'partial', `${sha(bytes).slice(7)}.part.lock`), `${process.pid}:previous-incarnation`);
    const w = await s.openWriter(sha(bytes), bytes.length);
    await w.close();
  });

  it('gc removes unreferenced blobs past the grace period, keeps referenced and fresh ones, and expires abandoned partials', async () => {
    const s = await store();
    const keep = await s.putBytes(Buffer.from('keep'));
    const drop = await s.putBytes(Buffer.from('drop'));
    const fresh = await s.putBytes(Buffer.from('fresh'));
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(s.path(drop), old, old);
    const abandoned = randomBytes(100);
    const w = await s.openWriter(sha(abandoned), abandoned.length);
    await w.write(abandoned.subarray(0, 50));
    await w.close();
    const partial = join(dir, 'blobs', 'partial', `${sha(abandoned).slice(7)}.part`);
    await utimes(partial, old, old);
    const result = await s.gc(new Set([keep]), { partialMaxAgeMs: 3600_000 });
    expect(result.removed).toEqual([drop]);
    expect(await s.has(keep)).toBe(true);
    expect(await s.has(fresh)).toBe(true);
    expect(await s.has(drop)).toBe(false);
    expect(await readdir(join(dir, 'blobs', 'partial'))).toEqual([]);
  });
});
