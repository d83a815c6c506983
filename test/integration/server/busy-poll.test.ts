import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer } from '../../../src/server/index.ts';
import { SERVER_TRANSPORTS } from '../../helpers/server-transports.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

const spun = (metrics: string): number => Number(/^edgevolve_busy_poll_seconds_total (\S+)$/m.exec(metrics)?.[1]);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(SERVER_TRANSPORTS)('inference server: busy-poll window (server.busyPollMs) (%s transport)', (transport) => {
  let slots: ModelSlots;
  let input: TensorValue;
  beforeAll(async () => {
    slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('mnist').swap({ version: '1', createSession: () => createSession(MLP, { threads: 1 }) });
    const images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
    input = { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.slice(0, 784) };
  });
  afterAll(async () => {
    await slots.close();
  });

  async function serve(busyPollMs: number, work: (server: InferenceServer, client: KserveClient) => Promise<void>): Promise<void> {
    const server = createInferenceServer({ transport, models: slots, listen: { port: 0 }, busyPollMs });
    const client = new KserveClient({ url: (await server.listen()).url! });
    try {
      await work(server, client);
    } finally {
      await client.close();
      await server.close();
    }
  }

  it('keeps the loop awake for the window after an answer, then stops: an idle second costs next to no CPU', async () => {
    await serve(150, async (server, client) => {
      expect(spun(server.metricsText())).toBe(0);
      const result = await client.infer('mnist', { input }, { binary: true });
      expect(Object.values(result.outputs)[0]?.dims).toEqual([1, 10]);
      await sleep(400);
      // The chain ran to the end of the window (wall time counted from the answer), then ended.
      const afterWindow = spun(server.metricsText());
      expect(afterWindow).toBeGreaterThanOrEqual(0.15);
      const cpu = process.cpuUsage();
      await sleep(1000);
      const used = process.cpuUsage(cpu);
      expect(spun(server.metricsText())).toBe(afterWindow);
      // A loop still spinning would use about a whole core over this second.
      expect((used.user + used.system) / 1000).toBeLessThan(250);
    });
  });

  it('does not spin with busyPollMs 0 (the default)', async () => {
    await serve(0, async (server, client) => {
      await client.infer('mnist', { input }, { binary: true });
      await sleep(50);
      expect(spun(server.metricsText())).toBe(0);
    });
  });
});
