/**
 * Loading exactly the verified bytes (P4) and the external-data and calibration layers:
 * push to a real OCI layout, pull into a real store and SQLite database, open the
 * version with openVerifiedModel and run it in onnxruntime from those bytes.
 */
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import type { Clock } from '../../../src/host/index.ts';
import { systemDisk } from '../../../src/host/index.ts';
import { decodeModel, encodeModel } from '../../../src/onnx/codec.ts';
import {
  ANNOTATION,
  MEDIA_TYPE,
  OciLayout,
  manifestBytes,
  openVerifiedModel,
  pullModel,
  pushArtifact,
  readVerifiedCalibration,
  type ImageIndex,
  type ImageManifest,
  type PullDeps,
} from '../../../src/registry/index.ts';
import { BlobStore, ModelRepository, digestHex, openStateDatabase, type Digest, type StateDatabase } from '../../../src/store/index.ts';
import { writeExternalDataModel } from '../../helpers/external-data-model.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const MLP = 'test/fixtures/models/mnist-mlp.onnx';
const CALIB = 'test/fixtures/data/mnist-calib';
const clock: Clock = { now: () => Date.now(), sleep: () => Promise.resolve() };
const profile = { arch: 'amd64', availableMemoryBytes: 8 * 1024 ** 3, preferredPrecisions: ['fp32'], basis: [], accelerators: [], cpuFeatures: [] };


async function logits(bytes: Uint8Array, externalData: readonly { path: string; data: Uint8Array }[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, externalData.length === 0 ? {} : { externalData: [...externalData] });
  const input = new ort.Tensor('float32', new Float32Array(784).fill(0.5), [1, 1, 28, 28]);
  const out = await session.run({ [session.inputNames[0] ?? 'input']: input });
  await session.release();
  return out[session.outputNames[0] ?? 'logits']?.data as Float32Array;
}

describe('openVerifiedModel and the external-data and calibration layers', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let db: StateDatabase;
  let layout: OciLayout;
  let deps: PullDeps;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
    db = openStateDatabase(join(dir, 'state.db'));
    layout = new OciLayout(join(dir, 'layout'));
    await layout.init();
    deps = {
      blobs: new BlobStore({ root: join(dir, 'blobs'), disk: systemDisk }),
      repository: new ModelRepository(db, clock),
      policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false },
      profile,
      clock,
      random: { random: () => 0.5 },
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    };
    await deps.blobs.init();
  });
  afterEach(async () => {
    db.close();
    await cleanup();
  });

  const store = (): { blobs: BlobStore; repository: ModelRepository } => ({ blobs: deps.blobs, repository: deps.repository });

  it('pushes a model with external data and a calibration set, pulls them verified, and onnxruntime runs the verified bytes with the same outputs', async () => {
    const model = await writeExternalDataModel(dir);
    const pushed = await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: model }] }, 'v1');
    expect(pushed.variants[0]?.layers.map((l) => l.title)).toEqual(['weights/mlp.bin', 'input.npy', 'labels.npy']);

    const pulled = await pullModel(deps, { source: layout, reference: 'v1', fallbackName: 'x' });
    expect(pulled.layers.map((l) => [l.title, l.mediaType])).toEqual([
      ['weights/mlp.bin', MEDIA_TYPE.onnxExternalData],
      ['input.npy', MEDIA_TYPE.calibrationFile],
      ['labels.npy', MEDIA_TYPE.calibrationFile],
    ]);

    const loaded = await openVerifiedModel(store(), { name: 'mlp' });
    expect(loaded.record.version).toBe('1.0.0');
    expect(Buffer.from(loaded.bytes).equals(await readFile(model))).toBe(true);
    expect(loaded.externalData.map((e) => e.path)).toEqual(['weights/mlp.bin']);
    expect(loaded.config.inputs[0]?.name).toBe('input');
    // The same logits as the single-file fixture: the external data arrived intact and in place.
    expect(Array.from(await logits(loaded.bytes, loaded.externalData))).toEqual(Array.from(await logits(await readFile(MLP), [])));

    const calibration = await readVerifiedCalibration(deps.blobs, loaded);
    expect([...calibration.keys()]).toEqual(['input.npy', 'labels.npy']);
    expect(calibration.get('input.npy')?.equals(await readFile(join(CALIB, 'input.npy')))).toBe(true);
  });

  it('retention keeps the external-data and calibration blobs of kept versions and drops those of pruned ones', async () => {
    const model = await writeExternalDataModel(dir);
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: model }] }, 'v1');
    await pushArtifact(layout, { name: 'mlp', version: '2.0.0', variants: [{ name: 'fp32', modelPath: MLP }] }, 'v2');
    const first = await pullModel(deps, { source: layout, reference: 'v1', fallbackName: 'x' });
    await pullModel(deps, { source: layout, reference: 'v2', fallbackName: 'x' });
    const kept = deps.repository.prune(1);
    for (const l of first.layers) expect(kept.has(l.digest)).toBe(true);
    const dropped = deps.repository.prune(0);
    for (const l of first.layers) expect(dropped.has(l.digest)).toBe(false);
  });

  it('refuses to load a model or external-data blob that changed on disk after it was verified (E_STORE_CORRUPT), and a blob replaced by a link', async () => {
    const model = await writeExternalDataModel(dir);
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', variants: [{ name: 'fp32', modelPath: model }] }, 'v1');
    const pulled = await pullModel(deps, { source: layout, reference: 'v1', fallbackName: 'x' });
    const weights = deps.blobs.path(pulled.layers[0]?.digest as Digest);
    const original = await readFile(weights);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    await chmod(weights, 0o644);
    await writeFile(weights, flipped);
    await expect(openVerifiedModel(store(), { name: 'mlp' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_CORRUPT'));

    await writeFile(weights, original);
    expect((await openVerifiedModel(store(), { name: 'mlp' })).externalData).toHaveLength(1);

    const modelBlob = deps.blobs.path(pulled.modelDigest as Digest);
    await writeFile(join(dir, 'copy.onnx'), await readFile(modelBlob));
    await rm(modelBlob, { force: true });
    await symlink(join(dir, 'copy.onnx'), modelBlob);
    await expect(openVerifiedModel(store(), { name: 'mlp' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_PATH_ESCAPE'));
  });

  it('opens the active version by default, a named one on request, the previous one after rollback, and refuses an unsigned one under requireSigned', async () => {
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', variants: [{ name: 'fp32', modelPath: MLP }] }, 'v1');
    const model2 = await writeExternalDataModel(dir);
    await pushArtifact(layout, { name: 'mlp', version: '2.0.0', variants: [{ name: 'fp32', modelPath: model2 }] }, 'v2');
    await pullModel(deps, { source: layout, reference: 'v1', fallbackName: 'x' });
    await pullModel(deps, { source: layout, reference: 'v2', fallbackName: 'x' });
    expect((await openVerifiedModel(store(), { name: 'mlp' })).record.version).toBe('2.0.0');
    expect((await openVerifiedModel(store(), { name: 'mlp', version: '1.0.0' })).externalData).toEqual([]);
    deps.repository.rollback('mlp');
    expect((await openVerifiedModel(store(), { name: 'mlp' })).record.version).toBe('1.0.0');
    await expect(openVerifiedModel(store(), { name: 'mlp', version: '3.0.0' })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_NOT_FOUND'));
    await expect(openVerifiedModel(store(), { name: 'mlp' }, { requireSigned: true })).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_SIGNATURE_MISSING'));
  });

  it('push refuses a model whose external data points outside its directory or through a symlink', async () => {
    const model = await writeExternalDataModel(dir, 'weights/mlp.bin');
    const parsed = decodeModel(await readFile(model));
    for (const t of parsed.graph?.initializer ?? []) for (const e of t.externalData ?? []) if (e.key === 'location') e.value = '../outside.bin';
    await mkdir(join(dir, 'm'));
    await writeFile(join(dir, 'outside.bin'), 'x');
    await writeFile(join(dir, 'm', 'escape.onnx'), encodeModel(parsed));
    await expect(pushArtifact(layout, { name: 'mlp', version: '1', variants: [{ name: 'fp32', modelPath: join(dir, 'm', 'escape.onnx') }] }, 'v1')).rejects.toSatisfy((e) =>
      isEdgevolveError(e, 'E_STORE_PATH_ESCAPE'),
    );

    await rm(join(dir, 'weights', 'mlp.bin'));
    await symlink('/etc/passwd', join(dir, 'weights', 'mlp.bin'));
    await expect(pushArtifact(layout, { name: 'mlp', version: '1', variants: [{ name: 'fp32', modelPath: model }] }, 'v1')).rejects.toSatisfy((e) =>
      isEdgevolveError(e, 'E_ONNX_EXTERNAL_DATA'),
    );
  });

  it('push refuses a calibration directory holding a link or a file that is not NPY', async () => {
    const calib = join(dir, 'calib');
    await mkdir(calib);
    await writeFile(join(calib, 'input.npy'), await readFile(join(CALIB, 'input.npy')));
    await symlink('/etc/passwd', join(calib, 'labels.npy'));
    const spec = { name: 'mlp', version: '1', calibrationDir: calib, variants: [{ name: 'fp32', modelPath: MLP }] };
    await expect(pushArtifact(layout, spec, 'v1')).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_PATH_ESCAPE') && /labels\.npy/.test((e as Error).message));
    await rm(join(calib, 'labels.npy'));
    await writeFile(join(calib, 'labels.npy'), 'not numpy');
    await expect(pushArtifact(layout, spec, 'v1')).rejects.toSatisfy((e) => isEdgevolveError(e) && (e as { code: string }).code.startsWith('E_DATA'));
  });

  it('pull refuses layer titles that would leave a directory (.., absolute, backslash) before fetching any layer', async () => {
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, 'v1');
    const root = await layout.resolve('v1');
    if (root.kind !== 'index') throw new Error('expected an index');
    const entry = root.index.manifests[0];
    if (entry === undefined) throw new Error('no variant');
    const variant = await layout.fetchManifest(entry);
    if (variant.kind !== 'manifest') throw new Error('expected a manifest');
    const cases: [string, string][] = [
      [MEDIA_TYPE.calibrationFile, '../../etc/cron.d/x.npy'],
      [MEDIA_TYPE.calibrationFile, '/tmp/x.npy'],
      [MEDIA_TYPE.onnxExternalData, 'weights/../../x.bin'],
      [MEDIA_TYPE.onnxExternalData, 'weights\\..\\x.bin'],
      [MEDIA_TYPE.onnxExternalData, '/etc/passwd'],
    ];
    for (const [i, [mediaType, title]] of cases.entries()) {
      const layers = variant.manifest.layers.map((l, k) => (k === 1 ? { ...l, mediaType, annotations: { [ANNOTATION.title]: title } } : l));
      const tampered: ImageManifest = { ...variant.manifest, layers };
      const bytes = manifestBytes(tampered);
      const digest = await layout.pushManifest(bytes, MEDIA_TYPE.ociManifest);
      const index: ImageIndex = { ...root.index, manifests: [{ ...entry, digest, size: bytes.byteLength }] };
      await layout.pushManifest(manifestBytes(index), MEDIA_TYPE.ociIndex, `bad${i}`);
      await expect(pullModel(deps, { source: layout, reference: `bad${i}`, fallbackName: 'x' }), title).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_STORE_PATH_ESCAPE'));
    }
    // Nothing of the calibration set was fetched: only the refused manifests' checks ran.
    const calibrationDigest = variant.manifest.layers[1]?.digest as Digest;
    expect(await deps.blobs.has(calibrationDigest)).toBe(false);
    expect(deps.repository.active('mlp')).toBeUndefined();
    expect(digestHex(calibrationDigest)).toHaveLength(64);
  });
});
