import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeValueInfo, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../src/runtime/index.ts';
import { batchingFromConfig, ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer } from '../../../src/server/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

describe('inference server with dynamic batching (server.batchMaxRows)', () => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let client: KserveClient;
  let reference: Session;
  let images: Float32Array;
  /** Rows reaching onnxruntime per run (the real session, counted). */
  const runRows: number[] = [];

  beforeAll(async () => {
    images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
    reference = await createSession(MLP, { threads: 1 });
    slots = new ModelSlots({ warmupRuns: 0, batching: { maxRows: 64 } });
    await slots.add('mnist').swap({
      version: '1',
      createSession: async () => {
        const session = await createSession(MLP, { threads: 1 });
        return { inputs: session.inputs, outputs: session.outputs, run: (f, n) => (runRows.push(Object.values(f)[0]!.dims[0]!), session.run(f, n)), release: () => session.release() };
      },
    });
    server = createInferenceServer({ models: slots, listen: { port: 0 }, limits: { concurrencyPerModel: 16 } });
    client = new KserveClient({ url: (await server.listen()).url!, connections: 16 });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
    await slots.close();
    await reference.release();
  });

  it('answers 16 concurrent requests, JSON and binary, each with its own rows, in fewer runs than requests', async () => {
    const input = (i: number): TensorValue => ({ dataType: DataType.FLOAT, dims: [1 + (i % 3), 1, 28, 28], data: images.slice(i * 784 * 3, i * 784 * 3 + (1 + (i % 3)) * 784) });
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => client.infer('mnist', { input: input(i) }, { binary: i % 2 === 0 })));
    for (let i = 0; i < 16; i++) {
      const expected = (await reference.run({ input: input(i) })).logits!;
      const got = answers[i]!.outputs.logits!;
      expect(got.dims).toEqual(expected.dims);
      const e = expected.data as Float32Array;
      const g = got.data as Float32Array;
      for (let j = 0; j < e.length; j++) expect(g[j]).toBeCloseTo(e[j]!, 4);
    }
    // Every request's rows ran exactly once, and some requests shared a run.
    expect(runRows.reduce((a, b) => a + b, 0)).toBe(Array.from({ length: 16 }, (_, i) => 1 + (i % 3)).reduce((a, b) => a + b, 0));
    expect(runRows.length).toBeLessThan(16);
  });
});

describe('batchMaxRows auto through the KServe server: the verdict in the model metadata', () => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let url: string;

  beforeAll(async () => {
    slots = new ModelSlots({ warmupRuns: 1, batching: batchingFromConfig('auto', 0)! });
    await slots.add('mnist').swap({ version: '1', createSession: () => createSession(MLP, { threads: 1 }) });
    // Softmax over the batch axis: [N, 4] in and out, rows normalised against each other.
    const softmax0 = encodeModel(
      makeModel({
        graph: makeGraph({ name: 'softmax0', nodes: [makeNode('Softmax', ['x'], ['y'], { axis: 0 })], inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])], outputs: [makeValueInfo('y', DataType.FLOAT, ['N', 4])] }),
        opsets: [{ domain: '', version: 17 }],
      }),
    );
    await slots.add('mixer').swap({ version: '1', createSession: () => createSession(softmax0, { threads: 1 }) });
    server = createInferenceServer({ models: slots, listen: { port: 0 } });
    url = (await server.listen()).url!;
  });
  afterAll(async () => {
    await server.close();
    await slots.close();
  });

  it('GET /v2/models/<name> says batching on for the MLP and off, with the reason, for a Softmax over the batch axis', async () => {
    const metadata = async (name: string): Promise<{ parameters: Record<string, string> }> => (await (await fetch(`${url}/v2/models/${name}`)).json()) as { parameters: Record<string, string> };
    expect((await metadata('mnist')).parameters).toMatchObject({ batching: 'on' });
    const mixer = (await metadata('mixer')).parameters;
    expect(mixer.batching).toBe('off');
    expect(mixer.batching_reason).toMatch(/^output 'y' of row \d in a batch of \d rows differs from that row run alone by .*: rows affect each other$/);
  });
});
