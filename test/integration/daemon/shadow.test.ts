import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { deployCommandResult, modelStatus, SlotServing } from '../../../src/daemon/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import type { OpenedStore } from '../../../src/store/index.ts';
import { MNIST_CNN, writeInt8Dynamic, writeReversedClasses } from '../../helpers/shadow-models.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { deployRig, publish, testConfig, type DeployRig } from './fixtures.ts';

const PIXELS = 28 * 28;

describe('shadow mode in the deployment path (real store, KServe slots, onnxruntime, MNIST traffic)', () => {
  let models: { dir: string; cleanup: () => Promise<void> };
  let images: Float32Array;
  let int8: string;
  let reversed: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let layout: string;
  let stateDir: string;
  let rig: DeployRig<SlotServing>;
  let slots: ModelSlots;

  beforeAll(async () => {
    models = await makeTempDir('edgevolve-shadow-models-');
    images = (await readNpy('test/fixtures/data/mnist-test/input.npy')).data as Float32Array;
    int8 = await writeInt8Dynamic(MNIST_CNN, join(models.dir, 'cnn-int8.onnx'));
    reversed = await writeReversedClasses(MNIST_CNN, join(models.dir, 'cnn-reversed.onnx'));
  });

  afterAll(async () => {
    await models.cleanup();
  });

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-shadow-deploy-');
    layout = join(tmp.dir, 'oci');
    stateDir = join(tmp.dir, 'state');
  });

  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  const SHADOW = { enabled: true, share: 1, minRequests: 60, maxDurationMs: 60_000, minAgreement: 0.97, maxLatencyRatio: 20, maxInFlight: 4, checkIntervalMs: 10 };

  function config(ref: string, shadow: Record<string, unknown> = {}): DeployRig['config'] {
    return testConfig(stateDir, { daemon: { models: [{ name: 'm', ref }] }, deploy: { shadow: { ...SHADOW, ...shadow } } });
  }

  /** A daemon's serving as src/main.ts builds it: SlotServing over ModelSlots that report to it. */
  async function start(ref: string, shadow: Record<string, unknown> = {}): Promise<void> {
    rig = await deployRig(stateDir, config(ref, shadow), (store: OpenedStore) => {
      const holder: { slots?: ModelSlots } = {};
      const serving = new SlotServing(() => holder.slots as ModelSlots, store, { threads: 1 });
      holder.slots = new ModelSlots({ warmupRuns: 1, observers: [serving.observer] });
      slots = holder.slots;
      return serving;
    });
  }

  function image(i: number): Record<string, TensorValue> {
    const k = i % 2000;
    return { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.subarray(k * PIXELS, (k + 1) * PIXELS) } };
  }

  /** Runs `work` under a steady stream of live requests; returns the version that answered each. */
  async function withTraffic<T>(work: () => Promise<T>): Promise<{ result: T; versions: string[] }> {
    const versions: string[] = [];
    let done = false;
    const loop = (async () => {
      for (let i = 0; !done; i++) {
        versions.push((await slots.get('m')!.infer(image(i))).version);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      return { result: await work(), versions };
    } finally {
      done = true;
      await loop;
    }
  }

  async function deployFirst(): Promise<void> {
    await start(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: MNIST_CNN }]));
    const first = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    // Nothing serves yet, so there is nothing to shadow against: the first version goes straight to its trial.
    expect(first.action === 'deployed' && first.outcome.outcome).toBe('committed');
    expect(rig.events.ofKind('shadow-started')).toHaveLength(0);
  }

  async function retarget(version: string, modelPath: string, shadow: Record<string, unknown> = {}): Promise<void> {
    rig.config = config(await publish(layout, version, [{ name: 'fp32', modelPath }]), shadow);
  }

  it('an int8-dynamic candidate of the same network is promoted after live traffic agrees, then passes its trial', async () => {
    await deployFirst();
    await retarget('2.0.0', int8);
    const { result, versions } = await withTraffic(() => rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test'));

    expect(result.action === 'deployed' && result.outcome.outcome, JSON.stringify(result)).toBe('committed');
    expect(rig.store.repository.active('m')?.version).toBe('2.0.0');
    const [promoted] = rig.events.ofKind('shadow-promoted');
    expect(promoted?.fields).toMatchObject({ model: 'm', version: '2.0.0', live: '1.0.0/fp32', evidence: true, metric: 'top1' });
    expect(promoted!.fields.mirrored).toBeGreaterThanOrEqual(60);
    expect(promoted!.fields.agreement).toBeGreaterThanOrEqual(0.97);
    expect(promoted!.fields.reason).toMatch(/^agreement \d+\.\d% \(top1\) over \d+ mirrored requests, p95 /);
    // The shadow came first, the trial after it; the live version answered until the switch and the new one after.
    const kinds = rig.events.recent().map((e) => e.kind).filter((k) => k.startsWith('shadow') || k.startsWith('deploy'));
    expect(kinds.slice(-4)).toEqual(['shadow-started', 'shadow-promoted', 'deploy-started', 'deploy-committed']);
    const firstNew = versions.indexOf('2.0.0');
    expect(versions.slice(0, firstNew).length).toBeGreaterThanOrEqual(60);
    expect(new Set(versions.slice(0, firstNew))).toEqual(new Set(['1.0.0']));
    expect((await rig.state.get('m')).shadow).toBeNull();

    // An operator's rollback to the version that served before skips the shadow (as the rollback command asks).
    const v1 = rig.store.repository.versions('m').find((v) => v.version === '1.0.0')!;
    const back = await rig.deploy.deploy(v1, 'rollback command to 1.0.0', undefined, { shadow: false });
    expect(back.outcome).toBe('committed');
    expect(rig.events.ofKind('shadow-started')).toHaveLength(1);
  });

  it('a crash between shadow promotion and the trial marker leaves the shadow marker, so the restart counts the re-entry and the old version serves', async () => {
    await deployFirst();
    const v1 = rig.store.repository.active('m')!;
    await retarget('2.0.0', int8);
    // Injected fault (a real SIGKILL cannot land deterministically between two awaits): the
    // first state write after promotion, the one that would write the trial marker, dies.
    const put = rig.state.put.bind(rig.state);
    rig.state.put = (name, next) => (next.trial?.phase === 'activating' ? Promise.reject(new Error('injected crash before the trial marker')) : put(name, next));
    await withTraffic(() => expect(rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).rejects.toThrow('injected crash before the trial marker'));
    expect(rig.events.ofKind('shadow-promoted')).toHaveLength(1);
    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    expect(await rig.state.get('m')).toMatchObject({ trial: null, shadow: { candidateId: v2.id, liveId: v1.id, entries: 1 } });
    expect(rig.store.repository.active('m')?.id).toBe(v1.id);

    const cfg = rig.config;
    await rig.close();
    await start(cfg.daemon.models[0]!.ref);
    expect(await rig.deploy.recover('m')).toBe('resume-shadow');
    expect((await rig.state.get('m')).shadow?.entries).toBe(2);
    expect((await rig.deploy.loadActive('m'))?.version).toBe('1.0.0');
    // Without the injected fault the re-entered candidate is shadowed again (counted) and goes on to its trial.
    const { result } = await withTraffic(() => rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test'));
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('committed');
    expect(rig.events.ofKind('shadow-started')[0]?.fields).toMatchObject({ version: '2.0.0', entries: 2 });
    expect(await rig.state.get('m')).toMatchObject({ trial: null, shadow: null });
  });

  it('a candidate that disagrees (classes reversed) is rejected with its measured agreement; the live version never changed', async () => {
    await deployFirst();
    // The candidate in a worker thread (deploy.shadow.worker), the other tests run it on the event loop.
    await retarget('2.0.0', reversed, { worker: true });
    const { result, versions } = await withTraffic(() => rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test'));

    expect(result.action === 'deployed' && result.outcome.outcome).toBe('rejected');
    expect(new Set(versions)).toEqual(new Set(['1.0.0']));
    expect(versions.length).toBeGreaterThanOrEqual(60);
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
    expect(rig.events.ofKind('deploy-started').map((e) => e.fields.version)).toEqual(['1.0.0']);
    const [rejected] = rig.events.ofKind('shadow-rejected');
    expect(rejected?.fields).toMatchObject({ model: 'm', version: '2.0.0', live: '1.0.0/fp32', evidence: true });
    expect(rejected!.fields.agreement).toBeLessThan(0.3);
    expect(rejected!.fields.reason).toMatch(/^shadow gate failed: agreement \d+\.\d% \(top1\) over \d+ mirrored requests is below 97\.0%$/);
    const state = await rig.state.get('m');
    expect(state.shadow).toBeNull();
    expect(state.failed.map((f) => f.reason)).toEqual([rejected!.fields.reason]);
    expect((await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).action).toBe('skipped-failed');
    // A deploy that was queued behind the shadow (another reconcile, a command) does not shadow it again.
    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    expect(await rig.deploy.deploy(v2, 'queued')).toMatchObject({ outcome: 'rejected', reason: `failed before: ${rejected!.fields.reason}` });
    expect(rig.events.ofKind('shadow-started')).toHaveLength(1);
  });

  it('without traffic by maxDurationMs, onNoTraffic decides: reject keeps the live version, promote goes on to the trial without evidence', async () => {
    await deployFirst();
    await retarget('2.0.0', int8, { maxDurationMs: 200, onNoTraffic: 'reject' });
    const rejected = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(rejected.action === 'deployed' && rejected.outcome.outcome).toBe('rejected');
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.events.ofKind('shadow-timeout')[0]?.fields).toEqual({ model: 'm', version: '2.0.0', mirrored: 0, minRequests: 60, maxDurationMs: 200, action: 'reject' });
    expect(rig.events.ofKind('shadow-rejected')[0]?.fields).toMatchObject({ evidence: false, mirrored: 0, agreement: null });

    await retarget('3.0.0', int8, { maxDurationMs: 200, onNoTraffic: 'promote' });
    const promoted = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(promoted.action === 'deployed' && promoted.outcome.outcome).toBe('committed');
    expect(rig.store.repository.active('m')?.version).toBe('3.0.0');
    expect(rig.events.ofKind('shadow-timeout')[1]?.fields.action).toBe('promote');
    expect(rig.events.ofKind('shadow-promoted')[0]?.fields).toMatchObject({ version: '3.0.0', evidence: false });
    expect(rig.events.ofKind('shadow-promoted')[0]?.fields.reason).toMatch(/promoted without shadow evidence \(onNoTraffic: promote\)$/);
  });

  it('a newer deploy cancels a running shadow instead of waiting out maxDurationMs, and a rollback abandons the next one as failed; the live version serves throughout', async () => {
    await deployFirst();
    const v1 = rig.store.repository.active('m')!;
    // No traffic and a minute-long window: without cancellation each shadow would hold the deploy lock for 60 s.
    const long = { minRequests: 1_000_000, maxDurationMs: 60_000, onNoTraffic: 'reject' };
    const shadowStarted = async (count: number): Promise<void> => {
      for (let i = 0; i < 2000 && rig.events.ofKind('shadow-started').length < count; i++) await sleep(5);
      expect(rig.events.ofKind('shadow-started')).toHaveLength(count);
    };

    await retarget('2.0.0', int8, long);
    const second = rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    await shadowStarted(1);
    await retarget('3.0.0', int8, long);
    const third = rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');

    const superseded = await second;
    expect(superseded.action === 'deployed' && superseded.outcome).toMatchObject({ outcome: 'aborted', cancelled: true });
    // The fleet deploy command that started it answers with its own code, not E_DEPLOY_ROLLED_BACK: nothing was rolled back.
    expect(() => deployCommandResult('registry/m:2.0.0', superseded)).toThrow(
      expect.objectContaining({ code: 'E_DEPLOY_SUPERSEDED', message: 'registry/m:2.0.0 was not deployed: shadow cancelled after 0 mirrored requests: superseded by a deploy of 3.0.0/fp32 (test)' }) as Error,
    );
    const [aborted] = rig.events.ofKind('deploy-aborted');
    expect(aborted?.fields).toEqual({ model: 'm', version: '2.0.0/fp32', reason: 'shadow cancelled after 0 mirrored requests: superseded by a deploy of 3.0.0/fp32 (test)' });
    // Superseded is not failed: 2.0.0 did nothing wrong.
    expect((await rig.state.get('m')).failed).toEqual([]);

    await shadowStarted(2);
    expect(rig.events.ofKind('shadow-started')[1]?.fields).toMatchObject({ version: '3.0.0', live: '1.0.0/fp32' });
    const rollback = await rig.deploy.rollback('m', 'rollback command');
    expect(rollback).toEqual({ outcome: 'rolled-back', to: v1, reason: 'rollback command: the candidate in shadow was abandoned; 1.0.0/fp32 kept serving' });
    const cancelled = await third;
    expect(cancelled.action === 'deployed' && cancelled.outcome).toEqual({ outcome: 'aborted', reason: 'shadow cancelled after 0 mirrored requests: rollback command', cancelled: true });
    expect(() => deployCommandResult('registry/m:3.0.0', cancelled)).toThrow(expect.objectContaining({ code: 'E_DEPLOY_SUPERSEDED', message: expect.stringMatching(/: rollback command$/) as unknown }) as Error);
    expect(rig.events.ofKind('deploy-aborted')[1]?.fields).toEqual({ model: 'm', version: '3.0.0/fp32', reason: 'shadow cancelled after 0 mirrored requests: rollback command' });

    // Neither candidate ever served; the rolled-back-from one is remembered, so reconcile does not shadow it again.
    expect(rig.store.repository.active('m')?.id).toBe(v1.id);
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
    expect(slots.get('m')!.active?.version).toBe('1.0.0');
    const state = await rig.state.get('m');
    expect(state.shadow).toBeNull();
    expect(state.failed.map((f) => f.reason)).toEqual(['shadow cancelled after 0 mirrored requests: rollback command']);
    expect((await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).action).toBe('skipped-failed');
    expect(rig.events.ofKind('shadow-rejected')).toHaveLength(0);
  });

  it('a running shadow shows its progress (what status reports), and a rollback cancels it at once though its next check is an hour away', async () => {
    await deployFirst();
    const v1 = rig.store.repository.active('m')!;
    const hour = { minRequests: 1_000_000, maxDurationMs: 3_600_000, checkIntervalMs: 3_600_000 };
    await retarget('2.0.0', int8, hour);
    const { result } = await withTraffic(async () => {
      const running = rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
      for (let i = 0; i < 4000 && (rig.deploy.shadowProgress()[0]?.mirrored ?? 0) < 20; i++) await sleep(5);
      const [progress, ...more] = rig.deploy.shadowProgress();
      expect(more).toEqual([]);
      const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
      expect(progress).toMatchObject({ model: 'm', version: '2.0.0', variant: 'fp32', candidateManifest: v2.manifestDigest, live: '1.0.0/fp32', minRequests: 1_000_000, maxDurationMs: 3_600_000, failed: 0, metric: 'top1' });
      expect(progress!.mirrored).toBeGreaterThanOrEqual(20);
      expect(progress!.agreement).toBeGreaterThan(0.9);
      expect(progress!.candidateP95Ms).toBeGreaterThan(0);
      expect(progress!.elapsedMs).toBeGreaterThanOrEqual(0);
      // The shadow sleeps until its next check (an hour): only the cancellation's wake-up lets this finish within the test's timeout.
      const rollback = await rig.deploy.rollback('m', 'rollback command');
      expect(rollback).toMatchObject({ outcome: 'rolled-back', to: { id: v1.id } });
      return running;
    });
    expect(result.action === 'deployed' && result.outcome).toMatchObject({ outcome: 'aborted', cancelled: true, reason: expect.stringMatching(/^shadow cancelled after \d+ mirrored requests: rollback command$/) as unknown });
    expect(rig.deploy.shadowProgress()).toEqual([]);
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
  }, 30_000);

  it('a restart during a shadow (its marker left on disk, the store untouched) serves the old version, shadows again counted, and abandons the candidate past maxTrialEntries', async () => {
    await deployFirst();
    await retarget('2.0.0', int8, { minRequests: 1_000_000 });
    const v1 = rig.store.repository.active('m')!;

    /** Starts the reconcile, waits until the shadow runs, then stops the daemon under it. */
    async function shadowThenStop(): Promise<void> {
      const stop = new AbortController();
      const running = rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test', stop.signal);
      const started = rig.events.ofKind('shadow-started').length;
      for (let i = 0; i < 2000 && rig.events.ofKind('shadow-started').length === started; i++) await sleep(5);
      stop.abort();
      await expect(running).rejects.toMatchObject({ code: 'E_DAEMON_STOPPING' });
    }

    async function restart(): Promise<void> {
      const cfg = rig.config;
      await rig.close();
      await start(cfg.daemon.models[0]!.ref, { minRequests: 1_000_000 });
    }

    await shadowThenStop();
    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    expect((await rig.state.get('m')).shadow).toMatchObject({ candidateId: v2.id, candidateManifest: v2.manifestDigest, liveId: v1.id, entries: 1 });
    expect(rig.store.repository.active('m')?.id).toBe(v1.id);
    expect(modelStatus('m', rig.store.repository, await rig.state.get('m'))).toMatchObject({ active: { version: '1.0.0' }, trial: null, shadow: { version: '2.0.0', variant: 'fp32', entries: 1 } });

    await restart();
    expect(await rig.deploy.recover('m')).toBe('resume-shadow');
    expect((await rig.deploy.loadActive('m'))?.version).toBe('1.0.0');
    expect((await rig.state.get('m')).shadow?.entries).toBe(2);
    await shadowThenStop();
    expect(rig.events.ofKind('shadow-started')[0]?.fields).toMatchObject({ version: '2.0.0', entries: 2 });

    await restart();
    expect(await rig.deploy.recover('m')).toBe('aborted');
    expect(rig.events.ofKind('deploy-aborted')[0]?.fields.reason).toBe('state loop detected: the daemon restarted 2 times with this version in shadow (limit 2)');
    expect((await rig.deploy.loadActive('m'))?.version).toBe('1.0.0');
    const state = await rig.state.get('m');
    expect(state.shadow).toBeNull();
    expect(state.failed).toHaveLength(1);
    expect((await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).action).toBe('skipped-failed');
  });
});
