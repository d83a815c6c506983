import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDigest, type VersionRecord } from '../../../src/store/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN, MLP, deployRig, publish, testConfig, writeFailingModel, type DeployRig } from './fixtures.ts';

describe('safe deployment: trial, health gate, rollback (real store, real onnxruntime)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  let layout: string;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-deploy-');
    layout = join(tmp.dir, 'oci');
  });

  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  async function start(ref: string, budgets: Record<string, unknown> = {}, deploy: Record<string, unknown> = {}): Promise<void> {
    rig = await deployRig(join(tmp.dir, 'state'), testConfig(join(tmp.dir, 'state'), { daemon: { models: [{ name: 'm', ref, budgets }] }, deploy }));
  }

  function desired(): DeployRig['config']['daemon']['models'][number] {
    return rig.config.daemon.models[0]!;
  }

  function retarget(ref: string, budgets: Record<string, unknown> = {}): void {
    rig.config = testConfig(rig.config.stateDir, { daemon: { models: [{ name: 'm', ref, budgets }] } });
  }

  /** Deploys 1.0.0 (cnn), then reconciles to 2.0.0 (mlp); returns both version records. */
  async function deployTwoVersions(): Promise<{ v1: VersionRecord; v2: VersionRecord }> {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]));
    await rig.reconciler.reconcile(desired(), 'test');
    const v1 = rig.store.repository.active('m')!;
    retarget(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: MLP }]));
    await rig.reconciler.reconcile(desired(), 'test');
    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    return { v1, v2 };
  }

  it('a healthy first version passes its gate, is committed and served; reconciling again changes nothing', async () => {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]));
    const result = await rig.reconciler.reconcile(desired(), 'test');
    expect(result.action).toBe('deployed');
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('committed');
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
    expect((await rig.state.get('m')).trial).toBeNull();
    expect((await rig.reconciler.reconcile(desired(), 'test')).action).toBe('up-to-date');
  });

  it('a version whose inferences fail is never switched to (its warm-up run fails), is rolled back with an event saying why, and is not deployed again', async () => {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]));
    await rig.reconciler.reconcile(desired(), 'test');
    const bad = await writeFailingModel(join(tmp.dir, 'bad.onnx'));
    retarget(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: bad }]));

    const result = await rig.reconciler.reconcile(desired(), 'test');
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('rolled-back');
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
    await rig.serving.probe('m');
    const [event] = rig.events.ofKind('deploy-rolled-back');
    expect(event?.fields).toMatchObject({ model: 'm', from: '2.0.0/fp32', to: '1.0.0/fp32' });
    expect(event?.fields.reason).toMatch(/^cannot load 2\.0\.0\/fp32: E_RUNTIME_RUN: .*Reshape/);
    expect((await rig.state.get('m')).failed).toHaveLength(1);
    expect(rig.store.repository.history('m', 5).map((h) => h.reason)[0]).toMatch(/^rollback: cannot load/);

    const again = await rig.reconciler.reconcile(desired(), 'test');
    expect(again.action).toBe('skipped-failed');
    expect(rig.events.ofKind('deploy-started')).toHaveLength(2);
  });

  it('a version slower than the p95 budget is rolled back at the trial deadline', async () => {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]));
    await rig.reconciler.reconcile(desired(), 'test');
    // A budget no real inference meets: the latency rule, measured on the real session.
    rig.config = testConfig(rig.config.stateDir, {
      daemon: { models: [{ name: 'm', ref: await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: MLP }]), budgets: { latencyP95Ms: 0.000001 } }] },
      deploy: { trialDeadlineMs: 300 },
    });
    const result = await rig.reconciler.reconcile(desired(), 'test');
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('rolled-back');
    expect(rig.events.ofKind('deploy-rolled-back')[0]?.fields.reason).toMatch(/p95 .* exceeds the budget .* at the trial deadline/);
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
  });

  it('a restart during a trial resumes it (counted), and past maxTrialEntries the deployment is aborted and rolled back', async () => {
    const { v1, v2 } = await deployTwoVersions();
    // Stage what a kill during v2's trial leaves: the marker, and v2 active in the store.
    rig.store.repository.activate(v1.id, 'test reset', { updateTrust: false });
    await rig.state.put('m', { trial: { candidateId: v2.id, candidateManifest: v2.manifestDigest, previousId: v1.id, reason: 'test', startedAt: Date.now(), entries: 1, phase: 'trial' }, failed: [], variantOverride: null, desiredRef: null });
    rig.store.repository.activate(v2.id, 'trial: test');

    // maxTrialEntries is 2: the first restart resumes the trial, the second aborts it.
    expect(await rig.deploy.recover('m')).toBe('resume-trial');
    expect((await rig.state.get('m')).trial?.entries).toBe(2);
    expect(await rig.deploy.recover('m')).toBe('aborted');
    expect(rig.store.repository.active('m')?.id).toBe(v1.id);
    expect(rig.events.ofKind('deploy-aborted')[0]?.fields.reason).toMatch(/state loop detected: the daemon restarted 2 times/);
    expect((await rig.state.get('m')).trial).toBeNull();
    expect((await rig.state.get('m')).failed.map((f) => f.manifestDigest)).toContain(v2.manifestDigest);
  });

  it('a kill between the marker and the activation transaction is finished on restart: the candidate is activated and its trial resumed', async () => {
    const { v1, v2 } = await deployTwoVersions();
    rig.store.repository.activate(v1.id, 'test reset', { updateTrust: false });
    await rig.state.put('m', { trial: { candidateId: v2.id, candidateManifest: v2.manifestDigest, previousId: v1.id, reason: 'test', startedAt: Date.now(), entries: 1, phase: 'activating' }, failed: [], variantOverride: null, desiredRef: null });

    expect(await rig.deploy.recover('m')).toBe('resume-trial');
    expect(rig.store.repository.active('m')?.id).toBe(v2.id);
    await rig.deploy.loadActive('m');
    const outcome = await rig.deploy.resumeTrial('m');
    expect(outcome.outcome).toBe('committed');
    expect((await rig.state.get('m')).trial).toBeNull();
  });

  it('a kill during a rollback is finished on restart: the previous version is active and the candidate remembered as failed', async () => {
    const { v1, v2 } = await deployTwoVersions();
    expect(rig.store.repository.active('m')?.id).toBe(v2.id);
    await rig.state.put('m', { trial: { candidateId: v2.id, candidateManifest: v2.manifestDigest, previousId: v1.id, reason: 'test', startedAt: Date.now(), entries: 1, phase: 'rolling-back', failReason: 'gate failed' }, failed: [], variantOverride: null, desiredRef: null });

    expect(await rig.deploy.recover('m')).toBe('rolled-back');
    expect(rig.store.repository.active('m')?.id).toBe(v1.id);
    expect((await rig.state.get('m')).failed[0]).toMatchObject({ manifestDigest: v2.manifestDigest, reason: 'gate failed' });
  });

  it('an active version that no longer loads is rolled back to the one before it at start-up', async () => {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]));
    await rig.reconciler.reconcile(desired(), 'test');
    retarget(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: MLP }]));
    await rig.reconciler.reconcile(desired(), 'test');
    await rig.serving.unload('m');
    // Damage the active model's blob the way a failing SD card does.
    const v2 = rig.store.repository.active('m')!;
    await writeFile(rig.store.blobs.path(parseDigest(v2.modelDigest, 'model')), 'not a model');
    const loaded = await rig.deploy.loadActive('m');
    expect(loaded?.version).toBe('1.0.0');
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.events.ofKind('deploy-rolled-back')[0]?.fields.reason).toMatch(/cannot load 2\.0\.0\/fp32: E_RUNTIME_SESSION_CREATE/);
  });
});
