import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { createSession, type Session } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, type InferenceServer } from '../../../src/server/index.ts';
import { SERVER_TRANSPORTS } from '../../helpers/server-transports.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

describe.each(SERVER_TRANSPORTS)('KServe v2 JSON inference on mnist-mlp (%s transport)', (transport) => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let url: string;
  let reference: Session;
  let images: Float32Array;

  beforeAll(async () => {
    slots = new ModelSlots({ warmupRuns: 1 });
    await slots.add('mnist').swap({ version: '1', variant: 'fp32', createSession: () => createSession(MLP) });
    server = createInferenceServer({ transport, models: slots, listen: { port: 0 } });
    url = (await server.listen()).url!;
    reference = await createSession(MLP);
    const npy = await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`);
    images = (npy.data as Float32Array).subarray(0, 4 * 784);
  });
  afterAll(async () => {
    await server.close();
    await slots.close();
    await reference.release();
  });

  it('returns the same logits as an in-process session for a batch of 4 test digits', async () => {
    const response = await fetch(`${url}/v2/models/mnist/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'r1', inputs: [{ name: 'input', shape: [4, 1, 28, 28], datatype: 'FP32', data: Array.from(images) }] }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: string; model_name: string; model_version: string; parameters: { answered_by: string }; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
    expect(body).toMatchObject({ id: 'r1', model_name: 'mnist', model_version: '1', parameters: { answered_by: 'local' } });
    const expected = await reference.run({ input: { dataType: 1, dims: [4, 1, 28, 28], data: images } });
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [4, 10] });
    // Exact: float32 values printed as doubles parse back to the same float32.
    expect(Float32Array.from(body.outputs[0]!.data)).toEqual(expected.logits!.data);
  });

  it('reports ready and the model metadata with KServe datatypes and -1 for the free batch dimension', async () => {
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const meta = await (await fetch(`${url}/v2/models/mnist`)).json();
    expect(meta).toMatchObject({
      name: 'mnist',
      versions: ['1'],
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
      parameters: { variant: 'fp32' },
    });
  });
});
