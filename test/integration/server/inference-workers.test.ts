import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createWorkerSession } from '../../../src/runtime/worker-session.ts';
import { createInferenceServer, KserveClient, type InferenceServer, type ServerTransport } from '../../../src/server/index.ts';
import { killableWorkers } from '../../helpers/killable-workers.ts';
import { SERVER_TRANSPORTS } from '../../helpers/server-transports.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

let images: Float32Array;
beforeAll(async () => {
  images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function serve(slots: ModelSlots, transport: ServerTransport): Promise<{ server: InferenceServer; client: KserveClient }> {
  const server = createInferenceServer({ transport, models: slots, listen: { port: 0 } });
  const { url } = await server.listen();
  const client = new KserveClient({ url: url! });
  cleanup.push(() => slots.close(), () => server.close(), () => client.close());
  return { server, client };
}

describe.each(SERVER_TRANSPORTS)('inference server with inference workers (%s transport)', (transport) => {
  it('answers binary and JSON requests served by a worker with the logits of an in-process session', async () => {
    const slots = new ModelSlots({ warmupRuns: 1 });
    await slots.add('mnist').swap({ version: '1', createSession: () => createSession(MLP, { workers: 2 }) });
    const { client } = await serve(slots, transport);
    const reference = await createSession(MLP);
    cleanup.push(() => reference.release());
    const input: TensorValue = { dataType: DataType.FLOAT, dims: [8, 1, 28, 28], data: images.subarray(0, 8 * 784) };
    const expected = (await reference.run({ input })).logits;
    const binary = await client.infer('mnist', { input }, { binary: true });
    const json = await client.infer('mnist', { input }, { binary: false });
    expect(binary.outputs.logits).toEqual(expected);
    expect(Array.from(json.outputs.logits!.data as Float32Array)).toEqual(Array.from(expected!.data as Float32Array));
  });

  it('answers 500 E_RUNTIME_WORKER_CRASHED when the worker dies with the request, counts it, and serves the next request', async () => {
    // The fault is injected: the real worker thread is terminated as the request is handed to
    // it (before onnxruntime runs in it, which would abort the process), since no request
    // can make a healthy worker die on demand.
    const workers = killableWorkers();
    const slots = new ModelSlots({ warmupRuns: 1 });
    await slots.add('mnist').swap({ version: '1', createSession: () => createWorkerSession(MLP, { logSeverityLevel: 3 }, { workers: 1, spawn: workers.spawn }) });
    const { server, client } = await serve(slots, transport);
    const input: TensorValue = { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.subarray(0, 784) };

    workers.killDuringNextRun();
    const failed = await client.infer('mnist', { input }, { binary: true }).catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'E_INFER_REMOTE', context: { status: 500, remoteCode: 'E_RUNTIME_WORKER_CRASHED' } });
    const after = await client.infer('mnist', { input }, { binary: true });
    expect(after.outputs.logits!.dims).toEqual([1, 10]);
    const metrics = server.metricsText();
    expect(metrics).toMatch(/edgevolve_model_failures_total\{model="mnist"\} 1/);
    expect(metrics).toMatch(/edgevolve_inference_worker_restarts_total\{model="mnist"\} 1/);
    expect(metrics).toMatch(/edgevolve_http_responses_total\{route="\/v2\/models\/:name\/infer",code="200"\} 1/);
  });
});
