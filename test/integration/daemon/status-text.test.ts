/**
 * `edgevolve status` text against a real daemon: the embedded default (seeded fixtures,
 * KServe slots with the batch probe) started in-process on a free port, with a recorded
 * cgroup root whose memory.max differs from service.memoryMax; the status file the daemon
 * wrote is then read by the CLI as an operator would.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRuntimeStatus } from '../../../src/daemon/index.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig, writeServiceCgroupRoot } from './daemon-process.ts';

const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };

describe('edgevolve status shows the batching verdict and the memory-limit check of a running daemon', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let handle: DaemonHandle | undefined;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-status-text-');
    await writeServiceCgroupRoot(join(tmp.dir, 'root'), 1024 ** 3);
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    await tmp.cleanup();
  });

  it('status.json carries the served model\'s batching verdict, and the text view prints it and the memory limit', async () => {
    const stateDir = join(tmp.dir, 'state');
    const configFile = await writeDaemonConfig(tmp.dir, stateDir, { service: { memoryMax: '512M' } });
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER, kernelFiles: nodeFiles(join(tmp.dir, 'root')) });
    const served = handle.daemon.runtimeStatus().served[0]!;
    const verdict = handle.daemon.runtimeStatus().batching?.[served.name];
    expect(verdict).toMatchObject({ enabled: expect.any(Boolean) as unknown, reason: expect.any(String) as unknown });
    expect(verdict!.reason.length).toBeGreaterThan(0);
    expect((await readRuntimeStatus(stateDir))?.batching?.[served.name]).toEqual(verdict);

    const { stdout } = await edgevolve('status', '--state-dir', stateDir);
    const batching = `batching ${verdict!.enabled ? `on${verdict!.maxRows === undefined ? '' : `, up to ${verdict!.maxRows} rows`}` : 'off'} (${verdict!.reason})`;
    expect(stdout).toContain(`serving ${served.name} ${served.version}/${served.variant}: ${batching}`);
    expect(stdout).toContain('memory limit: MISMATCH: service.memoryMax 512M (512 MiB) but /system.slice/edgevolve.service has memory.max 1024 MiB; run scripts/install.sh again');
  }, 60_000);
});
