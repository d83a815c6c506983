/**
 * The start-up memory-limit check through the composition root: a real daemon (real store,
 * no models, no API) started with /proc and /sys from a recorded root, as systemd would
 * have left them after the operator edited service.memoryMax without re-running install.sh.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/index.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { readRuntimeStatus } from '../../../src/daemon/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig, writeServiceCgroupRoot } from './daemon-process.ts';

const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };

describe('the daemon start compares service.memoryMax with its cgroup', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let handle: DaemonHandle | undefined;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-memlimit-');
    // The unit's cgroup still has the limit of the last install: 1 GiB.
    await writeServiceCgroupRoot(join(tmp.dir, 'root'), 1024 ** 3);
  });
  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    await tmp.cleanup();
  });

  const start = async (memoryMax: string): Promise<Array<Record<string, unknown>>> => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const configFile = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), { server: { enabled: false }, daemon: { seedFixtures: false }, service: { memoryMax } });
    handle = await startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: createLogger({ destination }), notifier: NOTIFIER, kernelFiles: nodeFiles(join(tmp.dir, 'root')) });
    return lines;
  };

  it('warns, naming both limits and the fix, when the config was edited but install.sh not re-run', async () => {
    const lines = await start('512M');
    const warning = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('service.memoryMax'));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toBe('service.memoryMax is 512M (512 MiB) but the cgroup /system.slice/edgevolve.service has memory.max 1024 MiB: run scripts/install.sh again to apply the configured limit');
  });

  it('reports the mismatch as an event (log, telemetry outbox) and in the status file that edgevolve status reads', async () => {
    await start('512M');
    const expected = { configured: '512M', expectedBytes: 512 * 1024 ** 2, actualBytes: 1024 ** 3, cgroup: '/system.slice/edgevolve.service' };
    expect(handle!.daemon.events.ofKind('memory-limit-mismatch').map((e) => e.fields)).toEqual([{ ...expected, message: expect.stringMatching(/^service\.memoryMax is 512M .*install\.sh again/) as unknown }]);
    expect((await readRuntimeStatus(join(tmp.dir, 'state')))?.memoryLimit).toEqual({ status: 'mismatch', ...expected });
    // The event went into the telemetry outbox (no broker here: it waits there), as every reported event does.
    const outbox = new Database(join(tmp.dir, 'state', 'telemetry.db'), { readonly: true });
    try {
      const rows = outbox.prepare("SELECT payload FROM outbox WHERE CAST(payload AS TEXT) LIKE '%memoryMax%'").all() as { payload: Buffer | string }[];
      expect(rows.map((r) => JSON.parse(r.payload.toString()) as Record<string, unknown>)).toMatchObject([{ kind: 'event', type: 'error', severity: 'warning', data: expected }]);
    } finally {
      outbox.close();
    }
  });

  it('says nothing when the cgroup has the configured limit', async () => {
    const lines = await start('1G');
    expect(lines.some((l) => l.msg === 'edgevolve starting')).toBe(true);
    expect(lines.filter((l) => String(l.msg).includes('memoryMax') || l.event === 'memory-limit-mismatch')).toEqual([]);
    expect(handle!.daemon.runtimeStatus().memoryLimit).toMatchObject({ status: 'match', configured: '1G' });
  });
});
