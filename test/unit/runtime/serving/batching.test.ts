import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../../src/data/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeValueInfo, type TensorValue } from '../../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../../src/runtime/index.ts';
import { batchingSession } from '../../../../src/runtime/serving/index.ts';
import { gatherModelBytes } from '../../../helpers/onnx-builders.ts';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

/** The real session, counting the runs that reach onnxruntime (what batching saves). */
function counted(session: Session): { session: Session; runs: number[] } {
  const runs: number[] = [];
  return {
    runs,
    session: {
      inputs: session.inputs,
      outputs: session.outputs,
      run: (feeds, names) => {
        runs.push(Object.values(feeds)[0]!.dims[0]!);
        return session.run(feeds, names);
      },
      release: () => session.release(),
    },
  };
}

describe('batchingSession on real onnxruntime sessions', () => {
  let mlp: Session;
  let images: Float32Array;
  const rows = (start: number, count: number): Record<string, TensorValue> => ({
    input: { dataType: DataType.FLOAT, dims: [count, 1, 28, 28], data: images.slice(start * 784, (start + count) * 784) },
  });
  beforeAll(async () => {
    mlp = await createSession(MLP, { threads: 1 });
    images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
  });
  afterAll(async () => {
    await mlp.release();
  });

  it('runs concurrent requests as one batch and answers each with exactly its own rows', async () => {
    const { session, runs } = counted(mlp);
    const batching = batchingSession(session, { maxRows: 64 });
    const requests = [rows(0, 1), rows(1, 2), rows(3, 3), rows(6, 4)];
    const answers = await Promise.all(requests.map((feeds) => batching.run(feeds)));
    expect(runs).toEqual([10]);
    for (let i = 0; i < requests.length; i++) {
      const alone = (await mlp.run(requests[i]!)).logits!;
      const batched = answers[i]!.logits!;
      expect(batched.dims).toEqual(alone.dims);
      const a = alone.data as Float32Array;
      const b = batched.data as Float32Array;
      for (let j = 0; j < a.length; j++) expect(b[j]).toBeCloseTo(a[j]!, 4);
    }
  });

  it('keeps a batch within maxRows and runs a lone request by itself', async () => {
    const { session, runs } = counted(mlp);
    const batching = batchingSession(session, { maxRows: 5 });
    await Promise.all([rows(0, 3), rows(3, 3), rows(6, 2)].map((feeds) => batching.run(feeds)));
    expect(runs).toEqual([5, 3]);
    runs.length = 0;
    await batching.run(rows(0, 2));
    expect(runs).toEqual([2]);
  });

  it('runs a request asking for a subset of outputs on its own', async () => {
    const { session, runs } = counted(mlp);
    const batching = batchingSession(session, { maxRows: 64 });
    await Promise.all([batching.run(rows(0, 1)), batching.run(rows(1, 1), ['logits']), batching.run(rows(2, 1))]);
    expect([...runs].sort()).toEqual([1, 2]);
  });

  it('fails only the bad request when a batched run fails (each retried alone)', async () => {
    const gather = await createSession(gatherModelBytes(), { threads: 1 });
    try {
      const batching = batchingSession(gather, { maxRows: 64 });
      const index = (values: bigint[]): Record<string, TensorValue> => ({ i: { dataType: DataType.INT64, dims: [values.length], data: BigInt64Array.from(values) } });
      const results = await Promise.allSettled([batching.run(index([0n, 1n])), batching.run(index([7n])), batching.run(index([2n]))]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(Array.from((results[0] as PromiseFulfilledResult<Record<string, TensorValue>>).value.y!.data as Float32Array)).toEqual([10, 20]);
      expect(Array.from((results[2] as PromiseFulfilledResult<Record<string, TensorValue>>).value.y!.data as Float32Array)).toEqual([30]);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'E_RUNTIME_RUN' });
    } finally {
      await gather.release();
    }
  });

  it('reuses its concatenation buffer across batches without touching earlier answers, even when the output is the input (Identity)', async () => {
    // An Identity model is where an output could alias the batch's input buffer: if it did, the next batch would overwrite the previous answers.
    const identity = await createSession(
      encodeModel(
        makeModel({
          graph: makeGraph({
            name: 'identity',
            nodes: [makeNode('Identity', ['x'], ['y'])],
            inputs: [makeValueInfo('x', DataType.FLOAT, ['n', 784])],
            outputs: [makeValueInfo('y', DataType.FLOAT, ['n', 784])],
          }),
        }),
      ),
      { threads: 1 },
    );
    try {
      const { session, runs } = counted(identity);
      const batching = batchingSession(session, { maxRows: 256 });
      const flat = (start: number, count: number): Record<string, TensorValue> => ({ x: { dataType: DataType.FLOAT, dims: [count, 784], data: images.slice(start * 784, (start + count) * 784) } });
      // 10 rows, then 3 (the buffer reused, partly), then 40 (the buffer grown).
      const waves = [
        [flat(0, 4), flat(4, 6)],
        [flat(100, 1), flat(101, 2)],
        [flat(200, 20), flat(220, 20)],
      ];
      const answers: { expected: Float32Array; got: TensorValue }[] = [];
      for (const wave of waves) {
        const got = await Promise.all(wave.map((feeds) => batching.run(feeds)));
        for (let i = 0; i < wave.length; i++) answers.push({ expected: wave[i]!.x!.data as Float32Array, got: got[i]!.y! });
      }
      expect(runs).toEqual([10, 3, 40]);
      for (const { expected, got } of answers) expect(Array.from(got.data as Float32Array)).toEqual(Array.from(expected));

      // The MLP the same way: later batches leave the logits of the first one as they were.
      const mlpBatching = batchingSession(mlp, { maxRows: 256 });
      const first = await Promise.all([rows(0, 3), rows(3, 5)].map((feeds) => mlpBatching.run(feeds)));
      const before = first.map((a) => Float32Array.from(a.logits!.data as Float32Array));
      await Promise.all([rows(500, 30), rows(530, 30)].map((feeds) => mlpBatching.run(feeds)));
      expect(first.map((a) => Array.from(a.logits!.data as Float32Array))).toEqual(before.map((b) => Array.from(b)));
      const alone = (await mlp.run(rows(3, 5))).logits!.data as Float32Array;
      const batched = first[1]!.logits!.data as Float32Array;
      for (let j = 0; j < alone.length; j++) expect(batched[j]).toBeCloseTo(alone[j]!, 4);
    } finally {
      await identity.release();
    }
  });

  it('leaves a model without a free first dimension unbatched (the same session)', async () => {
    const fixedBatch = encodeModel(
      makeModel({
        graph: makeGraph({
          name: 'fixed',
          nodes: [makeNode('Relu', ['x'], ['y'])],
          inputs: [makeValueInfo('x', DataType.FLOAT, [2, 3])],
          outputs: [makeValueInfo('y', DataType.FLOAT, [2, 3])],
        }),
      }),
    );
    const fixed = await createSession(fixedBatch, { threads: 1 });
    try {
      expect(batchingSession(fixed, { maxRows: 64 })).toBe(fixed);
      expect(batchingSession(mlp, { maxRows: 1 })).toBe(mlp);
      expect(batchingSession(mlp, { maxRows: 64 })).not.toBe(mlp);
    } finally {
      await fixed.release();
    }
  });
});
