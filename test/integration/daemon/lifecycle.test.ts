import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { startDaemonProcess, writeDaemonConfig, type DaemonProcess } from './daemon-process.ts';
import { PYTHON, startNotifyListener, type NotifyListener } from './notify-listener.ts';

const haveTools =
  requireTool({ name: 'systemd-notify', check: () => execFileSync('systemd-notify', ['--version']).length > 0, debianPackage: 'systemd' }) &&
  requireTool({ name: 'python3', check: () => execFileSync(PYTHON, ['--version']).length > 0, debianPackage: 'python3' });

function status(config: string): { daemon: { running: boolean; phase: string } | null; models: { name: string; active: { version: string; variant: string } | null }[] } {
  return JSON.parse(execFileSync(process.execPath, ['src/cli/bin.js', 'status', '--json', '--config', config], { encoding: 'utf8' })) as ReturnType<typeof status>;
}

describe.runIf(haveTools)('edgevolve run as a process under a (simulated) systemd notify socket', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let listener: NotifyListener;
  let daemon: DaemonProcess | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-run-');
    listener = await startNotifyListener(tmp.dir);
  });
  afterEach(async () => {
    daemon?.child.kill('SIGKILL');
    listener.close();
    await tmp.cleanup();
  });

  it('READY only once a model serves; WATCHDOG pings stop while SIGSTOPped; SIGTERM stops cleanly with exit 0; status reads the store afterwards', async () => {
    const config = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'));
    daemon = startDaemonProcess(config, { NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: '600000' });
    const ready = await listener.waitFor((m) => m.includes('READY=1'), 90_000);
    // STATUS rides with READY: the model was loaded (and its first trial passed) before READY.
    expect(ready).toMatch(/READY=1\|STATUS=ready; serving mnist 1\.0\.0\/cnn on http:\/\/127\.0\.0\.1:\d+/);
    const url = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(ready)![1]!;
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const ready2 = await daemon.line(/^ {2}infer: +curl/);
    expect(ready2).toContain(`${url}/v2/models/mnist/infer`);

    const pingsBefore = listener.messages.length;
    await listener.waitFor((m) => m.includes('WATCHDOG=1'), 10_000, pingsBefore);
    await listener.waitFor((m) => m.includes('WATCHDOG=1'), 10_000, listener.messages.length);

    daemon.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 300));
    const frozen = listener.messages.length;
    await new Promise((r) => setTimeout(r, 1500));
    // A stopped process sends nothing: systemd's WatchdogSec would fire and restart it.
    expect(listener.messages.slice(frozen)).toEqual([]);
    daemon.child.kill('SIGCONT');
    await listener.waitFor((m) => m.includes('WATCHDOG=1'), 10_000, frozen);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(listener.messages.some((m) => m.startsWith('STOPPING=1'))).toBe(true);
    const after = status(config);
    expect(after.daemon).toMatchObject({ running: false, phase: 'stopped' });
    expect(after.models).toEqual([expect.objectContaining({ name: 'mnist', active: expect.objectContaining({ version: '1.0.0', variant: 'cnn' }) as unknown })]);
  });

  it('a restart with the model already in the store is ready without a new deployment, and SIGHUP reloads what it can', async () => {
    const config = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'));
    daemon = startDaemonProcess(config, { NOTIFY_SOCKET: listener.socket });
    await daemon.line(/^edgevolve is ready/);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);

    daemon = startDaemonProcess(config, { NOTIFY_SOCKET: listener.socket });
    await daemon.line(/^edgevolve is ready: ready; serving mnist 1\.0\.0\/cnn/);
    expect(daemon.stderr.filter((l) => l.includes('"event":"deploy-started"'))).toEqual([]);
    await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), { log: { level: 'debug' }, server: { port: 0, maxQueuedRequests: 3 } });
    daemon.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 1500));
    const reloaded = daemon.stderr.find((l) => l.includes('"event":"config-reloaded"'));
    expect(reloaded).toBeDefined();
    expect(JSON.parse(reloaded!)).toMatchObject({ applied: ['log.level'], needsRestart: ['server.maxQueuedRequests'] });
    daemon.child.kill('SIGINT');
    expect(await daemon.exited).toBe(0);
  });
});
