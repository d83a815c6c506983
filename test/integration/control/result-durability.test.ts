/**
 * A command's result survives the device process dying after the command ran and before
 * the broker had its result: control.db (synchronous=FULL) holds the result until the
 * broker's PUBACK, and the next start publishes it, without running the command again.
 * The device is a child process with the daemon's wiring (fixtures/device.ts), killed
 * with SIGKILL; the broker is a real mosquitto.
 */
import { rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCommand, resultSchema, type CommandResult } from '../../../src/control/index.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { spawnTsxChild, type TsxChild } from '../../helpers/tsx-child.ts';
import { startCollector, type Collector } from '../telemetry/support.ts';
import { makeKeyPair } from './harness.ts';

const DEVICE = join(import.meta.dirname, 'fixtures', 'device.ts');
const key = makeKeyPair('fleet-key');
const publicKeyPem = key.publicKey.key.export({ type: 'spki', format: 'pem' }) as string;

function startDevice(options: { url: string; stateDir: string; holdResults?: boolean; gate?: boolean }): TsxChild {
  return spawnTsxChild(DEVICE, { DEVICE_OPTIONS: JSON.stringify({ ...options, publicKeyPem }) });
}

function results(collector: Collector): CommandResult[] {
  return collector.messages.filter((m) => m.topic.endsWith('/result')).map((m) => resultSchema.parse(m.json));
}

function executions(stateDir: string): string[] {
  return readFileSync(join(stateDir, 'executed.log'), 'utf8').trim().split('\n');
}

describe.runIf(requireMosquitto())('command results survive a device killed between execute and publish (child process, real mosquitto)', () => {
  let broker: RunningMosquitto;
  let collector: Collector | undefined;
  const children: TsxChild[] = [];
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeEach(async () => {
    tmp = await makeTempDir();
    broker = await startMosquitto({ persistence: true });
  });
  afterEach(async () => {
    for (const c of children.splice(0)) await c.killed();
    await collector?.close();
    collector = undefined;
    await broker.close();
    await tmp.cleanup();
  });

  const send = async (id: string): Promise<void> => {
    const encoded = encodeCommand({ id, type: 'set-budgets', target: { fleet: 'fleet-a', device: 'dev-1' }, payload: { budgets: { latencyP95Ms: 25 } } }, key.signer, Date.now());
    await collector!.client.publishAsync('edgevolve/v1/fleet-a/dev-1/cmd', encoded.text, { qos: 1 });
  };

  it('killed after the handler finished and before the result was published: the restarted device publishes the stored result and runs nothing again', async () => {
    collector = await startCollector(broker.url, 'edgevolve/v1/fleet-a/dev-1/cmd/+/result');
    const first = startDevice({ url: broker.url, stateDir: tmp.dir, holdResults: true });
    children.push(first);
    await first.line('connected');
    await send('cmd-kill-1');
    expect(await first.line('result-pending')).toBe('result-pending cmd-kill-1');
    await first.killed();
    expect(results(collector)).toEqual([]);

    const second = startDevice({ url: broker.url, stateDir: tmp.dir });
    children.push(second);
    await collector.until(() => results(collector!).length > 0);
    expect(results(collector)[0]).toMatchObject({ id: 'cmd-kill-1', status: 'done', result: { applied: { latencyP95Ms: 25 } } });
    expect(executions(tmp.dir)).toEqual(['cmd-kill-1']);
  });

  it('killed after the result was committed to telemetry.db but before the broker had it, and that file lost its unsynced tail (a power cut): the result still arrives', async () => {
    collector = await startCollector(broker.url, 'edgevolve/v1/fleet-a/dev-1/cmd/+/result');
    const stateDir = tmp.dir;
    const first = startDevice({ url: broker.url, stateDir, gate: true });
    children.push(first);
    await first.line('connected');
    await send('cmd-power-1');
    await first.line('executing cmd-power-1');
    // The broker goes away while the command runs, so its result can only reach the outbox.
    await broker.stop();
    writeFileSync(join(stateDir, 'go'), '');
    const committed = await first.line('result-committed cmd-power-1');
    // control.db must not call the result reported: the broker never acknowledged it.
    expect(committed).toBe('result-committed cmd-power-1 reported=null');
    await first.killed();
    // Injected fault: telemetry.db runs synchronous=NORMAL, whose WAL is fsynced only at a
    // checkpoint; a power cut can lose every transaction since. SIGKILL cannot lose them,
    // so the test removes the WAL the way the power cut would have.
    rmSync(join(stateDir, 'telemetry.db-wal'), { force: true });
    rmSync(join(stateDir, 'telemetry.db-shm'), { force: true });

    await broker.start();
    const second = startDevice({ url: broker.url, stateDir });
    children.push(second);
    await collector.until(() => results(collector!).length > 0);
    expect(results(collector)[0]).toMatchObject({ id: 'cmd-power-1', status: 'done', result: { applied: { latencyP95Ms: 25 } } });
    expect(executions(stateDir)).toEqual(['cmd-power-1']);
  });
});
