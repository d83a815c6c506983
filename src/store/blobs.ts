/**
 * The content-addressed blob store: `<root>/sha256/<hex>` holds bytes whose sha256 is
 * <hex>, verified while they were written. Partial downloads live in
 * `<root>/partial/<hex>.part` so a killed process can resume them.
 *
 * INVARIANTS: a file appears under `sha256/` only by rename after its whole content
 * was hashed and fsynced, so a reader never sees a partial or unverified blob. Paths
 * are built only from validated digests (`parseDigest`), never from names in input.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import { fsyncDirectory, type DiskSpace } from '../host/index.ts';
import { digestHex, parseDigest, type Digest } from './digest.ts';
import { HashWorker, inlineHasher, type StreamHasher } from './hasher.ts';

export interface BlobStoreOptions {
  /** Directory that holds `sha256/` and `partial/`. */
  readonly root: string;
  readonly disk: DiskSpace;
  /** Cap on the bytes the store may hold (committed + partial); also how tests simulate a full disk. */
  readonly maxBytes?: number;
  /** Space to leave free on the filesystem after a download, so the database and logs can still write. */
  readonly reserveBytes?: number;
  /** Where partial downloads live; defaults to `<root>/partial`. Must be on the same filesystem as root. */
  readonly partialDir?: string;
  /** Bytes gathered per writev (default 4 MiB); also the most a SIGKILL can lose of a download. */
  readonly writeBatchBytes?: number;
  /** Hash downloads on a worker thread (another core) instead of the thread that receives them. */
  readonly hashInWorker?: boolean;
  /** A background fdatasync starts every this many bytes written (default 16 MiB), so little is left for the fsync at commit. */
  readonly backgroundSyncBytes?: number;
}

/** One blob being written; `offset` bytes are already on disk from an earlier attempt. */
export interface BlobWriter {
  readonly digest: Digest;
  readonly size: number;
  /** Bytes already present (resumed) and hashed. */
  readonly offset: number;
  /** Bytes on disk now (offset plus what this writer appended). */
  readonly written: number;
  /** Opaque validator (ETag) saved with the partial file by the previous attempt, if any. */
  readonly validator: string | undefined;
  /** Records the validator of the response the bytes come from, before writing any. */
  setValidator(validator: string | undefined): Promise<void>;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * A buffer to receive the next batch into (at least `writeBatchBytes`, and at least
   * 64 KiB), lent by the writer: fill it and hand it back with `writeBatch`. Buffers come
   * back to the writer once written, so a download reuses two of them instead of
   * allocating one per network read.
   */
  batchBuffer(): Buffer;
  /**
   * Hashes `buffer[0, length)` and writes it whole, in flight while the caller receives
   * the next batch; resolves once the previous batch is written and this one is under way.
   * The buffer belongs to the writer again: the caller must not touch it afterwards.
   */
  writeBatch(buffer: Buffer, length: number): Promise<void>;
  /** Drops the bytes written so far and starts again from offset 0. */
  restart(): Promise<void>;
  /** Verifies size and digest, fsyncs and renames into place. Throws E_REGISTRY_DIGEST_MISMATCH (and deletes the partial) on a mismatch. */
  commit(): Promise<string>;
  /** Closes the file and keeps the partial bytes for a later resume. */
  close(): Promise<void>;
}

export class BlobStore {
  readonly #options: BlobStoreOptions;
  /** Tail of the queue of work on each digest; two writers on one partial file would interleave bytes. */
  readonly #locks = new Map<string, Promise<unknown>>();

  readonly #hashWorker: HashWorker | undefined;

  constructor(options: BlobStoreOptions) {
    this.#options = options;
    this.#hashWorker = options.hashInWorker === true ? new HashWorker() : undefined;
  }

  /** A hasher for one download, on the worker when configured. */
  #newHasher(): StreamHasher {
    return this.#hashWorker?.hasher() ?? inlineHasher();
  }

  /** Stops the hash worker, if one was started. */
  async close(): Promise<void> {
    await this.#hashWorker?.close();
  }

  get root(): string {
    return this.#options.root;
  }

  /** The path of a committed blob. */
  path(digest: Digest): string {
    return join(this.#options.root, 'sha256', digestHex(parseDigest(digest)));
  }

  #partialPath(digest: Digest): string {
    return join(this.#partialDir(), `${digestHex(parseDigest(digest))}.part`);
  }

  #partialDir(): string {
    return this.#options.partialDir ?? join(this.#options.root, 'partial');
  }

  async init(): Promise<void> {
    await mkdir(join(this.#options.root, 'sha256'), { recursive: true });
    await mkdir(this.#partialDir(), { recursive: true });
  }

  /**
   * Runs `task` with exclusive use of `digest` within this process (callers that write a
   * blob wrap open-write-commit in it). INVARIANTS: each digest's tasks run one at a time,
   * in call order; the map entry is removed when the last queued task settles.
   */
  async exclusive<T>(digest: Digest, task: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(digest) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.#locks.set(digest, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(digest) === tail) this.#locks.delete(digest);
    }
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      const info = await lstat(this.path(digest));
      return info.isFile();
    } catch {
      return false;
    }
  }

  /**
   * Reads a committed blob into memory and hashes the very bytes returned, from one file
   * descriptor opened without following links: what a loader gets is what was hashed, so
   * nothing can change the file between the check and the use (P4, RAUC CVE-2020-25860).
   * `expectedSize`, when given, must match too (the manifest's descriptor size). Reads in
   * 16 MiB pieces so a file over 2 GiB (readFile's limit) still loads, up to `maxBytes`.
   */
  async readVerified(digestInput: Digest, options: { maxBytes?: number; expectedSize?: number } | number = {}): Promise<Buffer> {
    const { maxBytes = 64 * 1024 * 1024, expectedSize } = typeof options === 'number' ? { maxBytes: options } : options;
    const digest = parseDigest(digestInput);
    const path = this.path(digest);
    let handle: FileHandle;
    try {
      handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // O_NOFOLLOW on a symlink fails with ELOOP: a link in the store is never followed.
      if (code === 'ELOOP') throw new EdgevolveError('E_STORE_PATH_ESCAPE', `blob ${digest} is a symbolic link; refused`, { context: { digest } });
      throw new EdgevolveError('E_STORE_NOT_FOUND', `blob ${digest} is not in the store`, { cause: err, context: { digest } });
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new EdgevolveError('E_STORE_PATH_ESCAPE', `blob ${digest} is not a regular file (a device or directory); refused`, { context: { digest } });
      if (expectedSize !== undefined && info.size !== expectedSize) {
        throw new EdgevolveError('E_STORE_CORRUPT', `stored blob ${digest} is ${info.size} bytes, its manifest says ${expectedSize}: the file changed on disk`, {
          context: { digest, size: info.size, expectedSize },
        });
      }
      if (info.size > maxBytes) {
        throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `blob ${digest} is ${info.size} bytes, over the ${maxBytes}-byte cap for reading into memory`, { context: { digest, size: info.size, maxBytes } });
      }
      const bytes = Buffer.allocUnsafe(info.size);
      const hash = createHash('sha256');
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesRead } = await handle.read(bytes, done, Math.min(READ_PIECE_BYTES, bytes.byteLength - done), done);
        if (bytesRead === 0) break;
        hash.update(bytes.subarray(done, done + bytesRead));
        done += bytesRead;
      }
      // A file that shrank or grew while read is caught here: short read, or bytes beyond the stat'd size.
      const extra = await handle.read(Buffer.allocUnsafe(1), 0, 1, done);
      const actual = `sha256:${hash.digest('hex')}`;
      if (done !== bytes.byteLength || extra.bytesRead !== 0 || actual !== digest) {
        throw new EdgevolveError('E_STORE_CORRUPT', `stored blob ${digest} hashes to ${actual} (${done} bytes read): the file changed on disk`, { context: { digest, actual } });
      }
      return bytes;
    } finally {
      await handle.close();
    }
  }

  /** Re-hashes a committed blob from disk; true when it still matches its name. */
  async verify(digest: Digest): Promise<boolean> {
    const path = this.path(digest);
    await this.#lstatRegular(path, digest);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return `sha256:${hash.digest('hex')}` === digest;
  }

  async #lstatRegular(path: string, digest: Digest): Promise<{ size: number }> {
    let info;
    try {
      info = await lstat(path);
    } catch (err) {
      throw new EdgevolveError('E_STORE_NOT_FOUND', `blob ${digest} is not in the store`, { cause: err, context: { digest } });
    }
    if (!info.isFile()) throw new EdgevolveError('E_STORE_PATH_ESCAPE', `blob ${digest} is not a regular file (a link or device); refused`, { context: { digest } });
    return info;
  }

  /** Bytes held by committed and partial blobs. */
  async usedBytes(): Promise<number> {
    let total = 0;
    for (const dir of [join(this.#options.root, 'sha256'), this.#partialDir()]) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const info = await lstat(join(dir, name)).catch(() => undefined);
        if (info?.isFile()) total += info.size;
      }
    }
    return total;
  }

  /**
   * Refuses, before any byte is fetched, a download that would not fit: over the store
   * quota or leaving less than `reserveBytes` free on the filesystem.
   */
  async ensureSpace(bytesNeeded: number): Promise<void> {
    const { maxBytes, reserveBytes = 0 } = this.#options;
    if (maxBytes !== undefined) {
      const used = await this.usedBytes();
      if (used + bytesNeeded > maxBytes) {
        throw new EdgevolveError('E_STORE_DISK_FULL', `store quota exceeded: ${bytesNeeded} more bytes needed, ${used} of ${maxBytes} used`, {
          context: { bytesNeeded, used, maxBytes },
        });
      }
    }
    const free = await this.#options.disk.freeBytes(this.#options.root);
    if (free - bytesNeeded < reserveBytes) {
      throw new EdgevolveError('E_STORE_DISK_FULL', `disk full: ${bytesNeeded} bytes needed, ${free} free, ${reserveBytes} must stay free`, {
        context: { bytesNeeded, free, reserveBytes },
      });
    }
  }

  /**
   * Opens a writer for a blob of known digest and size, resuming a partial file when
   * one exists (its bytes are re-hashed from disk, not trusted). Checks space for the
   * remaining bytes first.
   */
  async openWriter(digestInput: Digest, size: number): Promise<BlobWriter> {
    const digest = parseDigest(digestInput);
    if (!Number.isSafeInteger(size) || size < 0) throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `blob ${digest} has an invalid size ${size}`);
    const partial = this.#partialPath(digest);
    await acquireLock(`${partial}.lock`, digest);
    try {
      return await this.#openLocked(digest, size, partial);
    } catch (err) {
      await rm(`${partial}.lock`, { force: true });
      throw err;
    }
  }

  async #openLocked(digest: Digest, size: number, partial: string): Promise<BlobWriter> {
    const hash = this.#newHasher();
    let offset = 0;
    let validator: string | undefined;
    const existing = await lstat(partial).catch(() => undefined);
    if (existing !== undefined) {
      if (!existing.isFile() || existing.size > size) {
        await rm(partial, { force: true });
      } else {
        for await (const chunk of createReadStream(partial, { highWaterMark: 1 << 20 })) await hash.update(chunk as Buffer);
        offset = existing.size;
        validator = await readFile(`${partial}.validator`, 'utf8').catch(() => undefined);
      }
    }
    await this.ensureSpace(size - offset);
    const handle = await open(partial, offset > 0 ? 'r+' : 'w', 0o600);
    return new PartialBlobWriter(this, digest, size, partial, handle, hash, () => this.#newHasher(), offset, validator, this.#options.writeBatchBytes ?? WRITE_BATCH_BYTES, this.#options.backgroundSyncBytes ?? BACKGROUND_SYNC_BYTES);
  }

  /** Stores bytes already in memory (manifests, configs, small layers). */
  async putBytes(bytes: Uint8Array, expected?: Digest): Promise<Digest> {
    const digest = expected ?? (`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    return this.exclusive(digest, async () => {
      if (await this.has(digest)) return digest;
      const writer = await this.openWriter(digest, bytes.byteLength);
      if (writer.offset > 0) await writer.restart();
      try {
        await writer.write(bytes);
        await writer.commit();
      } catch (err) {
        await writer.close();
        throw err;
      }
      return digest;
    });
  }

  /** Copies a local file into the store, hashing it on the way; returns its digest and size. */
  async putFile(path: string): Promise<{ digest: Digest; size: number }> {
    const info = await stat(path);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    return this.exclusive(digest, async () => {
      if (await this.has(digest)) return { digest, size: info.size };
      const writer = await this.openWriter(digest, info.size);
      if (writer.offset > 0) await writer.restart();
      try {
        for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await writer.write(chunk as Buffer);
        await writer.commit();
      } catch (err) {
        await writer.close();
        throw err;
      }
      return { digest, size: info.size };
    });
  }

  /**
   * Deletes committed blobs not in `keep`, except those committed within `graceMs` (a
   * concurrent pull may not have recorded its version yet), and partial downloads untouched
   * for `partialMaxAgeMs` whose lock is free. Returns what was removed.
   */
  async gc(keep: ReadonlySet<string>, options: { graceMs?: number; partialMaxAgeMs?: number; now?: number } = {}): Promise<{ removed: Digest[]; bytes: number }> {
    const now = options.now ?? Date.now();
    const graceMs = options.graceMs ?? 60 * 60 * 1000;
    const removed: Digest[] = [];
    let bytes = 0;
    const dir = join(this.#options.root, 'sha256');
    for (const name of await readdir(dir)) {
      const digest = `sha256:${name}`;
      const path = join(dir, name);
      if (keep.has(digest)) continue;
      const info = await lstat(path).catch(() => undefined);
      if (info === undefined || now - info.mtimeMs < graceMs) continue;
      await unlink(path);
      bytes += info.size;
      if (/^[a-f0-9]{64}$/.test(name)) removed.push(digest as Digest);
    }
    await fsyncDirectory(dir);
    if (options.partialMaxAgeMs !== undefined) {
      const partialDir = this.#partialDir();
      for (const name of await readdir(partialDir)) {
        if (!name.endsWith('.part')) continue;
        const path = join(partialDir, name);
        const info = await lstat(path).catch(() => undefined);
        if (info === undefined || now - info.mtimeMs < options.partialMaxAgeMs) continue;
        if (holderAlive(await readFile(`${path}.lock`, 'utf8').catch(() => ''))) continue;
        bytes += info.size;
        for (const suffix of ['', '.validator', '.lock']) await rm(`${path}${suffix}`, { force: true });
      }
    }
    return { removed, bytes };
  }

  /** @internal used by the writer to finish a commit. */
  async promote(partial: string, digest: Digest): Promise<string> {
    const target = this.path(digest);
    // Read-only: nothing in the daemon rewrites a verified blob in place.
    await chmod(partial, 0o444);
    await rename(partial, target);
    await rm(`${partial}.validator`, { force: true });
    await fsyncDirectory(join(this.#options.root, 'sha256'));
    return target;
  }
}

/** Reads into memory go in pieces of this size (each hashed as it lands). */
const READ_PIECE_BYTES = 16 * 1024 * 1024;
/**
 * Chunks from the network are small (64 KiB from a socket); they are kept by reference
 * and written with one writev per this many bytes: no copy, few syscalls.
 */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/** The smallest buffer lent to a socket reader: room for a whole response head plus a few reads. */
const MIN_LENT_BATCH_BYTES = 64 * 1024;
/** writev takes at most IOV_MAX (1024 on Linux) buffers per call. */
const WRITE_BATCH_CHUNKS = 1024;
/** Every this many bytes a background fdatasync starts (if none is running). */
const BACKGROUND_SYNC_BYTES = 16 * 1024 * 1024;

/**
 * INVARIANTS: bytes [0, #flushed) are in the file or in the one write in flight (#inflight);
 * bytes [#flushed, #written) are the chunks in #pending, hashed, in order; `close` flushes them so a resume sees every byte
 * written. A chunk is held by reference until its batch is written, so callers hand over
 * chunks they do not modify afterwards (socket and file-stream chunks are fresh buffers).
 * Lent batch buffers (batchBuffer/writeBatch) are either with the caller, in
 * #pendingBatches/the write in flight, or in #spareBatches; never in two places.
 */
class PartialBlobWriter implements BlobWriter {
  #written: number;
  #flushed: number;
  #closed = false;
  #hash: StreamHasher;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #inflight: Promise<void> | undefined;
  /** The failure of a write nobody was waiting for; #writeAt only rejects with EdgevolveError. */
  #writeError: EdgevolveError | undefined;
  #syncedAt = 0;
  #background: Promise<unknown> | undefined;
  /** Lent batch buffers that are back and free; see batchBuffer. */
  readonly #spareBatches: Buffer[] = [];
  /** The batch buffers inside #pending, returned to #spareBatches once their write is done. */
  #pendingBatches: Buffer[] = [];

  constructor(
    private readonly store: BlobStore,
    readonly digest: Digest,
    readonly size: number,
    private readonly partialPath: string,
    private readonly handle: FileHandle,
    hash: StreamHasher,
    private readonly newHasher: () => StreamHasher,
    readonly offset: number,
    public validator: string | undefined,
    private readonly batchBytes: number,
    private readonly syncBytes: number,
  ) {
    this.#written = offset;
    this.#flushed = offset;
    this.#hash = hash;
  }

  get written(): number {
    return this.#written;
  }

  async setValidator(validator: string | undefined): Promise<void> {
    this.validator = validator;
    if (validator === undefined) await rm(`${this.partialPath}.validator`, { force: true });
    else await writeSmall(`${this.partialPath}.validator`, validator);
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.#append(chunk);
    if (this.#pendingBytes >= this.batchBytes || this.#pending.length >= WRITE_BATCH_CHUNKS) await this.#flush(false);
  }

  batchBuffer(): Buffer {
    return this.#spareBatches.pop() ?? Buffer.allocUnsafe(Math.max(this.batchBytes, MIN_LENT_BATCH_BYTES));
  }

  async writeBatch(buffer: Buffer, length: number): Promise<void> {
    await this.#append(buffer.subarray(0, length));
    this.#pendingBatches.push(buffer);
    await this.#flush(false);
  }

  /** Checks the size cap, hashes the chunk and queues it (by reference) for the next writev. */
  async #append(chunk: Uint8Array): Promise<void> {
    if (this.#written + chunk.byteLength > this.size) {
      throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `blob ${this.digest} is longer than the ${this.size} bytes its descriptor declares`, {
        context: { digest: this.digest, size: this.size },
      });
    }
    const behind = this.#hash.update(chunk);
    if (behind !== undefined) await behind;
    this.#written += chunk.byteLength;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
  }

  /**
   * Hands the pending chunks to one writev. With `wait` false the write stays in flight
   * while the caller goes on receiving (network and disk overlap); a second batch waits
   * for the first, so writes stay in order and at most two batches are held in memory.
   */
  async #flush(wait = true): Promise<void> {
    await this.#drain();
    if (this.#pendingBytes > 0) {
      const batch = this.#pending;
      const bytes = this.#pendingBytes;
      const position = this.#flushed;
      const lent = this.#pendingBatches;
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#pendingBatches = [];
      this.#flushed += bytes;
      this.#inflight = this.#writeAt(batch, position, bytes).then(
        () => {
          this.#spareBatches.push(...lent);
          this.#startBackgroundSync();
        },
        (err: unknown) => {
          this.#writeError = err instanceof EdgevolveError ? err : new EdgevolveError('E_IO', `cannot write blob ${this.digest}: ${String(err)}`, { cause: err });
        },
      );
    }
    if (wait) await this.#drain();
  }

  /** Waits for the write in flight; rethrows its failure (ENOSPC...) to whoever waits next. */
  async #drain(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = undefined;
    if (inflight !== undefined) await inflight;
    if (this.#writeError !== undefined) throw this.#writeError;
  }

  /** Starts writeback while the download goes on, so the fsync at commit has little left to do. */
  #startBackgroundSync(): void {
    if (this.#flushed - this.#syncedAt >= this.syncBytes && this.#background === undefined) {
      this.#syncedAt = this.#flushed;
      this.#background = this.handle.datasync().then(
        () => (this.#background = undefined),
        () => (this.#background = undefined),
      );
    }
  }

  async #writeAt(chunks: Uint8Array[], position: number, bytes: number): Promise<void> {
    try {
      let done = 0;
      let rest = chunks;
      // writev may write less than asked (a signal, a full quota): continue from where it stopped.
      while (done < bytes) {
        const { bytesWritten } = await this.handle.writev(rest, position + done);
        if (bytesWritten <= 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
        done += bytesWritten;
        if (done < bytes) rest = remainingChunks(rest, bytesWritten);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || (err as NodeJS.ErrnoException).code === 'EDQUOT') {
        throw new EdgevolveError('E_STORE_DISK_FULL', `disk full while writing blob ${this.digest}`, { cause: err, context: { digest: this.digest } });
      }
      throw new EdgevolveError('E_IO', `cannot write blob ${this.digest}: ${(err as Error).message}`, { cause: err });
    }
  }

  async restart(): Promise<void> {
    await this.#drain().catch(() => undefined);
    this.#writeError = undefined;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingBatches = [];
    await this.handle.truncate(0);
    this.#hash.dispose();
    this.#hash = this.newHasher();
    this.#written = 0;
    this.#flushed = 0;
  }

  async commit(): Promise<string> {
    if (this.#written !== this.size) {
      await this.close();
      throw new EdgevolveError('E_REGISTRY_PROTOCOL', `blob ${this.digest} ended after ${this.#written} of ${this.size} bytes`, {
        context: { digest: this.digest, written: this.#written, size: this.size },
      });
    }
    const actual = `sha256:${await this.#hash.digest()}`;
    if (actual !== this.digest) {
      await this.#discard();
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `blob ${this.digest} arrived with sha256 ${actual}; discarded`, {
        context: { digest: this.digest, actual },
      });
    }
    await this.#flush();
    await this.#background;
    await this.handle.sync();
    await this.#closeHandle();
    return this.store.promote(this.partialPath, this.digest);
  }

  async close(): Promise<void> {
    if (!this.#closed) await this.#flush().catch(() => undefined);
    await this.#closeHandle();
  }

  async #discard(): Promise<void> {
    await this.#closeHandle();
    await rm(this.partialPath, { force: true });
    await rm(`${this.partialPath}.validator`, { force: true });
  }

  async #closeHandle(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inflight;
    await this.#background;
    await this.handle.close();
    await rm(`${this.partialPath}.lock`, { force: true });
  }
}

/** The chunks left after the first `skip` bytes of `chunks` were written. */
function remainingChunks(chunks: readonly Uint8Array[], skip: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let left = skip;
  for (const c of chunks) {
    if (left >= c.byteLength) {
      left -= c.byteLength;
      continue;
    }
    rest.push(left > 0 ? c.subarray(left) : c);
    left = 0;
  }
  return rest;
}

/** Identifies this process in lock files: a PID alone is reused (PID 1 in every container). */
const PROCESS_TOKEN = `${process.pid}:${randomBytes(8).toString('hex')}`;

/**
 * Takes `<partial>.lock` (O_EXCL) so two processes never write one partial file. A lock
 * whose process is gone (killed mid-download) is stale and taken over.
 */
async function acquireLock(path: string, digest: Digest): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(PROCESS_TOKEN);
      await handle.close();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readFile(path, 'utf8').catch(() => '');
    if (holderAlive(holder)) {
      throw new EdgevolveError('E_STORE_BUSY', `blob ${digest} is being downloaded by another process (${holder.split(':')[0] ?? '?'})`, { context: { digest } });
    }
    await rm(path, { force: true });
  }
  throw new EdgevolveError('E_STORE_BUSY', `blob ${digest}: could not take the download lock`, { context: { digest } });
}

function holderAlive(holder: string): boolean {
  const pid = Number(holder.split(':')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return holder === PROCESS_TOKEN;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function writeSmall(path: string, text: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}
