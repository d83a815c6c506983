import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FIELD_SHIFT, loadFieldData } from '../../../src/coevolution/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { edgevolve } from '../../helpers/cli.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from '../daemon/daemon-process.ts';
import { publish } from '../daemon/fixtures.ts';

const STUDENT = 'test/fixtures/models/mnist-student.onnx';

describe.runIf(requireMosquitto())('edgevolve cloud rollout against two real daemons on mosquitto', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let broker: RunningMosquitto;
  const daemons: DaemonHandle[] = [];
  let traffic: { stop: () => Promise<void> } | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-rollout-');
    broker = await startMosquitto();
  });
  afterEach(async () => {
    await traffic?.stop();
    for (const d of daemons.splice(0)) await d.stop();
    await broker.close();
    await tmp.cleanup();
  });

  it('with signed commands, rolls the canary back when its p95 is worse than the limit (exit 1), then promotes a version to the rest', async () => {
    const layout = join(tmp.dir, 'layout');
    const v1 = await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: STUDENT }], 'student');
    await publish(layout, '1.1.0', [{ name: 'fp32', modelPath: STUDENT }], 'student');
    await publish(layout, '1.2.0', [{ name: 'fp32', modelPath: STUDENT }], 'student');
    // The fleet key: the devices trust its public half under keyId "fleet" (the private key's file name).
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const publicPem = join(tmp.dir, 'fleet.pub.pem');
    const privatePem = join(tmp.dir, 'fleet.pem');
    await writeFile(publicPem, publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(privatePem, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    for (const id of ['dev-a', 'dev-b']) {
      await mkdir(join(tmp.dir, id));
      const config = await writeDaemonConfig(join(tmp.dir, id), join(tmp.dir, id, 'state'), {
        daemon: { seedFixtures: false, models: [{ name: 'student', ref: v1 }] },
        mqtt: { urls: [broker.url], fleet: 'f1', deviceId: id },
        telemetry: { intervalMs: 1000 },
        control: { publicKeys: { fleet: publicPem } },
        coevolution: { enabled: true, mining: { defaultRule: { kind: 'classification', maxProbabilityBelow: 0.8 } } },
      });
      daemons.push(await startDaemon({ configFile: config, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() } }));
    }
    traffic = startTraffic(daemons.map((d) => d.daemon.runtimeStatus().url!), (await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500)).stream.inputs);
    const version = (i: number): string | undefined => daemons[i]!.daemon.runtimeStatus().served[0]?.version;
    const common = ['--broker', broker.url, '--db', join(tmp.dir, 'fleet.db'), '--fleet', 'f1', '--canary', '0.5', '--watch', '60', '--min-inferences', '5', '--settle', '3', '--key', privatePem, '--command-timeout', '60', '--json'];

    // Any p95 is worse than 0.001x the canary's own baseline p95: a rollback by the latency signal.
    const bad = await edgevolve('cloud', 'rollout', `oci-layout:${layout}:1.1.0`, ...common, '--max-latency-ratio', '0.001');
    expect(bad.code, bad.stderr).toBe(1);
    const badDoc = JSON.parse(bad.stdout) as Record<string, unknown>;
    expect(badDoc).toMatchObject({ ok: false, outcome: 'rolled-back', canaries: ['dev-a'], rest: ['dev-b'], previousVersion: '1.0.0', newVersion: '1.1.0', failed: [] });
    expect(badDoc.reason).toMatch(/^dev-a: p95 .* before \(limit x0\.001\)$/);
    expect((badDoc.baseline as Record<string, { inferences: number }>)['dev-a']!.inferences).toBeGreaterThan(0);
    expect([version(0), version(1)]).toEqual(['1.0.0', '1.0.0']);

    const good = await edgevolve('cloud', 'rollout', `oci-layout:${layout}:1.2.0`, ...common, '--max-latency-ratio', '1000', '--max-hard-rate-increase', '1');
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ ok: true, outcome: 'promoted', canaries: ['dev-a'], rest: ['dev-b'], failed: [] });
    expect([version(0), version(1)]).toEqual(['1.2.0', '1.2.0']);
  }, 240_000);

  it('refuses a reference without a tag as a usage error', async () => {
    const noTag = await edgevolve('cloud', 'rollout', 'localhost:5000/models/student@sha256:' + '0'.repeat(64), '--broker', broker.url, '--db', join(tmp.dir, 'f.db'), '--fleet', 'f1', '--unsigned');
    expect(noTag.code).not.toBe(0);
    expect(noTag.stderr).toMatch(/names no tag: give --version/);
  }, 60_000);
});

/** Requests to every daemon, one at a time each, until stopped: the field stream, round and round. */
function startTraffic(urls: readonly string[], inputs: Float32Array): { stop: () => Promise<void> } {
  let stopped = false;
  const loops = urls.map(async (url) => {
    for (let i = 0; !stopped; i = (i + 1) % 1500) {
      const body = { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(inputs.subarray(i * 784, (i + 1) * 784)) }] };
      // A request that meets a model swap may fail; the telemetry counts it, the loop goes on.
      await fetch(`${url}/v2/models/student/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.arrayBuffer()).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
