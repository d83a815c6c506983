/**
 * A rollback names the exact variant: a variant built on the device shares its parent's
 * version string (1.0.0/fp32 and 1.0.0/opt-int8-dynamic-...). Through the composition root:
 * a real daemon (store, in-process serving, planner), the rollback command's handler called
 * as the command channel calls it.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../../src/control/index.ts';
import { commandHandlers } from '../../../src/daemon/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { OciLayout, pushArtifact } from '../../../src/registry/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';
import { CNN, MLP, PROFILE } from './fixtures.ts';

const CALIB = 'test/fixtures/data/mnist-calib';
const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };
const CONTEXT: CommandContext = { id: 'c1', type: 'rollback', issuedAt: 0, signedBy: undefined, signal: new AbortController().signal };

describe('rollback to a version with a variant built on the device', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let handle: DaemonHandle | undefined;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-rollback-variant-');
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    await tmp.cleanup();
  });

  it('toVersion alone returns to the variant of that version that served last; variant picks one exactly; the events name both by digest', async () => {
    const oci = join(tmp.dir, 'oci');
    const layout = new OciLayout(oci);
    await layout.init();
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    await pushArtifact(layout, { name: 'mlp', version: '2.0.0', variants: [{ name: 'fp32', modelPath: CNN }] }, '2.0.0');
    const configFile = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), {
      server: { enabled: false },
      daemon: { seedFixtures: false, models: [{ name: 'mlp', ref: `oci-layout:${oci}:1.0.0` }] },
      deploy: { minTrialMs: 0, minSamples: 3, trialProbeIntervalMs: 1 },
      planner: { subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2 },
    });
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
    const daemon = handle.daemon;
    const served = (): string[] => daemon.runtimeStatus().served.map((m) => `${m.version}/${m.variant}`);
    expect(served()).toEqual(['1.0.0/fp32']);

    // 1.0.0/opt-int8-dynamic-... built here and served, then 2.0.0 from the fleet.
    const run = await daemon.optimizeModel('mlp', { budgets: { sizeMB: 0.5, maxAccuracyDrop: 5 }, methods: ['int8-dynamic'] });
    if (run.outcome.kind !== 'built') throw new Error(`expected a built variant, got ${run.outcome.kind}`);
    const built = run.outcome.record;
    expect(built.version).toBe('1.0.0');
    expect(served()).toEqual([`1.0.0/${built.variant}`]);
    expect(await daemon.deployRef(`oci-layout:${oci}:2.0.0`)).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });
    const fp32 = daemon.versions('mlp').find((v) => v.variant === 'fp32' && v.version === '1.0.0')!;

    const rollback = commandHandlers({ daemon, profile: () => Promise.resolve(PROFILE) }).rollback!;
    // "1.0.0" names two stored variants: the one that served last is meant (the first stored would be fp32).
    expect(await rollback({ toVersion: '1.0.0' }, CONTEXT)).toMatchObject({ outcome: 'committed', version: { id: built.id, variant: built.variant } });
    expect(served()).toEqual([`1.0.0/${built.variant}`]);
    expect(daemon.events.ofKind('deploy-started').at(-1)?.fields.reason).toBe(`rollback command to 1.0.0/${built.variant} (${built.manifestDigest})`);

    expect(await rollback({ toVersion: '1.0.0', variant: 'fp32' }, CONTEXT)).toMatchObject({ outcome: 'committed', version: { id: fp32.id } });
    expect(served()).toEqual(['1.0.0/fp32']);
    await expect(rollback({ toVersion: '1.0.0', variant: 'int8' }, CONTEXT)).rejects.toMatchObject({ code: 'E_STORE_NOT_FOUND' });

    // A plain rollback returns to what served before (the local variant), not to the newest stored version (2.0.0).
    expect(await rollback({}, CONTEXT)).toMatchObject({ outcome: 'rolled-back', to: { id: built.id } });
    expect(daemon.events.ofKind('deploy-rolled-back').at(-1)?.fields).toMatchObject({
      from: '1.0.0/fp32',
      fromManifest: fp32.manifestDigest,
      to: `1.0.0/${built.variant}`,
      toManifest: built.manifestDigest,
    });
    expect(served()).toEqual([`1.0.0/${built.variant}`]);
  }, 120_000);
});
