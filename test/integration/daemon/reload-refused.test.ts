import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../helpers/tmp.ts';
import { startDaemonProcess, writeDaemonConfig, type DaemonProcess } from './daemon-process.ts';

/** The first stderr line (pino JSON) matching, polled until it appears: the signal is handled asynchronously. */
async function logLine(daemon: DaemonProcess, match: RegExp, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = daemon.stderr.find((l) => match.test(l));
    if (found !== undefined) return JSON.parse(found) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`no log line matched ${match}; stderr tail:\n${daemon.stderr.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// src/main.ts's SIGHUP handler with a real daemon process: what an operator's broken edit does.
describe('SIGHUP with a configuration file that is invalid or gone', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let daemon: DaemonProcess | undefined;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-reload-');
  });
  afterEach(async () => {
    daemon?.child.kill('SIGKILL');
    await tmp.cleanup();
  });

  it('is refused naming the key and the file, the daemon keeps serving, and a later good file is diffed against the configuration that ran', async () => {
    const stateDir = join(tmp.dir, 'state');
    const config = await writeDaemonConfig(tmp.dir, stateDir);
    daemon = startDaemonProcess(config);
    const url = /on (http:\/\/\S+)$/.exec(await daemon.line(/^edgevolve is ready: ready; serving mnist/))![1]!;

    await writeFile(config, `stateDir: ${stateDir}\nserver:\n  port: 0\ndeploy:\n  maxErrorRate: 2\ndaemon:\n  seedFixtures: true\n`);
    daemon.child.kill('SIGHUP');
    const refused = await logLine(daemon, /reload refused/);
    expect(refused).toMatchObject({ code: 'E_CONFIG_INVALID' });
    expect(refused.err).toContain(`invalid configuration in ${config}`);
    expect(refused.err).toMatch(/deploy\.maxErrorRate: Too big/);

    await rm(config);
    daemon.child.kill('SIGHUP');
    await expect.poll(() => daemon!.stderr.filter((l) => l.includes('reload refused')).length, { timeout: 20_000 }).toBe(2);
    expect(daemon.stderr.filter((l) => l.includes('reload refused'))[1]).toMatch(/cannot read config file/);

    const ready = await fetch(`${url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(daemon.stderr.some((l) => l.includes('"event":"config-reloaded"'))).toBe(false);

    // Only log.level differs from what runs: the refused maxErrorRate never became the running configuration.
    await writeDaemonConfig(tmp.dir, stateDir, { log: { level: 'debug' } });
    daemon.child.kill('SIGHUP');
    expect(await logLine(daemon, /"event":"config-reloaded"/)).toMatchObject({ applied: ['log.level'], needsRestart: [] });
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });
});
