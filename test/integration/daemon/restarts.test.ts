/**
 * What systemd/edgevolve.service promises about restarts (issue 8 "What it promises"), with
 * the daemon as a real process and the real sd_notify protocol on a unix datagram socket the
 * test owns: a hung (SIGSTOPped) daemon misses its watchdog and is restarted; a daemon that
 * cannot start is restarted until the start limit and then left failed, not restarted forever.
 * The service manager is a stand-in that reads the unit's own settings (service-manager.ts).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { startDaemonProcess, writeDaemonConfig } from './daemon-process.ts';
import { PYTHON, startNotifyListener, type NotifyListener } from './notify-listener.ts';
import { readUnitRestartSettings, ServiceManager } from './service-manager.ts';

const haveTools =
  requireTool({ name: 'systemd-notify', check: () => execFileSync('systemd-notify', ['--version']).length > 0, debianPackage: 'systemd' }) &&
  requireTool({ name: 'python3', check: () => execFileSync(PYTHON, ['--version']).length > 0, debianPackage: 'python3' });

const UNIT = readUnitRestartSettings(readFileSync('systemd/edgevolve.service', 'utf8'));

describe.runIf(haveTools)('systemd/edgevolve.service restarts, against the daemon as a process', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let listener: NotifyListener;
  let manager: ServiceManager | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-restarts-');
    listener = await startNotifyListener(tmp.dir);
  });
  afterEach(async () => {
    await manager?.stop();
    listener.close();
    await tmp.cleanup();
  });

  it('the unit restarts on failure within a start limit and has a watchdog', () => {
    expect(UNIT).toMatchObject({ restart: 'on-failure', startLimitBurst: 5, startLimitIntervalSec: 600, watchdogSec: 30 });
    // Five starts must fit in the interval with room to spare, or the limit never trips.
    expect(UNIT.startLimitBurst * UNIT.restartSec).toBeLessThan(UNIT.startLimitIntervalSec / 10);
  });

  it('a SIGSTOPped daemon misses its watchdog, is killed and restarted, and serves the same version again', async () => {
    const config = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'));
    // WatchdogSec 30 s -> 6 s (a ping every 3 s: a loaded CI machine may delay one by a second
    // or two without tripping it), RestartSec 5 s -> 1 s.
    manager = new ServiceManager({ settings: UNIT, timeScale: 0.2, listener, spawn: (env) => startDaemonProcess(config, env) });
    manager.start();
    await manager.waitFor(/^ready 1$/, 90_000);
    const first = manager.process!;
    // Healthy: pings keep the unit active for longer than the watchdog interval.
    await new Promise((r) => setTimeout(r, 7000));
    expect(manager.journal).toEqual(['start 1', 'ready 1']);

    first.child.kill('SIGSTOP');
    await manager.waitFor(/^ready 2$/, 60_000);
    expect(manager.journal.slice(0, 6)).toEqual(['start 1', 'ready 1', 'watchdog timeout 1', 'exit 1 SIGABRT', 'scheduled restart 1', 'start 2']);
    const line = await manager.process!.line(/^edgevolve is ready/);
    expect(line).toMatch(/serving mnist 1\.0\.0\/cnn/);
    expect(manager.state).toBe('active');
  }, 120_000);

  it('a daemon that fails at every start (its port is taken) is restarted until the start limit, then the unit is failed', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const config = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), { server: { port } });
      // RestartSec 5 s -> 50 ms; the start limit is the unit's (5 starts in 600 s).
      manager = new ServiceManager({ settings: UNIT, timeScale: 0.01, listener, spawn: (env) => startDaemonProcess(config, env) });
      manager.start();
      await manager.waitFor(/^start-limit-hit$/, 120_000);
      expect(manager.state).toBe('failed');
      expect(manager.starts).toBe(UNIT.startLimitBurst);
      const exits = manager.journal.filter((e) => e.startsWith('exit '));
      expect(exits).toEqual([1, 2, 3, 4, 5].map((n) => `exit ${n} code 1`));
      // Never READY: the manager would otherwise count it as up.
      expect(manager.journal.some((e) => e.startsWith('ready'))).toBe(false);
      expect(manager.process!.stdout.join('\n')).not.toMatch(/edgevolve is ready/);
    } finally {
      taken.close();
    }
  }, 150_000);
});
