import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN, MLP, deployRig, impossibleBudgetWatch, publish, testConfig, type DeployRig } from './fixtures.ts';

describe('budget watch: p95 over the budget for long enough re-plans to a lighter variant (real inferences)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-budget-');
  });
  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  it('picks the int8 variant after a sustained breach, reports both events, and later reconciles keep it', async () => {
    const ref = await publish(join(tmp.dir, 'oci'), '1.0.0', [
      { name: 'fp32', modelPath: CNN, precision: 'fp32' },
      { name: 'int8', modelPath: MLP, precision: 'int8' },
    ]);
    const stateDir = join(tmp.dir, 'state');
    // A budget no inference meets; the trial's latency rule is switched off (huge tolerance) so the new variant is kept.
    rig = await deployRig(stateDir, testConfig(stateDir, { daemon: { models: [{ name: 'm', ref, budgets: { latencyP95Ms: 0.000001 } }] }, deploy: { latencyTolerance: 1e12 } }));
    const desired = rig.config.daemon.models[0]!;
    await rig.reconciler.reconcile(desired, 'test');
    expect(rig.store.repository.active('m')?.variant).toBe('fp32');

    const watch = impossibleBudgetWatch(rig, (name, reason) => rig.reconciler.replan(desired, reason));
    const feeds = { input: { dataType: 1, dims: [1, 1, 28, 28], data: new Float32Array(784) } };
    for (let i = 0; i < 10; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    expect(rig.events.ofKind('budget-breach')).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    for (let i = 0; i < 10; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    watch.stop();

    expect(rig.events.ofKind('budget-breach')[0]?.fields).toMatchObject({ model: 'm', budgetMs: 0.000001 });
    expect(rig.events.ofKind('replan')[0]?.fields).toMatchObject({ model: 'm', from: '1.0.0/fp32', to: 'int8' });
    expect(rig.store.repository.active('m')?.variant).toBe('int8');
    expect(rig.serving.loaded()[0]?.variant).toBe('int8');
    expect((await rig.state.get('m')).variantOverride).toBe('int8');
    expect((await rig.reconciler.reconcile(desired, 'periodic')).action).toBe('up-to-date');
    // Nothing is lighter than int8 here: a second breach reports that no re-plan was possible.
    expect(await rig.reconciler.replan(desired, 'again')).toBeNull();
  });
});
