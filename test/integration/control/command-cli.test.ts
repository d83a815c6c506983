/** `edgevolve command` as a user runs it: a real CLI process, a real mosquitto, a device channel in this process. */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { parsePublicKey } from '../../../src/control/index.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { FLEET, startDevice, type TestDevice } from './harness.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous on purpose: the device answering lives in this process's event loop.
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'command', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe.runIf(requireMosquitto())('edgevolve command', () => {
  let broker: RunningMosquitto;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let device: TestDevice;
  let keyPath: string;
  let strangerPath: string;
  let budgetsApplied = 0;

  beforeAll(async () => {
    broker = await startMosquitto();
    tmp = await makeTempDir('edgevolve-control-cli-');
    const pair = generateKeyPairSync('ed25519');
    keyPath = join(tmp.dir, 'fleet-2026.pem');
    await writeFile(keyPath, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    strangerPath = join(tmp.dir, 'stranger.pem');
    await writeFile(strangerPath, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    device = await startDevice({
      url: broker.url,
      dir: tmp.dir,
      device: 'dev-1',
      keys: [parsePublicKey('fleet-2026', pair.publicKey.export({ type: 'spki', format: 'pem' }) as string)],
      handlers: {
        'set-budgets': (payload) => {
          budgetsApplied++;
          return Promise.resolve({ applied: payload.budgets });
        },
        ping: () => Promise.resolve({ pong: true }),
      },
    });
  });
  afterAll(async () => {
    await device.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('signs with the key named by its file, sends, and prints the device result as one JSON document', async () => {
    const r = await cli([`${FLEET}/dev-1`, 'set-budgets', '--payload', '{"budgets":{"latencyP95Ms":15}}', '--key', keyPath, '--broker', broker.url, '--id', 'cli-budgets-1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; id: string; acks: number; results: { device: string; status: string; result: unknown; duplicate: boolean }[] };
    expect(doc).toMatchObject({ ok: true, id: 'cli-budgets-1', acks: 1 });
    expect(doc.results).toMatchObject([{ device: 'dev-1', status: 'done', result: { applied: { latencyP95Ms: 15 } }, duplicate: false }]);

    expect(budgetsApplied).toBe(1);
  });

  it('reports a refusal by the device (unknown key) with exit code 1', async () => {
    const r = await cli([`${FLEET}/dev-1`, 'ping', '--key', strangerPath, '--broker', broker.url, '--timeout', '10']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/dev-1 {2}rejected/);
    expect(r.stderr).toMatch(/E_CONTROL_HANDLER: 1 device\(s\) did not run command .*E_CONTROL_UNKNOWN_KEY/);
  });

  it('fails with E_CONTROL_NO_ANSWER when the device does not answer in time', async () => {
    const r = await cli([`${FLEET}/ghost`, 'ping', '--key', keyPath, '--broker', broker.url, '--timeout', '0.5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_CONTROL_NO_ANSWER: device ghost did not answer within 0.5 s/);
  });

  it('exits 2 on bad usage (an unknown command type), naming the known ones', async () => {
    const r = await cli([`${FLEET}/dev-1`, 'exec', '--key', keyPath, '--broker', broker.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command type exec; one of deploy, rollback');
  });
});
