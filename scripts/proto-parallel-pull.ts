/**
 * Prototype (issue 6, throughput target): does downloading one blob as K parallel HTTP Range
 * requests, received on worker threads, beat the single-stream pull against `curl -o file`?
 * Every case once per round, order rotated each round, `sync` before each case; medians.
 *
 * The parallel case: the blob is cut into fixed chunks (8 MiB); K workers each take the next
 * unfetched chunk, GET it with `Range`, check 206 + the exact `Content-Range`, write it at its
 * offset (one writev per 4 MiB, one write in flight) and report it done. The main thread
 * hashes the contiguous prefix of done chunks by reading them back (page cache, one reused
 * buffer), so the digest is checked before the final fdatasync, as the store does.
 * Usage: npx tsx scripts/proto-parallel-pull.ts [--mb 100] [--runs 5] [--chunk-mib 8]
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { systemDisk, systemHost } from '../src/host/index.ts';
import { RegistryClient, downloadBlob, sha256Digest, type Descriptor } from '../src/registry/index.ts';
import { BlobStore } from '../src/store/index.ts';
import { startRegistry } from '../test/helpers/registry-server.ts';
import { inProcess, inShell, numericFlag, type Sample } from './lib/timing.ts';

const run = promisify(execFile);
const flag = numericFlag;
const MB = flag('mb', 100);
const RUNS = flag('runs', 5);
const CHUNK = flag('chunk-mib', 8) * 1024 * 1024;
const host = systemHost();
const UNDICI = createRequire(import.meta.url).resolve('undici');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

// CommonJS evaluated in the worker (no loader needed). One undici Agent per worker, keep-alive.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { request, Agent } = require(workerData.undici);
const agent = new Agent({ connections: 1 });
const fds = new Map();
const writev = (fd, bufs, pos) => new Promise((res, rej) => fs.writev(fd, bufs, pos, (e, n) => (e ? rej(e) : res(n))));
parentPort.on('message', async (m) => {
  if (m.op === 'close') { await agent.close(); parentPort.close(); return; }
  if (m.op === 'release') { const fd = fds.get(m.path); if (fd !== undefined) { fs.closeSync(fd); fds.delete(m.path); } return; }
  try {
    let fd = fds.get(m.path);
    if (fd === undefined) { fd = fs.openSync(m.path, 'r+'); fds.set(m.path, fd); }
    const res = await request(m.url, { dispatcher: agent, headers: { range: 'bytes=' + m.start + '-' + (m.end - 1) }, highWaterMark: 1024 * 1024 });
    const expected = 'bytes ' + m.start + '-' + (m.end - 1) + '/' + m.size;
    if (res.statusCode !== 206 || res.headers['content-range'] !== expected) throw new Error('bad range answer ' + res.statusCode + ' ' + res.headers['content-range']);
    let batch = [], bytes = 0, pos = m.start, inflight = Promise.resolve();
    for await (const chunk of res.body) {
      batch.push(chunk); bytes += chunk.byteLength;
      if (bytes >= 4194304 || batch.length >= 1024) {
        await inflight; const b = batch, at = pos; pos += bytes; batch = []; bytes = 0;
        inflight = writev(fd, b, at);
      }
    }
    await inflight;
    if (bytes > 0) { await writev(fd, batch, pos); pos += bytes; }
    if (pos !== m.end) throw new Error('short range ' + pos + ' of ' + m.end);
    parentPort.postMessage({ op: 'done', index: m.index });
  } catch (e) { parentPort.postMessage({ op: 'error', message: String(e) }); }
});
`;

// The same on node:http (a builtin: native llhttp, nothing to load or bundle).
const HTTP_WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const fds = new Map();
const writev = (fd, bufs, pos) => new Promise((res, rej) => fs.writev(fd, bufs, pos, (e, n) => (e ? rej(e) : res(n))));
const get = (url, headers) => new Promise((res, rej) => { const r = http.get(url, { agent, headers }, res); r.on('error', rej); });
parentPort.on('message', async (m) => {
  if (m.op === 'close') { agent.destroy(); parentPort.close(); return; }
  if (m.op === 'release') { const fd = fds.get(m.path); if (fd !== undefined) { fs.closeSync(fd); fds.delete(m.path); } return; }
  try {
    let fd = fds.get(m.path);
    if (fd === undefined) { fd = fs.openSync(m.path, 'r+'); fds.set(m.path, fd); }
    const res = await get(m.url, { range: 'bytes=' + m.start + '-' + (m.end - 1) });
    const expected = 'bytes ' + m.start + '-' + (m.end - 1) + '/' + m.size;
    if (res.statusCode !== 206 || res.headers['content-range'] !== expected) throw new Error('bad range answer ' + res.statusCode + ' ' + res.headers['content-range']);
    let batch = [], bytes = 0, pos = m.start, inflight = Promise.resolve();
    for await (const chunk of res) {
      batch.push(chunk); bytes += chunk.byteLength;
      if (bytes >= 4194304 || batch.length >= 1024) {
        await inflight; const b = batch, at = pos; pos += bytes; batch = []; bytes = 0;
        inflight = writev(fd, b, at);
      }
    }
    await inflight;
    if (bytes > 0) { await writev(fd, batch, pos); pos += bytes; }
    if (pos !== m.end) throw new Error('short range ' + pos + ' of ' + m.end);
    parentPort.postMessage({ op: 'done', index: m.index });
  } catch (e) { parentPort.postMessage({ op: 'error', message: String(e) }); }
});
`;
const startHttpWorker = (): Worker => new Worker(HTTP_WORKER_SOURCE, { eval: true });
const startWorker = (): Worker => new Worker(WORKER_SOURCE, { eval: true, workerData: { undici: UNDICI } });
const stopWorkers = async (workers: Worker[]): Promise<void> => {
  for (const w of workers) w.postMessage({ op: 'close' });
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
};

/** `pool` given: warm workers reused across downloads; otherwise K are started and stopped inside the timing. */
async function parallelPull(url: string, descriptor: Descriptor, path: string, k: number, pool?: Worker[], start: () => Worker = startWorker): Promise<void> {
  const size = descriptor.size;
  const handle = await open(path, 'w+');
  const chunks = Math.ceil(size / CHUNK);
  const done = new Uint8Array(chunks);
  const sha = createHash('sha256');
  const readBuffer = Buffer.allocUnsafe(CHUNK);
  let next = 0;
  let hashed = 0;
  let hashing = Promise.resolve();
  const workers = pool?.slice(0, k) ?? Array.from({ length: Math.min(k, chunks) }, start);
  // The contiguous prefix of done chunks is read back (page cache) and hashed, in order.
  const hashPrefix = async (): Promise<void> => {
    while (hashed < chunks && done[hashed] === 1) {
      const start = hashed * CHUNK;
      const length = Math.min(CHUNK, size - start);
      const { bytesRead } = await handle.read(readBuffer, 0, length, start);
      if (bytesRead !== length) throw new Error('short read back');
      sha.update(readBuffer.subarray(0, length));
      hashed++;
    }
  };
  const listeners: [Worker, (m: unknown) => void][] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      const assign = (w: Worker): void => {
        if (next >= chunks) return;
        const index = next++;
        w.postMessage({ op: 'fetch', index, url, path, size, start: index * CHUNK, end: Math.min(size, (index + 1) * CHUNK) });
      };
      for (const w of workers) {
        const onMessage = (raw: unknown): void => {
          const m = raw as { op: 'done'; index: number } | { op: 'error'; message: string };
          if (m.op === 'error') return reject(new Error(m.message));
          done[m.index] = 1;
          assign(w);
          hashing = hashing.then(hashPrefix);
          if (++finished === chunks) hashing.then(resolve, reject);
        };
        w.on('message', onMessage);
        listeners.push([w, onMessage]);
        assign(w);
      }
    });
    await hashing;
    if (`sha256:${sha.digest('hex')}` !== descriptor.digest) throw new Error('parallel download hashed to the wrong digest');
    await handle.datasync();
  } finally {
    for (const [w, l] of listeners) {
      w.off('message', l);
      w.postMessage({ op: 'release', path });
    }
    if (pool === undefined) await stopWorkers(workers);
    await handle.close();
    await rm(path, { force: true });
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'edgevolve-proto-'));
  const registry = await startRegistry();
  try {
    const client = new RegistryClient({ registry: registry.host, repository: 'bench/blob', plainHttp: true, clock: host, random: host });
    const bytes = randomBytes(MB * 1024 * 1024);
    const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest: sha256Digest(bytes), size: bytes.byteLength };
    await client.pushBlob(descriptor, { bytes });
    const url = `http://${registry.host}/v2/bench/blob/blobs/${descriptor.digest}`;
    const file = join(work, 'download');
    const pool = Array.from({ length: 4 }, startWorker);
    const httpPool = Array.from({ length: 4 }, startHttpWorker);
    let serial = 0;
    const cases: { label: string; run: () => Promise<Sample> }[] = [
      { label: 'curl -o file', run: () => inShell('curl -sf -o "$2" "$1"', url, file).finally(() => rm(file, { force: true })) },
      { label: 'curl -o file, then sync -d', run: () => inShell('curl -sf -o "$2" "$1" && sync -d "$2"', url, file).finally(() => rm(file, { force: true })) },
      {
        label: 'edgevolve downloadBlob (single stream)',
        run: async () => {
          const store = new BlobStore({ root: join(work, `store-${serial++}`), disk: systemDisk });
          await store.init();
          try {
            return await inProcess(() => downloadBlob({ blobs: store, clock: host, random: host }, client, descriptor));
          } finally {
            await rm(store.root, { recursive: true, force: true });
          }
        },
      },
      ...[2].map((k) => ({ label: `K=${k} workers started per download (${CHUNK >> 20} MiB chunks), sha256 read-back, fdatasync`, run: () => inProcess(() => parallelPull(url, descriptor, file, k)) })),
      ...[2, 4].map((k) => ({ label: `K=${k} node:http warm pool workers, sha256 read-back, fdatasync`, run: () => inProcess(() => parallelPull(url, descriptor, file, k, httpPool)) })),
      { label: 'K=2 node:http workers started per download', run: () => inProcess(() => parallelPull(url, descriptor, file, 2, undefined, startHttpWorker)) },
      ...[1, 2, 3, 4].map((k) => ({ label: `K=${k} warm pool workers (${CHUNK >> 20} MiB chunks), sha256 read-back, fdatasync`, run: () => inProcess(() => parallelPull(url, descriptor, file, k, pool)) })),
    ];
    const wall = cases.map(() => [] as number[]);
    const cpu = cases.map(() => [] as number[]);
    const loadBefore = loadavg()[0] ?? 0;
    for (let round = 0; round < RUNS; round++) {
      for (let j = 0; j < cases.length; j++) {
        const i = (round + j) % cases.length;
        await run('sync');
        const s = await cases[i]!.run();
        wall[i]!.push(s.ms);
        cpu[i]!.push(s.cpuMs);
      }
    }
    const curl = median(wall[0]!);
    console.log(`load ${loadBefore.toFixed(1)} -> ${(loadavg()[0] ?? 0).toFixed(1)}; ${RUNS} rounds, ${MB} MB`);
    console.log('| case | MB/s | ms CPU/MB | curl -o file / case (wall) |\n|---|---|---|---|');
    cases.forEach((c, i) => {
      const w = median(wall[i]!);
      console.log(`| ${c.label} | ${(MB / (w / 1000)).toFixed(0)} | ${(median(cpu[i]!) / MB).toFixed(2)} | ${((curl / w) * 100).toFixed(0)} % |`);
    });
    await client.close();
    await stopWorkers(pool);
    await stopWorkers(httpPool);
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
