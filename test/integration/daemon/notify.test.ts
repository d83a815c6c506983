import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventLoopLag, InferenceHealth, InProcessServing, systemdNotifier, Watchdog, type ModelServing, type ServiceHealth } from '../../../src/daemon/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN } from './fixtures.ts';
import { PYTHON, startNotifyListener, type NotifyListener } from './notify-listener.ts';

const haveTools =
  requireTool({ name: 'systemd-notify', check: () => execFileSync('systemd-notify', ['--version']).length > 0, debianPackage: 'systemd' }) &&
  requireTool({ name: 'python3', check: () => execFileSync(PYTHON, ['--version']).length > 0, debianPackage: 'python3' });

describe.runIf(haveTools)('systemd notify and watchdog against a real NOTIFY_SOCKET listener', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let listener: NotifyListener;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-notify-');
    listener = await startNotifyListener(tmp.dir);
  });
  afterEach(async () => {
    listener.close();
    await tmp.cleanup();
  });

  it('sends READY, STATUS and STOPPING datagrams through systemd-notify', async () => {
    const notifier = systemdNotifier({ NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: '20000000', PATH: process.env.PATH }, silentLogger());
    expect(notifier.enabled).toBe(true);
    expect(notifier.watchdogMs).toBe(20_000);
    await notifier.notify({ READY: '1', STATUS: 'serving mnist\nnext line' });
    expect(await listener.waitFor((m) => m.startsWith('READY=1'))).toBe('READY=1|STATUS=serving mnist next line');
    await notifier.notify({ STOPPING: '1' });
    await listener.waitFor((m) => m === 'STOPPING=1');
  });

  it('is a no-op without NOTIFY_SOCKET (not under systemd)', async () => {
    const notifier = systemdNotifier({ PATH: process.env.PATH }, silentLogger());
    expect(notifier.enabled).toBe(false);
    await notifier.notify({ READY: '1' });
    expect(listener.messages).toEqual([]);
  });

  it('pings WATCHDOG=1 (with READY once ready) only while the health check passes', async () => {
    const notifier = systemdNotifier({ NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: '20000000', PATH: process.env.PATH }, silentLogger());
    let health: ServiceHealth = { ok: true, reason: 'fine', lastSuccessAt: 1 };
    const watchdog = new Watchdog({ notifier, health: () => health, status: () => 'serving m', logger: silentLogger() });
    expect(await watchdog.tick()).toBe(true);
    await listener.waitFor((m) => m.startsWith('WATCHDOG=1'));
    watchdog.markReady();
    await watchdog.tick();
    await listener.waitFor((m) => m.startsWith('READY=1|WATCHDOG=1|STATUS=serving m'));
    health = { ok: false, reason: 'no successful inference on m for 40 s', lastSuccessAt: 1 };
    const before = listener.messages.length;
    expect(await watchdog.tick()).toBe(false);
    await listener.waitFor((m) => m.startsWith('STATUS=unhealthy'), 10_000, before);
    expect(listener.messages.slice(before).filter((m) => m.includes('WATCHDOG=1'))).toEqual([]);
    expect(watchdog.pings).toBe(2);
  });
});

describe('the health check behind the watchdog', () => {
  it('EventLoopLag sees a blocked event loop', async () => {
    const lag = new EventLoopLag(50);
    lag.start();
    await new Promise((r) => setTimeout(r, 120));
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // Busy loop: what a hung synchronous call does to the daemon.
    }
    expect(lag.lagMs()).toBeGreaterThanOrEqual(300);
    lag.stop();
  });

  it('is healthy while probes of the real model succeed, unhealthy once they stop succeeding for probeFreshMs', async () => {
    const real = new InProcessServing({ threads: 1 });
    await real.load({ name: 'm', version: '1', variant: 'fp32', versionId: 1, manifestDigest: 'sha256:x', modelPath: CNN });
    // Fault injection the real session cannot produce on demand: its probe starts failing.
    let failing = false;
    const serving: ModelServing = Object.assign(Object.create(real) as InProcessServing, {
      loaded: () => real.loaded(),
      probe: async (name: string) => {
        if (failing) throw new Error('injected probe failure');
        await real.probe(name);
      },
    });
    let now = 1_000_000;
    const health = new InferenceHealth({
      serving,
      clock: { ...systemClock, now: () => now },
      lag: () => 0,
      config: () => ({ maxEventLoopLagMs: 1000, probeIntervalMs: 1000, probeFreshMs: 5000 }),
      logger: silentLogger(),
    });
    await health.probeAll();
    expect(health.health()).toMatchObject({ ok: true, lastSuccessAt: 1_000_000 });
    failing = true;
    now += 4000;
    await health.probeAll();
    expect(health.health().ok).toBe(true);
    now += 2000;
    await health.probeAll();
    expect(health.health()).toMatchObject({ ok: false, reason: expect.stringMatching(/no successful inference on m for 6 s .*injected probe failure/) as unknown });
    await real.close();
  });

  it('reports event loop lag over the bound as unhealthy', () => {
    const health = new InferenceHealth({
      serving: new InProcessServing(),
      clock: systemClock,
      lag: () => 2500,
      config: () => ({ maxEventLoopLagMs: 1000, probeIntervalMs: 1000, probeFreshMs: 5000 }),
      logger: silentLogger(),
    });
    expect(health.health()).toMatchObject({ ok: false, reason: 'event loop lag 2500 ms over 1000 ms' });
  });
});
