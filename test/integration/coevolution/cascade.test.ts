import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FIELD_SHIFT, loadFieldData, measureCascade, openPredictor, argmax, scoreLogits, type FieldData } from '../../../src/coevolution/index.ts';
import { DriftMonitor } from '../../../src/coevolution/drift.ts';
import { CloudCascade, type CascadeOptions } from '../../../src/coevolution/cascade/index.ts';
import { DataType } from '../../../src/onnx/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer } from '../../../src/server/index.ts';
import { freePort } from '../../helpers/free-port.ts';

const STUDENT = 'test/fixtures/models/mnist-student.onnx';
const TEACHER = 'test/fixtures/models/mnist-teacher.onnx';
const REQUESTS = 200;

/** The cloud: edgevolve's own KServe v2 server serving mnist-teacher on loopback. */
async function startCloud(port = 0): Promise<{ server: InferenceServer; slots: ModelSlots; url: string }> {
  const slots = new ModelSlots({ warmupRuns: 1 });
  await slots.add('mnist-teacher').swap({ version: '1', createSession: () => createSession(TEACHER, { threads: 1 }) });
  const server = createInferenceServer({ models: slots, listen: { host: '127.0.0.1', port } });
  const address = await server.listen();
  return { server, slots, url: address.url! };
}

/** The device: a student slot whose interceptor is the cascade. */
async function device(cascade: CloudCascade): Promise<ModelSlots> {
  const slots = new ModelSlots({ warmupRuns: 1, interceptor: cascade });
  await slots.add('student').swap({ version: '1', createSession: () => createSession(STUDENT, { threads: 1 }) });
  return slots;
}

function options(url: string, overrides: Partial<CascadeOptions> = {}): CascadeOptions {
  return { url, cloudModel: 'mnist-teacher', criteria: { marginBelow: 0.3 }, deadlineMs: 2000, breakerFailures: 3, breakerOpenMs: 60_000, ...overrides };
}

function row(field: FieldData, i: number): Record<string, { dataType: number; dims: number[]; data: Float32Array }> {
  return { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: field.heldOut.inputs.slice(i * 784, (i + 1) * 784) } };
}

describe('cloud cascade through the serving path (real onnxruntime on both ends, real KServe v2 over HTTP)', () => {
  let field: FieldData;
  let cloud: Awaited<ReturnType<typeof startCloud>>;

  beforeAll(async () => {
    field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
    cloud = await startCloud();
  }, 30_000);

  afterAll(async () => {
    await cloud.server.close(1000);
    await cloud.slots.close();
  });

  it('answers unsure requests with the teacher, counts both, and matches the offline cascade measurement', async () => {
    const cascade = new CloudCascade(options(cloud.url), Date.now);
    const slots = await device(cascade);
    const slot = slots.get('student')!;
    const predictions = new Int32Array(REQUESTS);
    let byCloud = 0;
    for (let i = 0; i < REQUESTS; i++) {
      const result = await slot.infer(row(field, i));
      if (result.answeredBy === 'cloud') byCloud++;
      predictions[i] = argmax(result.outputs.logits!.data as Float32Array, 1, 10)[0]!;
    }
    await slots.close();
    const student = await openPredictor(STUDENT, { threads: 1 });
    const teacher = await openPredictor(TEACHER, { threads: 1 });
    const inputs = field.heldOut.inputs.subarray(0, REQUESTS * 784);
    const labels = field.heldOut.labels.subarray(0, REQUESTS);
    const offline = measureCascade(await student.logits(inputs, REQUESTS), await teacher.logits(inputs, REQUESTS), labels, REQUESTS, 10, { marginBelow: 0.3 });
    await student.release();
    await teacher.release();
    expect(cascade.counters.requests).toBe(REQUESTS);
    expect(cascade.counters.answeredByCloud).toBe(byCloud);
    expect(cascade.counters.answeredByCloud + cascade.counters.answeredLocally).toBe(REQUESTS);
    expect(byCloud / REQUESTS).toBeCloseTo(offline.offloadShare, 5);
    let correct = 0;
    for (let i = 0; i < REQUESTS; i++) if (predictions[i] === labels[i]) correct++;
    expect(correct / REQUESTS).toBeCloseTo(offline.accuracy, 5);
    expect(offline.accuracy).toBeGreaterThan(offline.localAccuracy);
  }, 60_000);

  it('says in the device API response which model answered', async () => {
    const cascade = new CloudCascade(options(cloud.url, { criteria: { maxProbabilityBelow: 1.01 } }), Date.now);
    const slots = await device(cascade);
    const server = createInferenceServer({ models: slots, listen: { host: '127.0.0.1', port: 0 } });
    const address = await server.listen();
    const client = new KserveClient({ url: address.url! });
    try {
      const answer = await client.infer('student', row(field, 0));
      expect(answer.parameters.answered_by).toBe('cloud');
    } finally {
      await client.close();
      await server.close(1000);
      await slots.close();
    }
  }, 30_000);

  it('opens the breaker after consecutive failures of an unreachable cloud and keeps answering locally', async () => {
    const port = await freePort();
    let now = 0;
    const cascade = new CloudCascade(options(`http://127.0.0.1:${port}`, { criteria: { maxProbabilityBelow: 1.01 }, breakerFailures: 3, breakerOpenMs: 1000 }), () => now);
    const slots = await device(cascade);
    const slot = slots.get('student')!;
    for (let i = 0; i < 10; i++) expect((await slot.infer(row(field, i))).answeredBy).toBe('local');
    expect(cascade.counters).toMatchObject({ offloaded: 3, cloudErrors: 3, breakerSkipped: 7, answeredLocally: 10 });
    expect(cascade.breakerState).toBe('open');
    // The cloud comes back on that port; after the open period one trial closes the breaker.
    const back = await startCloud(port);
    now += 1000;
    expect((await slot.infer(row(field, 0))).answeredBy).toBe('cloud');
    expect(cascade.breakerState).toBe('closed');
    await back.server.close(1000);
    await back.slots.close();
    await slots.close();
  }, 30_000);

  it('answers locally when the cloud misses the deadline (fault injection: a server that never answers)', async () => {
    // A hanging peer is the one thing the real KServe server will not do on request.
    const sockets = new Set<Socket>();
    const hang: Server = createServer(() => {});
    hang.on('connection', (s) => sockets.add(s));
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    const { port } = hang.address() as AddressInfo;
    const cascade = new CloudCascade(options(`http://127.0.0.1:${port}`, { criteria: { maxProbabilityBelow: 1.01 }, deadlineMs: 100 }), Date.now);
    const slots = await device(cascade);
    const result = await slots.get('student')!.infer(row(field, 0));
    expect(result.answeredBy).toBe('local');
    expect(cascade.counters.cloudTimeouts).toBe(1);
    await slots.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => hang.close(() => resolve()));
  }, 30_000);
});

describe('drift detection on the student (real onnxruntime)', () => {
  it('scores clean digits against a clean reference as stable and the shifted field data as drifted', async () => {
    const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1000);
    const student = await openPredictor(STUDENT, { threads: 1 });
    const reports: { score: number; drifted: boolean }[] = [];
    const events: unknown[] = [];
    const drift = new DriftMonitor({ bins: 10, referenceSize: 500, windowSize: 500, threshold: 0.2 }, { report: (r) => reports.push(r), event: (e) => events.push(e) });
    const feed = async (inputs: Float32Array, count: number): Promise<void> => {
      const logits = await student.logits(inputs, count);
      for (let i = 0; i < count; i++) {
        const s = scoreLogits(logits, i, 10);
        drift.observe('student', '1', s.maxProbability, s.normalizedEntropy);
      }
    };
    await feed(field.cleanHeldOut.inputs.subarray(0, 500 * 784), 500); // reference at deployment
    await feed(field.cleanHeldOut.inputs.subarray(500 * 784, 1000 * 784), 500); // clean live window
    await feed(field.heldOut.inputs.subarray(0, 500 * 784), 500); // field live window
    await student.release();
    expect(reports).toHaveLength(2);
    expect(reports[0]!.drifted).toBe(false);
    expect(reports[1]!.drifted).toBe(true);
    expect(reports[1]!.score).toBeGreaterThan(5 * reports[0]!.score);
    expect(events).toHaveLength(1);
  }, 30_000);
});
