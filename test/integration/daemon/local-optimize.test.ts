/**
 * On-device optimization in reconcile: a real OCI layout holding mnist-mlp (fp32) with its
 * calibration layers, a real store, the real planner (isolated benchmarks in child
 * processes) and the real deployment gate on onnxruntime.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalOptimizer, PROVENANCE, Reconciler, type DesiredModel } from '../../../src/daemon/index.ts';
import { systemHost } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { OciLayout, openVerifiedModel, pushArtifact } from '../../../src/registry/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { deployRig, IMPOSSIBLE_P95_MS, impossibleBudgetWatch, MLP, PROFILE, publish, testConfig, type DeployRig } from './fixtures.ts';

const CALIB = 'test/fixtures/data/mnist-calib';
/** The planner kept small: the point is the daemon's path, not the search's depth. */
const PLANNER = { subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2, maxAccuracyDrop: 5 };
const DEVICE = { fingerprint: 'sha256:test-device', measured: null };

describe('on-device optimization: the planner builds a local variant, the gate deploys it, the cache keeps it', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  let desired: DesiredModel;

  const optimizer = (): LocalOptimizer =>
    new LocalOptimizer({ store: rig.store, clock: systemHost(), logger: silentLogger(), stateDir: rig.config.stateDir, planner: () => rig.config.planner, device: () => Promise.resolve(DEVICE) });
  const reconciler = (o: LocalOptimizer): Reconciler =>
    new Reconciler({ store: rig.store, host: systemHost(), logger: silentLogger(), deploy: rig.deploy, state: rig.state, config: () => rig.config, profile: () => Promise.resolve(PROFILE), optimizer: o, events: rig.events });

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-optimize-');
    const layout = new OciLayout(join(tmp.dir, 'oci'));
    await layout.init();
    await pushArtifact(layout, { name: 'm', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    desired = { name: 'm', ref: `oci-layout:${join(tmp.dir, 'oci')}:1.0.0`, budgets: {} };
    const stateDir = join(tmp.dir, 'state');
    rig = await deployRig(stateDir, testConfig(stateDir, { planner: PLANNER, daemon: { models: [desired] } }));
    await rig.reconciler.reconcile(desired, 'initial');
  });
  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  it('a size budget fp32 misses gets an int8 variant with its provenance, deployed through the gate; a restart answers from the cache and reconcile keeps it', async () => {
    const parent = rig.store.repository.active('m')!;
    expect(parent.variant).toBe('fp32');
    // mnist-mlp is 0.9 MiB in fp32; int8 weights are a quarter of that.
    const request = { budgets: { sizeMB: 0.5, maxAccuracyDrop: 5 }, methods: ['int8-dynamic'] as const };

    const run = await reconciler(optimizer()).optimize(desired, 'test', undefined, request);
    expect(run.outcome.kind).toBe('built');
    if (run.outcome.kind !== 'built') return;
    const built = run.outcome.record;
    expect(run.outcome.cached).toBe(false);
    expect(built.variant).toMatch(/^opt-int8-dynamic(-pc)?-[0-9a-f]{8}$/);
    expect(built.source).toBe(`local-optimize:${parent.manifestDigest}`);
    expect(run.deploy).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });
    expect(rig.store.repository.active('m')?.id).toBe(built.id);
    expect(rig.serving.loaded().map((m) => m.variant)).toEqual([built.variant]);
    expect(rig.events.ofKind('local-optimize').map((e) => e.fields)).toEqual([
      { model: 'm', trigger: 'command', outcome: 'built', parent: '1.0.0/fp32', method: run.outcome.chosen, variant: built.variant, metrics: run.outcome.metrics, cached: false, reason: expect.stringContaining('(test)') as unknown },
    ]);

    // Provenance travels with the bytes: the verified manifest and config name the parent, the method and the measurements.
    const verified = await openVerifiedModel(rig.store, { name: 'm', manifestDigest: built.manifestDigest });
    expect(verified.manifest.annotations?.[PROVENANCE.parentManifest]).toBe(parent.manifestDigest);
    expect(verified.manifest.annotations?.[PROVENANCE.method]).toBe(run.outcome.chosen);
    expect(verified.config.precision).toBe('int8');
    expect(verified.config.metrics?.size_bytes).toBeLessThan(0.5 * 1024 * 1024);
    expect(verified.config.metrics?.accuracy_drop).toBeLessThanOrEqual(5);

    // A restart: a new optimizer over the same state directory answers from the cache, without a search.
    const versions = rig.store.repository.versions('m').length;
    const again = await reconciler(optimizer()).optimize(desired, 'test', undefined, request);
    expect(again.outcome).toMatchObject({ kind: 'built', cached: true, record: { id: built.id } });
    expect(again.deploy).toMatchObject({ action: 'up-to-date' });
    expect(rig.events.ofKind('local-optimize')[1]?.fields).toMatchObject({ outcome: 'cached', cached: true, variant: built.variant });
    expect(rig.store.repository.versions('m')).toHaveLength(versions);

    // The periodic reconcile keeps the local variant rather than going back to the registry's fp32.
    expect(await reconciler(optimizer()).reconcile(desired, 'periodic')).toMatchObject({ action: 'up-to-date', version: `1.0.0/${built.variant}` });
  }, 120_000);

  it('the budget watch, finding no lighter variant in the registry, runs the planner; an impossible budget deploys nothing, ends in an event with the advice, is cached, and fp32 keeps serving', async () => {
    const impossible: DesiredModel = { ...desired, budgets: { latencyP95Ms: 0.000001 }, optimizeTimeLimitS: 10, optimizeMethods: ['int8-dynamic'] };
    const r = reconciler(optimizer());
    const watch = impossibleBudgetWatch(rig, (_name, reason) => r.replanOrOptimize(impossible, reason));
    const feeds = { input: { dataType: 1, dims: [1, 1, 28, 28], data: new Float32Array(784) } };
    for (let i = 0; i < 10; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    await new Promise((resolve) => setTimeout(resolve, 80));
    for (let i = 0; i < 10; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    watch.stop();

    const replan = rig.events.ofKind('replan')[0]?.fields;
    expect(replan).toMatchObject({ model: 'm', from: '1.0.0/fp32', to: null });
    expect(replan?.reason).toMatch(/re-plan failed: m: .*latency/);
    expect(rig.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ model: 'm', trigger: 'budget-watch', outcome: 'no-candidate', parent: '1.0.0/fp32', variant: null, cached: false }]);
    expect(rig.store.repository.active('m')?.variant).toBe('fp32');
    expect(rig.serving.loaded().map((m) => m.variant)).toEqual(['fp32']);
    expect(rig.store.repository.versions('m').map((v) => v.variant)).toEqual(['fp32']);

    // The same request again (a restart, the next breach) is answered from the cache with the planner's advice.
    const again = await reconciler(optimizer()).optimize(impossible, 'again');
    expect(again).toMatchObject({ outcome: { kind: 'no-candidate', cached: true }, deploy: null });
    if (again.outcome.kind === 'no-candidate') expect(again.outcome.advice.length).toBeGreaterThan(0);
  }, 120_000);

  it('a trial rolled back for latency with no lighter registry variant starts the planner (trigger rollback), once: the next reconcile does not search again', async () => {
    const stateDir = join(tmp.dir, 'state-rollback');
    const slow: DesiredModel = { ...desired, budgets: { latencyP95Ms: IMPOSSIBLE_P95_MS }, optimizeTimeLimitS: 10, optimizeMethods: ['int8-dynamic'] };
    await rig.close();
    // The trial judges p95 at its deadline: 300 ms of probes is enough to miss a budget no inference meets.
    rig = await deployRig(stateDir, testConfig(stateDir, { planner: PLANNER, daemon: { models: [slow] }, deploy: { trialDeadlineMs: 300 } }));
    const r = reconciler(optimizer());

    const result = await r.reconcile(slow, 'initial');
    expect(result).toMatchObject({ action: 'deployed', outcome: { outcome: 'rolled-back', reason: expect.stringMatching(/p95 .* exceeds the budget/) as unknown } });
    expect(rig.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([
      { model: 'm', trigger: 'rollback', outcome: 'no-candidate', parent: '1.0.0/fp32', variant: null, reason: expect.stringMatching(/^m: .*latency/) as unknown },
    ]);
    // The first version has nothing to roll back to: it keeps serving, and nothing was built.
    expect(rig.serving.loaded().map((m) => m.variant)).toEqual(['fp32']);
    expect(rig.store.repository.versions('m').map((v) => v.variant)).toEqual(['fp32']);

    expect(await r.reconcile(slow, 'periodic')).toMatchObject({ action: 'up-to-date' });
    expect(rig.events.ofKind('local-optimize')).toHaveLength(1);
  }, 120_000);

  it('the optimize cache drops entries whose parent or built variant left the store (on demand and after a deploy\'s retention), and is capped newest first', async () => {
    const fp32 = rig.store.repository.active('m')!;
    const gone = `sha256:${'0'.repeat(64)}`;
    const base = { parentIndex: fp32.indexDigest, at: 1 };
    const cacheFile = join(rig.config.stateDir, 'optimize', 'cache.json');
    const writeCache = async (entries: Record<string, unknown>): Promise<void> => {
      await mkdir(join(rig.config.stateDir, 'optimize'), { recursive: true });
      await writeFile(cacheFile, JSON.stringify({ v: 1, entries }));
    };
    const cachedKeys = async (): Promise<string[]> => Object.keys((JSON.parse(await readFile(cacheFile, 'utf8')) as { entries: object }).entries).sort();
    const built = { kind: 'built', ...base, parentManifest: fp32.manifestDigest, variant: 'opt-x', chosen: 'int8-dynamic', reason: 'r', metrics: {} };
    await writeCache({
      keepBuilt: { ...built, manifestDigest: fp32.manifestDigest, at: 2 },
      keepAdvice: { kind: 'no-candidate', ...base, parentManifest: fp32.manifestDigest, summary: 's', advice: [] },
      parentGone: { kind: 'no-candidate', ...base, parentManifest: gone, summary: 's', advice: [] },
      variantGone: { ...built, manifestDigest: gone },
    });
    expect(await optimizer().pruneCache()).toBe(2);
    expect(await cachedKeys()).toEqual(['keepAdvice', 'keepBuilt']);

    const capped = new LocalOptimizer({ store: rig.store, clock: systemHost(), logger: silentLogger(), stateDir: rig.config.stateDir, planner: () => rig.config.planner, device: () => Promise.resolve(DEVICE), maxCacheEntries: 1 });
    expect(await capped.pruneCache()).toBe(1);
    expect(await cachedKeys()).toEqual(['keepBuilt']);

    // A deploy's retention is followed by a prune: an entry for a parent no longer stored goes then.
    await writeCache({ keepBuilt: { ...built, manifestDigest: fp32.manifestDigest }, parentGone: { kind: 'parent-meets', ...base, parentManifest: gone, reason: 'r' } });
    const next: DesiredModel = { ...desired, ref: await publish(join(tmp.dir, 'oci'), '2.0.0', [{ name: 'fp32', modelPath: MLP }]) };
    expect(await reconciler(optimizer()).reconcile(next, 'new release')).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });
    expect(await cachedKeys()).toEqual(['keepBuilt']);
  }, 60_000);

  it('a model with no budget to optimize to is refused with a typed error naming the model', async () => {
    await expect(reconciler(optimizer()).optimize(desired, 'test')).rejects.toMatchObject({ code: 'E_PLAN_BUDGET_INVALID', message: expect.stringContaining('m has no latency') as unknown });
  });
});
