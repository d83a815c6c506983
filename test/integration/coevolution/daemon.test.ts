import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FIELD_SHIFT, loadFieldData } from '../../../src/coevolution/index.ts';
import { readReceivedSamples, startSampleReceiver, type SampleReceiver } from '../../../src/coevolution/cloud/index.ts';
import { sendCommand } from '../../../src/control/index.ts';
import { readNpy } from '../../../src/data/npy.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, type InferenceServer } from '../../../src/server/index.ts';
import { eventSchema, telemetryRecordSchema, type TelemetryEvent, type TelemetryRecord } from '../../../src/telemetry/index.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from '../daemon/daemon-process.ts';
import { publish } from '../daemon/fixtures.ts';

const STUDENT = 'test/fixtures/models/mnist-student.onnx';
const TEACHER = 'test/fixtures/models/mnist-teacher.onnx';
const REFERENCE = 60;
const WINDOW = 60;

/** One KServe v2 JSON request for digit `i` of `inputs`; returns the JSON answer. */
async function infer(url: string, inputs: Float32Array, i: number): Promise<{ parameters?: { answered_by?: string } }> {
  const body = { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(inputs.subarray(i * 784, (i + 1) * 784)) }] };
  const res = await fetch(`${url}/v2/models/student/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as { parameters?: { answered_by?: string } };
}

describe.runIf(requireMosquitto())('edgevolve run with coevolution enabled (real daemon, broker, KServe cloud and sample receiver)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let broker: RunningMosquitto;
  let cloudSlots: ModelSlots;
  let cloud: InferenceServer;
  let cloudUrl: string;
  let receiver: SampleReceiver;
  let handle: DaemonHandle | undefined;
  let client: MqttClient | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-coevo-daemon-');
    broker = await startMosquitto();
    cloudSlots = new ModelSlots({ warmupRuns: 1 });
    await cloudSlots.add('mnist-teacher').swap({ version: '1', createSession: () => createSession(TEACHER, { threads: 1 }) });
    cloud = createInferenceServer({ models: cloudSlots, listen: { host: '127.0.0.1', port: 0 } });
    cloudUrl = (await cloud.listen()).url!;
    receiver = await startSampleReceiver({ dir: join(tmp.dir, 'received'), host: '127.0.0.1', port: 0, maxBodyBytes: 1e8 });
  }, 60_000);

  afterEach(async () => {
    await client?.endAsync();
    await handle?.stop();
    await receiver.close();
    await cloud.close(1000);
    await cloudSlots.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('mines hard samples of shifted digits into the store, reports quality and drift in telemetry with a drift event, names the answering model, and answers collect-samples', async () => {
    const ref = await publish(join(tmp.dir, 'layout'), '1.0.0', [{ name: 'fp32', modelPath: STUDENT }], 'student');
    const stateDir = join(tmp.dir, 'state');
    const config = await writeDaemonConfig(tmp.dir, stateDir, {
      daemon: { seedFixtures: false, models: [{ name: 'student', ref }] },
      mqtt: { urls: [broker.url], fleet: 'f1', deviceId: 'dev1' },
      telemetry: { intervalMs: 1000 },
      control: { trustBrokerAcl: true },
      coevolution: {
        enabled: true,
        mining: { enabled: true, defaultRule: { kind: 'classification', maxProbabilityBelow: 0.8 }, maxPerMinute: 100_000 },
        upload: { target: 'http', url: receiver.url, intervalS: 3600 },
        cascade: { enabled: true, url: cloudUrl, cloudModel: 'mnist-teacher', deadlineMs: 10_000 },
        drift: { referenceSize: REFERENCE, windowSize: WINDOW, threshold: 0.2 },
        collect: { maxWaitS: 120 },
      },
    });
    client = await connectAsync(broker.url, { clientId: 'cloud' });
    const records: TelemetryRecord[] = [];
    const events: TelemetryEvent[] = [];
    client.on('message', (topic, payload) => {
      const doc = JSON.parse(payload.toString('utf8')) as unknown;
      if (topic.endsWith('/telemetry')) records.push(telemetryRecordSchema.parse(doc));
      if (topic.endsWith('/events')) events.push(eventSchema.parse(doc));
    });
    await client.subscribeAsync(['edgevolve/v1/f1/dev1/telemetry', 'edgevolve/v1/f1/dev1/events'], { qos: 1 });

    handle = await startDaemon({ configFile: config, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() } });
    const url = handle.daemon.runtimeStatus().url!;

    // The reference: clean test digits right after the deployment; then the shifted field stream.
    const clean = (await readNpy('test/fixtures/data/mnist-test/input.npy')).data as Float32Array;
    const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
    const answeredBy = new Map<string, number>();
    const count = (answer: { parameters?: { answered_by?: string } }): void => {
      const by = answer.parameters?.answered_by ?? '(none)';
      answeredBy.set(by, (answeredBy.get(by) ?? 0) + 1);
    };
    for (let i = 0; i < REFERENCE; i++) count(await infer(url, clean, i));
    for (let i = 0; i < 2 * WINDOW; i++) count(await infer(url, field.stream.inputs, i));
    // Every answer names its model; the unsure shifted digits went to the teacher.
    expect([...answeredBy.keys()].sort()).toEqual(['cloud', 'local']);
    expect(answeredBy.get('cloud')).toBeGreaterThan(0);

    // Hard samples in the device's sample store (written by the miner's queue).
    const files = join(stateDir, 'samples', 'files');
    let stored = 0;
    for (let tries = 0; tries < 200 && stored === 0; tries++) {
      stored = (await readdir(files)).filter((f) => f.endsWith('.input.npy')).length;
      if (stored === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(stored).toBeGreaterThan(0);

    // The drift event and a telemetry record with the drift score, hard-sample rate and histograms.
    const driftEvent = await waitFor(() => events.find((e) => e.type === 'drift'));
    expect(driftEvent).toMatchObject({ severity: 'warning', data: { model: 'student', version: '1.0.0', drifted: true } });
    expect((driftEvent.data as { score: number }).score).toBeGreaterThan(0.2);
    const record = await waitFor(() => records.find((r) => r.quality.driftScore !== null && r.quality.hardSampleRate !== null));
    expect(record.quality.driftScore).toBeGreaterThan(0);
    expect(record.quality.hardSampleRate).toBeGreaterThan(0);
    expect(record.quality.confidence.counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    // collect-samples: 5 samples of whatever is served next, then an upload of everything pending.
    const command = sendCommand(client, { fleet: 'f1', device: 'dev1', type: 'collect-samples', payload: { count: 5, criterion: 'random' }, signer: undefined, timeoutMs: 120_000 });
    let settled = false;
    void command.finally(() => {
      settled = true;
    });
    for (let i = 2 * WINDOW; !settled && i < 1500; i++) await infer(url, field.stream.inputs, i);
    const outcome = (await command).results.get('dev1');
    expect(outcome?.result).toMatchObject({ status: 'done', result: { criterion: 'random', requested: 5, collected: 5, end: 'count', target: 'http', destination: receiver.url, pending: 0 } });
    const uploaded = (outcome!.result.result as { uploaded: { samples: number } }).uploaded.samples;
    expect(uploaded).toBeGreaterThanOrEqual(stored + 5);
    expect((await readReceivedSamples(join(tmp.dir, 'received'))).count).toBe(uploaded);
  }, 180_000);
});

async function waitFor<T>(find: () => T | undefined): Promise<T> {
  for (let tries = 0; tries < 600; tries++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('not seen within 30 s');
}
