/**
 * The trust rule for variants built on the device (src/daemon/local-provenance.ts), with a
 * real store, a real cosign-style signed OCI layout, the real planner and the real gate:
 * under registry.trust.requireSignature a local variant is built only from a signed parent,
 * its provenance row is written with the version, it deploys only while that row vouches
 * for its bytes, and a tampered file is refused at load by the digest chain.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InProcessServing, LocalOptimizer, Reconciler, type DesiredModel } from '../../../src/daemon/index.ts';
import { systemHost } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { OciLayout, pushArtifact, signArtifact } from '../../../src/registry/index.ts';
import { parseDigest, type VersionRecord } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { deployRig, MLP, PROFILE, testConfig, writeFailingModel, type DeployRig } from './fixtures.ts';

const CALIB = 'test/fixtures/data/mnist-calib';
const PLANNER = { subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2, maxAccuracyDrop: 5 };
const DEVICE = { fingerprint: 'sha256:test-device', measured: null };
/** mnist-mlp is 0.9 MiB in fp32: int8-dynamic meets 0.5 MiB. */
const REQUEST = { budgets: { sizeMB: 0.5, maxAccuracyDrop: 5 }, methods: ['int8-dynamic'] as const };

describe('local variants under a signing policy', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  let desired: DesiredModel;
  let optimizer: LocalOptimizer;
  let reconciler: Reconciler;
  /** Publishes a signed release to the same layout (the fleet's next version). */
  let publishSigned: (version: string, modelPath: string) => Promise<string>;

  async function setUp(options: { sign: boolean }): Promise<void> {
    const layout = new OciLayout(join(tmp.dir, 'oci'));
    await layout.init();
    const pushed = await pushArtifact(layout, { name: 'm', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    publishSigned = async (version, modelPath) => {
      const release = await pushArtifact(layout, { name: 'm', version, variants: [{ name: 'fp32', modelPath }] }, version);
      await signArtifact(layout, `m:${version}`, release, privateKey);
      return `oci-layout:${join(tmp.dir, 'oci')}:${version}`;
    };
    const keyFile = join(tmp.dir, 'cosign.pub');
    await writeFile(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    if (options.sign) await signArtifact(layout, 'm:1.0.0', pushed, privateKey);
    desired = { name: 'm', ref: `oci-layout:${join(tmp.dir, 'oci')}:1.0.0`, budgets: {} };
    const stateDir = join(tmp.dir, 'state');
    // Pulled without the policy (an unsigned fixture would be refused), then the policy is on for what follows.
    // Serving over the store, as the daemon runs it: every load re-reads and re-hashes the version (openVerifiedModel).
    rig = await deployRig(stateDir, testConfig(stateDir, { planner: PLANNER, daemon: { models: [desired] }, registry: { trust: { publicKeys: [keyFile] } } }), (store) => new InProcessServing({ threads: 1 }, store));
    await rig.reconciler.reconcile(desired, 'initial');
    rig.config = testConfig(stateDir, { planner: PLANNER, daemon: { models: [desired] }, registry: { trust: { requireSignature: true, publicKeys: [keyFile] } } });
    optimizer = new LocalOptimizer({
      store: rig.store,
      clock: systemHost(),
      logger: silentLogger(),
      stateDir,
      planner: () => rig.config.planner,
      device: () => Promise.resolve(DEVICE),
      requireSignature: () => rig.config.registry.trust.requireSignature,
    });
    reconciler = new Reconciler({ store: rig.store, host: systemHost(), logger: silentLogger(), deploy: rig.deploy, state: rig.state, config: () => rig.config, profile: () => Promise.resolve(PROFILE), optimizer, events: rig.events });
  }

  /** Optimizes on the device to REQUEST's budgets; the variant it built and deployed. */
  async function buildVariant(): Promise<VersionRecord> {
    const run = await reconciler.optimize(desired, 'test', undefined, REQUEST);
    if (run.outcome.kind !== 'built') throw new Error(`expected a built variant, got ${run.outcome.kind}`);
    return run.outcome.record;
  }

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-local-trust-');
  });
  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  it('a signed parent: the variant is built with its provenance row, deploys, and stops deploying once the row is gone (the signed release is pulled instead)', async () => {
    await setUp({ sign: true });
    const parent = rig.store.repository.active('m')!;
    expect(parent.signed).toBe(true);

    const run = await reconciler.optimize(desired, 'test', undefined, REQUEST);
    expect(run.outcome.kind).toBe('built');
    if (run.outcome.kind !== 'built') return;
    const built = run.outcome.record;
    expect(built.signed).toBe(false);
    expect(optimizer.provenance(built)).toMatchObject({ modelDigest: built.modelDigest, parentManifest: parent.manifestDigest, parentIndex: parent.indexDigest, parentSigned: true, method: run.outcome.chosen });
    expect(JSON.parse(optimizer.provenance(built)!.options)).toMatchObject({ budgets: REQUEST.budgets, methods: ['int8-dynamic'], fingerprint: DEVICE.fingerprint });
    expect(run.deploy).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });

    // Without its provenance row the pinned variant is no longer trusted: reconcile unpins it and deploys the signed release.
    rig.store.db.prepare('DELETE FROM local_provenance').run();
    expect(() => optimizer.assertTrusted(built)).toThrow(expect.objectContaining({ code: 'E_LOCAL_VARIANT_UNTRUSTED' }) as Error);
    expect(await reconciler.reconcile(desired, 'periodic')).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed', version: { id: parent.id } } });
    expect(rig.serving.loaded().map((m) => m.variant)).toEqual(['fp32']);
    expect((await rig.state.get('m')).variantOverride).toBeNull();
  }, 120_000);

  it('a tampered local variant file is refused at load by its digest, and the previous version serves', async () => {
    await setUp({ sign: true });
    const built = await buildVariant();
    expect(rig.store.repository.active('m')?.id).toBe(built.id);

    const file = rig.store.blobs.path(parseDigest(built.modelDigest, 'model'));
    await chmod(file, 0o644);
    await writeFile(file, Buffer.from('not the model the optimizer wrote'));
    const loaded = await rig.deploy.loadActive('m');
    expect(loaded?.variant).toBe('fp32');
    expect(rig.events.ofKind('deploy-rolled-back').at(-1)?.fields.reason).toMatch(/E_STORE_CORRUPT/);
  }, 120_000);

  it('a restart whose active local variant lost its provenance row serves the newest trusted version instead, with an event naming E_LOCAL_VARIANT_UNTRUSTED', async () => {
    await setUp({ sign: true });
    const parent = rig.store.repository.active('m')!;
    const built = await buildVariant();
    expect(rig.store.repository.active('m')?.id).toBe(built.id);
    rig.store.db.prepare('DELETE FROM local_provenance').run();

    // The restart: a new store, serving and deployment over the same state directory, as Daemon.start runs them.
    const strict = rig.config;
    await rig.close();
    rig = await deployRig(join(tmp.dir, 'state'), strict, (store) => new InProcessServing({ threads: 1 }, store));
    expect(await rig.deploy.recover('m')).toBe('none');
    const loaded = await rig.deploy.loadActive('m');
    expect(loaded).toMatchObject({ versionId: parent.id, variant: 'fp32' });
    expect(rig.serving.loaded().map((m) => m.versionId)).toEqual([parent.id]);
    expect(rig.store.repository.active('m')?.id).toBe(parent.id);
    expect(rig.events.ofKind('deploy-rolled-back').map((e) => e.fields)).toEqual([
      {
        model: 'm',
        from: `1.0.0/${built.variant}`,
        fromManifest: built.manifestDigest,
        to: '1.0.0/fp32',
        toManifest: parent.manifestDigest,
        reason: expect.stringMatching(/^not trusted at start: E_LOCAL_VARIANT_UNTRUSTED: .*no provenance record/) as unknown,
      },
    ]);
    const state = await rig.state.get('m');
    expect(state.trial).toBeNull();
    expect(state.failed.map((f) => f.manifestDigest)).toEqual([built.manifestDigest]);
  }, 120_000);

  it('an operator rollback to a local variant the policy no longer trusts is refused with E_LOCAL_VARIANT_UNTRUSTED, and the signed version keeps serving', async () => {
    await setUp({ sign: true });
    const parent = rig.store.repository.active('m')!;
    const built = await buildVariant();
    // Back to the signed release while the variant is still trusted; then its provenance row goes.
    expect(await rig.deploy.rollback('m', 'test')).toMatchObject({ outcome: 'rolled-back', to: { id: parent.id } });
    rig.store.db.prepare('DELETE FROM local_provenance').run();

    // The rollback command's two forms: back to the previous version, and to a named one (deploy without a shadow).
    await expect(rig.deploy.rollback('m', 'rollback command')).rejects.toMatchObject({ code: 'E_LOCAL_VARIANT_UNTRUSTED', context: { variant: built.variant } });
    await expect(rig.deploy.deploy(built, 'rollback command to 1.0.0', undefined, { shadow: false })).rejects.toMatchObject({ code: 'E_LOCAL_VARIANT_UNTRUSTED' });
    expect(rig.store.repository.active('m')?.id).toBe(parent.id);
    expect(rig.serving.loaded().map((m) => m.versionId)).toEqual([parent.id]);
    expect((await rig.state.get('m')).trial).toBeNull();

    // Without the policy the same rollback goes through: the refusal is the policy's.
    rig.config = testConfig(join(tmp.dir, 'state'), { planner: PLANNER, daemon: { models: [desired] } });
    expect(await rig.deploy.rollback('m', 'rollback command')).toMatchObject({ outcome: 'rolled-back', to: { id: built.id } });
  }, 120_000);

  it('a failed trial whose previous version is a local variant no longer trusted rolls back to the newest trusted version instead, the event naming both exact variants', async () => {
    await setUp({ sign: true });
    const parent = rig.store.repository.active('m')!;
    const built = await buildVariant();
    expect(rig.store.repository.active('m')?.id).toBe(built.id);
    // The variant served; then its provenance row went (the policy now refuses it) and a signed 2.0.0 arrives that cannot run.
    rig.store.db.prepare('DELETE FROM local_provenance').run();
    const release = { ...desired, ref: await publishSigned('2.0.0', await writeFailingModel(join(tmp.dir, 'fails.onnx'))) };
    const result = await reconciler.reconcile(release, 'release');
    expect(result).toMatchObject({ action: 'deployed', outcome: { outcome: 'rolled-back', to: { id: parent.id } } });

    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    const [event] = rig.events.ofKind('deploy-rolled-back');
    expect(event?.fields).toMatchObject({ model: 'm', from: '2.0.0/fp32', fromManifest: v2.manifestDigest, to: '1.0.0/fp32', toManifest: parent.manifestDigest });
    expect(event?.fields.reason).toMatch(
      new RegExp(`^cannot load 2\\.0\\.0/fp32: .*; 1\\.0\\.0/${built.variant} is not trusted now \\(E_LOCAL_VARIANT_UNTRUSTED: .*no provenance record.*\\): rolled back to the newest trusted version 1\\.0\\.0/fp32 instead$`),
    );
    expect(rig.store.repository.active('m')?.id).toBe(parent.id);
    expect(rig.serving.loaded().map((m) => m.versionId)).toEqual([parent.id]);
    const state = await rig.state.get('m');
    expect(state.trial).toBeNull();
    expect(state.failed.map((f) => f.manifestDigest)).toEqual([v2.manifestDigest]);
  }, 120_000);

  it('an unsigned parent under the policy: nothing is built (the pull refuses it, and so does the optimizer given the stored record), the event says why, fp32 keeps serving', async () => {
    await setUp({ sign: false });
    await expect(reconciler.optimize(desired, 'test', undefined, REQUEST)).rejects.toMatchObject({ code: 'E_SIGNATURE_MISSING' });
    expect(rig.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ outcome: 'failed', reason: expect.stringMatching(/^E_SIGNATURE_MISSING: .*not signed/) as unknown }]);
    const parent = rig.store.repository.active('m')!;
    await expect(optimizer.optimize(parent, { ...REQUEST, timeLimitS: 10 })).rejects.toMatchObject({ code: 'E_SIGNATURE_MISSING', message: expect.stringContaining('only from a signed parent') as unknown });
    expect(rig.store.repository.versions('m').map((v) => v.variant)).toEqual(['fp32']);
    expect(rig.serving.loaded().map((m) => m.variant)).toEqual(['fp32']);
  }, 60_000);
});
