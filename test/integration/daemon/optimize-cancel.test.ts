/**
 * Cancelling an on-device optimization: a daemon started in-process (real store, KServe
 * slots, planner with its benchmark children) serves mnist-mlp fp32; an `optimize` over
 * every method (a search of tens of seconds here) is stopped by daemon shutdown, or by a
 * rollback/deploy of the same model. The search ends at its next step boundary, nothing
 * is stored, a `local-optimize` event says `cancelled`, and fp32 serves after a restart.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { OciLayout, pushArtifact } from '../../../src/registry/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';
import { MLP } from './fixtures.ts';

const CALIB = 'test/fixtures/data/mnist-calib';
const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };
/** Generous for one planner step (a build, a batch, a benchmark child's kill) on a loaded 2-core machine; the search itself takes far longer. */
const STOP_BOUND_MS = 15_000;

async function workDirs(stateDir: string): Promise<string[]> {
  return (await readdir(join(stateDir, 'optimize')).catch(() => [] as string[])).filter((n) => n.startsWith('work-'));
}

/** Resolves once the optimizer has made its work directory: the search is under way. */
async function searchStarted(stateDir: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await workDirs(stateDir)).length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the on-device optimization never started');
}

/** 'finished', or the error code the search rejected with. */
function settledAs(search: Promise<unknown>): Promise<string | undefined> {
  return search.then(
    () => 'finished',
    (err: unknown) => (err as { code?: string }).code,
  );
}

describe('cancelling an on-device optimization', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let handle: DaemonHandle | undefined;
  let configFile: string;
  let stateDir: string;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-optimize-cancel-');
    stateDir = join(tmp.dir, 'state');
    const layout = new OciLayout(join(tmp.dir, 'oci'));
    await layout.init();
    await pushArtifact(layout, { name: 'mlp', version: '1.0.0', calibrationDir: CALIB, variants: [{ name: 'fp32', modelPath: MLP }] }, '1.0.0');
    configFile = await writeDaemonConfig(tmp.dir, stateDir, {
      daemon: { seedFixtures: false, models: [{ name: 'mlp', ref: `oci-layout:${join(tmp.dir, 'oci')}:1.0.0` }] },
    });
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
  });
  afterEach(async () => {
    await handle?.stop();
    await tmp.cleanup();
  });

  it('shutdown during the search finishes within the bound, ends the search (work directory gone, nothing stored), and fp32 serves after a restart (whose start prunes the optimize cache)', async () => {
    const daemon = handle!.daemon;
    const outcome = settledAs(daemon.optimizeModel('mlp', { budgets: { sizeMB: 0.5, maxAccuracyDrop: 1 } }));
    await searchStarted(stateDir);

    const t0 = performance.now();
    await handle!.stop();
    const stopMs = performance.now() - t0;
    handle = undefined;

    expect(stopMs).toBeLessThan(STOP_BOUND_MS);
    expect(await outcome).toBe('E_PLAN_CANCELLED');
    expect(daemon.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ model: 'mlp', trigger: 'command', outcome: 'cancelled', parent: '1.0.0/fp32', variant: null }]);
    // The search had ended, not just been abandoned: its finally removed the work directory.
    expect(await workDirs(stateDir)).toEqual([]);

    // A cache entry for a parent no longer in the store: the start prunes it.
    const gone = `sha256:${'0'.repeat(64)}`;
    await writeFile(join(stateDir, 'optimize', 'cache.json'), JSON.stringify({ v: 1, entries: { stale: { kind: 'parent-meets', parentManifest: gone, parentIndex: gone, reason: 'r', at: 1 } } }));
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
    expect(handle.daemon.runtimeStatus().served.map((m) => `${m.version}/${m.variant}`)).toEqual(['1.0.0/fp32']);
    expect(handle.daemon.versions('mlp').map((v) => v.variant)).toEqual(['fp32']);
    expect(JSON.parse(await readFile(join(stateDir, 'optimize', 'cache.json'), 'utf8'))).toEqual({ v: 1, entries: {} });
  }, 120_000);

  it('a request queued behind a running search leaves as soon as it is cancelled, while that search goes on', async () => {
    const daemon = handle!.daemon;
    let firstSettled = false;
    const first = settledAs(daemon.optimizeModel('mlp', { budgets: { sizeMB: 0.5, maxAccuracyDrop: 1 } }));
    void first.finally(() => {
      firstSettled = true;
    });
    await searchStarted(stateDir);
    const queuedStop = new AbortController();
    const queued = daemon.optimizeModel('mlp', { budgets: { sizeMB: 0.4, maxAccuracyDrop: 1 } }, queuedStop.signal);
    queuedStop.abort(new Error('the operator gave up on it'));
    await expect(queued).rejects.toMatchObject({ code: 'E_PLAN_CANCELLED' });
    expect(firstSettled).toBe(false);

    daemon.reconciler.cancelOptimize('mlp', 'end of test');
    expect(await first).toBe('E_PLAN_CANCELLED');
    expect(daemon.events.ofKind('local-optimize').map((e) => e.fields.outcome)).toEqual(['cancelled', 'cancelled']);
  }, 120_000);

  it('a rollback or deploy of the model cancels its running search; the daemon keeps serving fp32', async () => {
    const daemon = handle!.daemon;
    const outcome = settledAs(daemon.optimizeModel('mlp', { budgets: { sizeMB: 0.5, maxAccuracyDrop: 1 } }));
    await searchStarted(stateDir);
    daemon.reconciler.cancelOptimize('mlp', 'rollback command');

    expect(await outcome).toBe('E_PLAN_CANCELLED');
    expect(daemon.events.ofKind('local-optimize').map((e) => e.fields)).toMatchObject([{ outcome: 'cancelled', reason: expect.stringContaining('rollback command') as unknown }]);
    expect(daemon.runtimeStatus().served.map((m) => m.variant)).toEqual(['fp32']);
    expect(daemon.versions('mlp').map((v) => v.variant)).toEqual(['fp32']);
    expect(await workDirs(stateDir)).toEqual([]);
  }, 120_000);
});
