import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createWorkerSession } from '../../../src/runtime/worker-session.ts';
import { gatherModelBytes } from '../../helpers/onnx-builders.ts';
import { killableWorkers } from '../../helpers/killable-workers.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);


let images: Float32Array;
beforeAll(async () => {
  images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
});

function batch(from: number, count: number): TensorValue {
  return { dataType: DataType.FLOAT, dims: [count, 1, 28, 28], data: images.subarray(from * 784, (from + count) * 784) };
}

const open: Session[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.release()));
});
async function track<T extends Session>(session: Promise<T>): Promise<T> {
  const s = await session;
  open.push(s);
  return s;
}

describe('worker session', () => {
  it('returns the same outputs as an in-process session, for every output and for a named one', async () => {
    const local = await track(createSession(MLP));
    const worker = await track(createSession(MLP, { workers: 2 }));
    expect(worker.inputs).toEqual(local.inputs);
    expect(worker.outputs).toEqual(local.outputs);
    const feeds = { [local.inputs[0]!.name]: batch(0, 16) };
    const expected = await local.run(feeds);
    const actual = await worker.run(feeds);
    expect(Object.keys(actual)).toEqual(Object.keys(expected));
    for (const name of Object.keys(expected)) {
      expect(actual[name]!.dims).toEqual(expected[name]!.dims);
      expect(Array.from(actual[name]!.data as Float32Array)).toEqual(Array.from(expected[name]!.data as Float32Array));
    }
    const only = local.outputs[0]!.name;
    expect(Object.keys(await worker.run(feeds, [only]))).toEqual([only]);
  });

  it('leaves the caller\'s input usable: a view into a larger buffer is neither detached nor changed', async () => {
    const worker = await track(createSession(MLP, { workers: 1 }));
    const input = batch(3, 4);
    const before = Array.from(input.data as Float32Array);
    await worker.run({ [worker.inputs[0]!.name]: input });
    expect((input.data as Float32Array).length).toBe(4 * 784);
    expect(Array.from(input.data as Float32Array)).toEqual(before);
    expect(images.length).toBe(2000 * 784);
  });

  it('runs concurrent requests on every worker and answers each with its own result', async () => {
    const local = await track(createSession(MLP));
    const worker = await track(createSession(MLP, { workers: 2 }));
    const name = local.inputs[0]!.name;
    const out = local.outputs[0]!.name;
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => worker.run({ [name]: batch(i, 1) })));
    for (let i = 0; i < 12; i++) {
      const expected = await local.run({ [name]: batch(i, 1) });
      expect(Array.from(results[i]![out]!.data as Float32Array)).toEqual(Array.from(expected[out]!.data as Float32Array));
    }
  });

  it('fails a run the model cannot do with E_RUNTIME_RUN and keeps the worker serving', async () => {
    const worker = await track(createSession(gatherModelBytes(), { workers: 1 }));
    await expect(worker.run({ i: { dataType: DataType.INT64, dims: [1], data: new BigInt64Array([100n]) } })).rejects.toMatchObject({
      code: 'E_RUNTIME_RUN',
      message: expect.stringMatching(/onnxruntime failed to run the model/) as unknown,
    });
    const good = await worker.run({ i: { dataType: DataType.INT64, dims: [2], data: new BigInt64Array([2n, 0n]) } });
    expect(Array.from(good.y!.data as Float32Array)).toEqual([30, 10]);
    expect(worker.workerRestarts).toBe(0);
  });

  it('refuses a model onnxruntime cannot load with E_RUNTIME_SESSION_CREATE', async () => {
    await expect(createSession(new Uint8Array([1, 2, 3, 4]), { workers: 2 })).rejects.toMatchObject({ code: 'E_RUNTIME_SESSION_CREATE' });
  });

  it('fails the request a dying worker was running with E_RUNTIME_WORKER_CRASHED, replaces the worker and serves the next request', async () => {
    const workers = killableWorkers();
    const crashes: string[] = [];
    const session = await track(
      createWorkerSession(MLP, { logSeverityLevel: 3 }, { workers: 1, spawn: workers.spawn, onWorkerCrash: (reason) => crashes.push(reason) }),
    );
    const name = session.inputs[0]!.name;
    workers.killDuringNextRun();
    const failed = await session.run({ [name]: batch(0, 1) }).catch((err: unknown) => err);
    expect(isEdgevolveError(failed) && failed.code).toBe('E_RUNTIME_WORKER_CRASHED');
    expect(crashes).toHaveLength(1);
    expect(session.workerRestarts).toBe(1);
    const after = await session.run({ [name]: batch(0, 1) });
    expect(after[session.outputs[0]!.name]!.dims).toEqual([1, 10]);
    expect(workers.spawned()).toBe(2);
  });

  it('on release, lets the running request finish, fails the queued ones and refuses new ones', async () => {
    const session = await createSession(MLP, { workers: 1 });
    const name = session.inputs[0]!.name;
    const runs = Array.from({ length: 4 }, () => session.run({ [name]: batch(0, 1) }).then(() => 'ok', (err: unknown) => (isEdgevolveError(err) ? err.code : 'other')));
    await session.release();
    expect(await Promise.all(runs)).toEqual(['ok', 'E_RUNTIME_RUN', 'E_RUNTIME_RUN', 'E_RUNTIME_RUN']);
    await expect(session.run({ [name]: batch(0, 1) })).rejects.toMatchObject({ code: 'E_RUNTIME_RUN' });
  });

  it('swaps a slot between worker sessions under concurrent requests without a failed request', async () => {
    const slots = new ModelSlots({ warmupRuns: 1 });
    const slot = slots.add('mnist');
    await slot.swap({ version: '1', createSession: () => createSession(MLP, { workers: 1 }) });
    const name = slot.active!.inputs[0]!.name;
    let stop = false;
    const versions: string[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) versions.push((await slot.infer({ [name]: batch(0, 1) })).version);
    });
    while (versions.length < 8) await new Promise((r) => setTimeout(r, 1));
    const swap = await slot.swap({ version: '2', createSession: () => createSession(MLP, { workers: 1 }) });
    const seen = versions.length;
    while (versions.length < seen + 8) await new Promise((r) => setTimeout(r, 1));
    stop = true;
    await Promise.all(clients);
    await swap.previousDrained;
    expect(versions.slice(0, 8).every((v) => v === '1')).toBe(true);
    expect(versions.at(-1)).toBe('2');
    expect(slot.metrics().total.errors).toBe(0);
    await slots.close();
  });
});
