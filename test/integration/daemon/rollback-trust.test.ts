/**
 * An automatic rollback rechecks the trust of the version it returns to (deploy.ts
 * #rollbackTarget). The case where no other version is trusted: the failing candidate keeps
 * serving rather than nothing. The trust policy here is injected (it refuses 1.0.0): with the
 * real local-provenance policy this needs the untrusted variant's signed parent dropped by
 * retention as well, which a test cannot arrange in seconds; local-trust.test.ts runs the
 * real policy for the case where a trusted version remains. Store, serving and gate are real.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InProcessServing } from '../../../src/daemon/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN, deployRig, IMPOSSIBLE_P95_MS, MLP, publish, testConfig, type DeployRig } from './fixtures.ts';

describe('an automatic rollback whose target the trust policy refuses', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-rollback-trust-');
  });
  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  it('with no other trusted version the failing candidate keeps serving, remembered as failed, and the event says why', async () => {
    const stateDir = join(tmp.dir, 'state');
    const layout = join(tmp.dir, 'oci');
    let refuseV1 = false;
    const trust = (v: { version: string; variant: string }): void => {
      if (refuseV1 && v.version === '1.0.0') throw new EdgevolveError('E_LOCAL_VARIANT_UNTRUSTED', `m ${v.version}/${v.variant} is refused by the injected policy`);
    };
    const config = (ref: string, budgets: Record<string, number> = {}): DeployRig['config'] =>
      testConfig(stateDir, { daemon: { models: [{ name: 'm', ref, budgets }] }, deploy: { trialDeadlineMs: 300 } });
    rig = await deployRig(stateDir, config(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }])), () => new InProcessServing({ threads: 1 }), { trust });
    expect(await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });

    // 2.0.0 misses a p95 budget nothing meets (its trial fails at the deadline); 1.0.0 is no longer trusted meanwhile.
    rig.config = config(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: MLP }]), { latencyP95Ms: IMPOSSIBLE_P95_MS });
    refuseV1 = true;
    const result = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    const v2 = rig.store.repository.versions('m').find((v) => v.version === '2.0.0')!;
    expect(result).toMatchObject({ action: 'deployed', outcome: { outcome: 'rolled-back', to: null } });

    expect(rig.events.ofKind('deploy-rolled-back').map((e) => e.fields)).toEqual([
      {
        model: 'm',
        from: '2.0.0/fp32',
        fromManifest: v2.manifestDigest,
        to: null,
        toManifest: null,
        reason: expect.stringMatching(
          /^health gate failed: p95 .* at the trial deadline; 1\.0\.0\/fp32 is not trusted now \(E_LOCAL_VARIANT_UNTRUSTED: m 1\.0\.0\/fp32 is refused by the injected policy\), and no other trusted version is stored; nothing to roll back to, 2\.0\.0\/fp32 kept serving$/,
        ) as unknown,
      },
    ]);
    expect(rig.store.repository.active('m')?.id).toBe(v2.id);
    expect(rig.serving.loaded().map((m) => m.versionId)).toEqual([v2.id]);
    const state = await rig.state.get('m');
    expect(state.trial).toBeNull();
    expect(state.failed.map((f) => f.manifestDigest)).toEqual([v2.manifestDigest]);
  });
});
