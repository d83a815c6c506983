import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';
import { CNN, MLP, publish } from './fixtures.ts';

/** A real full filesystem needs a small tmpfs, which only root can mount (CI runs as root). */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) {
    console.warn('skipping: the disk-full test mounts a tmpfs and needs root');
    return false;
  }
  return true;
}

async function fill(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const handle = await open(path, 'w');
  const chunk = Buffer.alloc(256 * 1024, 1);
  try {
    for (;;) await handle.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
  return path;
}

describe.runIf(canMountTmpfs())('a full disk (real ENOSPC on a 24 MB tmpfs)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let mountPoint: string;
  let handle: DaemonHandle | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-full-');
    mountPoint = join(tmp.dir, 'disk');
    await mkdir(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint]);
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    // Lazy: a file the test process still holds must not leave the mount behind.
    const result = spawnSync('umount', ['-l', mountPoint], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`umount ${mountPoint}: ${result.stderr}`);
    await tmp.cleanup();
  });

  it('refuses the update without touching the served version or the database, keeps serving, and deploys once space returns', async () => {
    const layout = join(tmp.dir, 'oci');
    const v1 = await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: CNN }]);
    const v2 = await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: MLP }]);
    const stateDir = join(mountPoint, 'state');
    const config = await writeDaemonConfig(tmp.dir, stateDir, { daemon: { seedFixtures: false, models: [{ name: 'm', ref: v1 }] }, store: { reserveBytes: 0 } });
    handle = await startDaemon({ configFile: config, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() } });
    expect(handle.daemon.runtimeStatus().served.map((m) => m.version)).toEqual(['1.0.0']);

    const filler = await fill(mountPoint);
    await expect(handle.daemon.deployRef(v2)).rejects.toThrow(/ENOSPC|no space|disk/i);
    expect(handle.store.repository.active('m')?.version).toBe('1.0.0');
    expect(handle.daemon.runtimeStatus().served.map((m) => m.version)).toEqual(['1.0.0']);
    const url = handle.daemon.runtimeStatus().url!;
    const infer = await fetch(`${url}/v2/models/m/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }] }),
    });
    expect(infer.status).toBe(200);
    const db = new Database(join(stateDir, 'state.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    await rm(filler);
    const result = await handle.daemon.deployRef(v2);
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('committed');
    expect(handle.daemon.runtimeStatus().served.map((m) => m.version)).toEqual(['2.0.0']);
  });
});
