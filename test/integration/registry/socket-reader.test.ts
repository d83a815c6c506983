/**
 * The socket blob reader against peers that answer what a real registry does not: a
 * scripted TCP server plays a broken or hostile registry (the one place a fake is right),
 * and a real full disk (a tmpfs) sits under the store. The faults a real registry behind
 * a proxy can show (drops, resume, 200 instead of 206, ETag, Content-Range, corruption)
 * run through both readers in faults.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { systemDisk, type Clock } from '../../../src/host/index.ts';
import { RegistryClient, downloadBlob, type Descriptor } from '../../../src/registry/index.ts';
import { BlobStore } from '../../../src/store/index.ts';
import { freePort } from '../../helpers/free-port.ts';
import { requireRegistry, startRegistry } from '../../helpers/registry-server.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { FaultProxy } from './fault-proxy.ts';

const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const random = { random: () => Math.random() };
const once = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };

interface Reply {
  readonly bytes: Buffer;
  /** End the connection after this reply (a close-delimited body, or a drop). */
  readonly close?: boolean;
}

/** A TCP server answering each request head (several per keep-alive connection) with scripted bytes. */
class ScriptedRegistry {
  readonly requests: string[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly reply: (request: string, index: number) => Reply) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
      let pending = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        pending = Buffer.concat([pending, data]);
        for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
          const request = pending.toString('latin1', 0, end);
          pending = pending.subarray(end + 4);
          const reply = this.reply(request, this.requests.length);
          this.requests.push(request);
          socket.write(reply.bytes);
          if (reply.close === true) {
            socket.end();
            return;
          }
        }
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

const response = (status: string, fields: readonly string[], body: Uint8Array = Buffer.alloc(0)): Buffer =>
  Buffer.concat([Buffer.from(`HTTP/1.1 ${status}\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`, 'latin1'), body]);
const fromSocketReader = (request: string | undefined): boolean => /\r\nConnection: close(\r\n|$)/.test(request ?? '');

describe('the socket blob reader against a broken or hostile registry', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let server: ScriptedRegistry | undefined;
  let client: RegistryClient | undefined;
  const blob = randomBytes(300_000);
  const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`, size: blob.byteLength };

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await client?.close();
    await server?.stop();
    client = undefined;
    server = undefined;
    await cleanup();
  });

  /** A store with 64 KiB batches, so a 300 KB blob crosses several lent buffers. */
  async function newStore(name = 'blobs'): Promise<BlobStore> {
    const blobs = new BlobStore({ root: join(dir, name), disk: systemDisk, writeBatchBytes: 64 * 1024 });
    await blobs.init();
    return blobs;
  }

  async function serve(reply: (request: string, index: number) => Reply, options: { credentials?: { username: string; password: string } } = {}): Promise<RegistryClient> {
    server = new ScriptedRegistry(reply);
    await server.start();
    client = new RegistryClient({ registry: server.host, repository: 'r/x', plainHttp: true, clock, random, retry: once, ...options });
    return client;
  }

  async function download(source: RegistryClient, blobs?: BlobStore, what: Descriptor = descriptor): Promise<BlobStore> {
    const store = blobs ?? (await newStore());
    await downloadBlob({ blobs: store, clock, random, retry: once }, source, what);
    return store;
  }

  const ok = (): Reply => ({ bytes: response('200 OK', [`Content-Length: ${blob.byteLength}`, 'ETag: "e"'], blob) });

  it('a well-formed 200 is read by the socket reader alone, in several lent batches, and commits', async () => {
    const source = await serve(ok);
    const store = await download(source);
    expect(await store.verify(descriptor.digest)).toBe(true);
    expect(server?.requests).toHaveLength(1);
    expect(fromSocketReader(server?.requests[0])).toBe(true);
  });

  it.each([
    ['a chunked body', (): Reply => ({ bytes: response('200 OK', ['Transfer-Encoding: chunked'], Buffer.concat([Buffer.from(`${blob.byteLength.toString(16)}\r\n`), blob, Buffer.from('\r\n0\r\n\r\n')])) })],
    ['a body delimited by the end of the connection (no Content-Length)', (): Reply => ({ bytes: response('200 OK', [], blob), close: true })],
    ['a 503', (_r: string, i: number): Reply => (i === 0 ? { bytes: response('503 Service Unavailable', ['Content-Length: 0']) } : ok())],
  ])('declines %s: undici downloads the blob instead', async (_name, reply) => {
    const source = await serve(reply);
    // The undici fallback retries the 503 within its own attempt.
    client = new RegistryClient({ registry: server?.host ?? '', repository: 'r/x', plainHttp: true, clock, random, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } });
    await source.close();
    const store = await download(client);
    expect(await store.verify(descriptor.digest)).toBe(true);
    expect(fromSocketReader(server?.requests[0])).toBe(true);
    expect(server?.requests.slice(1).some(fromSocketReader)).toBe(false);
    expect(server?.requests.length).toBeGreaterThanOrEqual(2);
  });

  it('declines a redirect, which undici follows on the same origin', async () => {
    const source = await serve((request) =>
      request.includes('/elsewhere') ? ok() : { bytes: response('307 Temporary Redirect', ['Location: /v2/r/x/blobs/elsewhere', 'Content-Length: 0']) },
    );
    const store = await download(source);
    expect(await store.verify(descriptor.digest)).toBe(true);
    expect(server?.requests.map((r) => [fromSocketReader(r), r.split(' ')[1]])).toEqual([
      [true, `/v2/r/x/blobs/${descriptor.digest}`],
      [false, `/v2/r/x/blobs/${descriptor.digest}`],
      [false, '/v2/r/x/blobs/elsewhere'],
    ]);
  });

  it('declines a 401 (undici runs the challenge); once the credentials are known, the next blob GET carries them on the socket', async () => {
    const authorization = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const source = await serve(
      (request) => (request.includes(`authorization: ${authorization}`) ? ok() : { bytes: response('401 Unauthorized', ['WWW-Authenticate: Basic realm="r"', 'Content-Length: 0']) }),
      { credentials: { username: 'u', password: 'p' } },
    );
    await download(source);
    await download(source, await newStore('second'));
    expect(server?.requests.map((r) => [fromSocketReader(r), r.includes(authorization)])).toEqual([
      [true, false],
      [false, false],
      [false, true],
      [true, true],
    ]);
  });

  it.each([
    ['a repeated Content-Length', response('200 OK', [`Content-Length: ${blob.byteLength}`, `Content-Length: ${blob.byteLength}`], blob)],
    ['a Content-Length that is not a number', response('200 OK', [`Content-Length: ${blob.byteLength}x`], blob)],
    ['a Content-Length other than the descriptor size', response('200 OK', [`Content-Length: ${blob.byteLength - 1}`], blob.subarray(1))],
    ['two ETags', response('200 OK', [`Content-Length: ${blob.byteLength}`, 'ETag: "a"', 'ETag: "b"'], blob)],
    ['an obs-folded field', response('200 OK', [`Content-Length: ${blob.byteLength}`, 'X-Note: a', ' folded'], blob)],
    ['a head over 16 KiB', response('200 OK', [`Content-Length: ${blob.byteLength}`, `X-Pad: ${'p'.repeat(17 * 1024)}`], blob)],
    ['a malformed status line', response('200 OK', [`Content-Length: ${blob.byteLength}`], blob).fill('O', 9, 10)],
  ])('refuses %s with E_REGISTRY_PROTOCOL, without falling back and without storing anything', async (_name, bytes) => {
    const source = await serve(() => ({ bytes }));
    const store = await newStore();
    await expect(download(source, store)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_PROTOCOL'));
    expect(server?.requests).toHaveLength(1);
    expect(await store.has(descriptor.digest)).toBe(false);
  });

  it('refuses body bytes beyond Content-Length with E_REGISTRY_PROTOCOL', async () => {
    const small = randomBytes(1000);
    const what: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(small).digest('hex')}`, size: small.byteLength };
    // One write: the extra bytes arrive in the same read as the body.
    const source = await serve(() => ({ bytes: response('200 OK', [`Content-Length: ${small.byteLength}`], Buffer.concat([small, Buffer.alloc(10)])) }));
    await expect(download(source, undefined, what)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_PROTOCOL') && /more body bytes/.test((e as Error).message));
  });

  it('a body cut short keeps every received byte in the partial file and fails retryably (E_REGISTRY_UNREACHABLE)', async () => {
    const cut = 200_000;
    const source = await serve(() => ({ bytes: response('200 OK', [`Content-Length: ${blob.byteLength}`], blob.subarray(0, cut)), close: true }));
    const store = await newStore();
    await expect(download(source, store)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_UNREACHABLE'));
    expect((await stat(join(dir, 'blobs', 'partial', `${descriptor.digest.slice(7)}.part`))).size).toBe(cut);
  });

  it('an aborted download stops at once and keeps what arrived', async () => {
    const controller = new AbortController();
    const source = await serve(() => {
      setTimeout(() => controller.abort(new Error('stop')), 50);
      // The head and part of the body, then silence: only the abort ends the wait.
      return { bytes: response('200 OK', [`Content-Length: ${blob.byteLength}`], blob.subarray(0, 100_000)) };
    });
    const store = await newStore();
    await expect(downloadBlob({ blobs: store, clock, random, retry: once }, source, descriptor, controller.signal)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_UNREACHABLE'));
    expect((await stat(join(dir, 'blobs', 'partial', `${descriptor.digest.slice(7)}.part`))).size).toBe(100_000);
  });
});

/** A real full filesystem needs a small tmpfs, which only root can mount (CI runs as root). */
const canMountTmpfs = process.getuid?.() === 0;

describe.runIf(requireRegistry() && canMountTmpfs)('the socket blob reader on a full disk (real ENOSPC on a 4 MB tmpfs)', () => {
  it('fails with E_STORE_DISK_FULL while streaming and commits nothing', async () => {
    const { dir, cleanup } = await makeTempDir('edgevolve-full-');
    const mountPoint = join(dir, 'disk');
    await mkdir(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
    const registry = await startRegistry();
    const proxy = new FaultProxy({ host: '127.0.0.1', port: registry.port });
    await proxy.start();
    try {
      const bytes = randomBytes(6 * 1024 * 1024);
      const what: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.byteLength };
      const direct = new RegistryClient({ registry: registry.host, repository: 'full/blob', plainHttp: true, clock, random });
      await direct.pushBlob(what, { bytes });
      await direct.close();
      // The free-space check before the download is told there is room, so the real ENOSPC comes while streaming.
      const blobs = new BlobStore({ root: join(mountPoint, 'blobs'), disk: { freeBytes: () => Promise.resolve(2 ** 40) }, writeBatchBytes: 1024 * 1024 });
      await blobs.init();
      const source = new RegistryClient({ registry: proxy.host, repository: 'full/blob', plainHttp: true, clock, random, retry: once });
      await expect(downloadBlob({ blobs, clock, random, retry: once }, source, what)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_DISK_FULL'));
      await source.close();
      expect(await blobs.has(what.digest)).toBe(false);
      expect(proxy.log.map((l) => l.connection)).toEqual(['close']);
    } finally {
      await proxy.stop();
      await registry.stop();
      // Lazy: a file this process still holds must not leave the mount behind.
      spawnSync('umount', ['-l', mountPoint]);
      await cleanup();
    }
  });
});
