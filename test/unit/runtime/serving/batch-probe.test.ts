import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeDynamic } from '../../../../src/compress/index.ts';
import { DEFAULT_DYNAMIC_OPTIONS } from '../../../../src/compress/quantize/dynamic.ts';
import { DataType, decodeModel, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto, type TensorValue } from '../../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../../src/runtime/index.ts';
import { batchingFromConfig, ModelSlot, probeBatching } from '../../../../src/runtime/serving/index.ts';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const fixture = (name: string): Buffer => readFileSync(`${ROOT}test/fixtures/models/${name}.onnx`);

/** x [N, 4] float → y, through `nodes`; `y` declared [N, 4] unless given. */
function rowModel(nodes: NodeProto[], options: { initializers?: TensorProto[]; output?: (string | number)[] } = {}): Uint8Array {
  return encodeModel(
    makeModel({
      graph: makeGraph({
        name: 'probe-case',
        nodes,
        inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
        outputs: [makeValueInfo('y', DataType.FLOAT, options.output ?? ['N', 4])],
        initializers: options.initializers ?? [],
      }),
      opsets: [{ domain: '', version: 17 }],
    }),
  );
}

const int64 = (name: string, values: number[]): TensorProto => makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));

/** Models whose rows are not independent, each in a way the signature [N, 4] → [N, ...] hides. */
const MIXING: Record<string, () => Uint8Array> = {
  'an output reduced over the batch axis (x + ReduceSum(x, axis 0))': () =>
    rowModel([makeNode('ReduceSum', ['x', 'axes'], ['s'], { keepdims: 1 }), makeNode('Add', ['x', 's'], ['y'])], { initializers: [int64('axes', [0])] }),
  'a Softmax over the batch axis (axis 0)': () => rowModel([makeNode('Softmax', ['x'], ['y'], { axis: 0 })]),
  'a Reshape flattening the batch ([N, 4] → [4N])': () => rowModel([makeNode('Reshape', ['x', 'shape'], ['y'])], { initializers: [int64('shape', [-1])], output: ['M'] }),
  'a Transpose + Reshape that keeps [N, 4] but moves values across rows': () =>
    rowModel([makeNode('Transpose', ['x'], ['t'], { perm: [1, 0] }), makeNode('Reshape', ['t', 'shape'], ['y'])], { initializers: [int64('shape', [-1, 4])] }),
  'rows mixed by a MatMul on the batch axis (x · (xᵀ · x))': () => rowModel([makeNode('Transpose', ['x'], ['t'], { perm: [1, 0] }), makeNode('MatMul', ['t', 'x'], ['g']), makeNode('MatMul', ['x', 'g'], ['y'])]),
  'a batch-size-dependent output length (x · xᵀ: [N, N])': () => rowModel([makeNode('Transpose', ['x'], ['t'], { perm: [1, 0] }), makeNode('MatMul', ['x', 't'], ['y'])], { output: ['N', 'N'] }),
  'a batch-size-dependent first dimension (Concat(x, x) on axis 0: [2N, 4])': () => rowModel([makeNode('Concat', ['x', 'x'], ['y'], { axis: 0 })], { output: ['M', 4] }),
  'an output that depends on the row position (CumSum over the batch axis)': () => rowModel([makeNode('CumSum', ['x', 'axis'], ['y'])], { initializers: [makeTensor('axis', DataType.INT64, [], BigInt64Array.from([0n]))] }),
};

describe('probeBatching on real onnxruntime sessions', () => {
  const open: Session[] = [];
  const session = async (bytes: Uint8Array): Promise<Session> => {
    const s = await createSession(bytes, { threads: 1 });
    open.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(open.map((s) => s.release()));
  });

  for (const name of ['mnist-mlp', 'mnist-cnn', 'mnist-teacher', 'mnist-student']) {
    it(`passes the ${name} fixture (rows independent: each batched row equals its run alone)`, async () => {
      const verdict = await probeBatching(await session(fixture(name)));
      expect(verdict).toMatchObject({ batchable: true, runs: 5, succeededRuns: 5 });
      expect(verdict.worstDifference).toBeLessThanOrEqual(1e-5);
    });
  }

  for (const [what, build] of Object.entries(MIXING)) {
    it(`fails ${what}`, async () => {
      const verdict = await probeBatching(await session(build()));
      // Caught by running, not by the declared shapes (every case declares a free first dimension).
      expect(verdict).toMatchObject({ batchable: false });
      expect(verdict.runs).toBeGreaterThan(0);
      expect(verdict.reason).toMatch(/^output 'y' (of row \d in a batch of \d rows differs from that row run alone .*: rows affect each other|has .* for (1 row|a 1-row run))/);
    });
  }

  it('fails int8-dynamic quantization: the activation scale is computed over the whole batch, so a row depends on the others', async () => {
    const quantized = quantizeDynamic(decodeModel(fixture('mnist-mlp')), DEFAULT_DYNAMIC_OPTIONS).model;
    const verdict = await probeBatching(await session(encodeModel(quantized)));
    expect(verdict.batchable).toBe(false);
    expect(verdict.reason).toMatch(/output 'logits' of row \d in a batch of \d rows differs from that row run alone by [\d.]+e-\d/);
    expect(verdict.worstDifference).toBeGreaterThan(1e-3);
  });

  it('fails a model whose run fails with more than one row, naming the failed run', async () => {
    // x · Reshape(x, [1, 4]): [N, 4] declared and inferred, but the Reshape fails for N > 1.
    const fixedInside = rowModel([makeNode('Reshape', ['x', 'shape'], ['r']), makeNode('Mul', ['x', 'r'], ['y'])], { initializers: [int64('shape', [1, 4])] });
    const verdict = await probeBatching(await session(fixedInside));
    expect(verdict).toMatchObject({ batchable: false, succeededRuns: 3, runs: 4 });
    expect(verdict.reason).toMatch(/^the run of 3 rows failed: /);
  });

  it('rules out by shape alone, without running, a model with a fixed first dimension', async () => {
    const fixed = encodeModel(
      makeModel({
        graph: makeGraph({ name: 'fixed', nodes: [makeNode('Relu', ['x'], ['y'])], inputs: [makeValueInfo('x', DataType.FLOAT, [1, 4])], outputs: [makeValueInfo('y', DataType.FLOAT, [1, 4])] }),
        opsets: [{ domain: '', version: 17 }],
      }),
    );
    const verdict = await probeBatching(await session(fixed));
    expect(verdict).toMatchObject({ batchable: false, runs: 0, reason: "input 'x' has no free first dimension (shape [1, 4])" });
  });

  it('passes a row-wise graph (Relu) with integer outputs compared exactly (ArgMax)', async () => {
    const rowWise = encodeModel(
      makeModel({
        graph: makeGraph({
          name: 'argmax',
          nodes: [makeNode('Relu', ['x'], ['r']), makeNode('ArgMax', ['r'], ['y'], { axis: 1, keepdims: 1 })],
          inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
          outputs: [makeValueInfo('y', DataType.INT64, ['N', 1])],
        }),
        opsets: [{ domain: '', version: 17 }],
      }),
    );
    expect(await probeBatching(await session(rowWise))).toMatchObject({ batchable: true, worstDifference: 0 });
  });
});

describe('ModelSlot with batchMaxRows auto: the probe decides, visibly', () => {
  const logLines: { msg: string; model?: string; reason?: string; batched?: boolean }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(JSON.parse(chunk.toString()) as (typeof logLines)[number]);
        done();
      },
    }),
  );
  const mixing = MIXING['an output reduced over the batch axis (x + ReduceSum(x, axis 0))']!();
  /** Rows reaching onnxruntime per run after the swap. */
  const runRows: number[] = [];
  const counting = async (bytes: Uint8Array): Promise<Session> => {
    const inner = await createSession(bytes, { threads: 1 });
    return { inputs: inner.inputs, outputs: inner.outputs, run: (f, n) => (runRows.push(Object.values(f)[0]!.dims[0]!), inner.run(f, n)), release: () => inner.release() };
  };
  const row = (i: number): Record<string, TensorValue> => ({ x: { dataType: DataType.FLOAT, dims: [1, 4], data: Float32Array.from([i + 1, i + 2, -(i + 1), 2 * i + 1]) } });
  let mlp: ModelSlot;
  let mixer: ModelSlot;
  let forced: ModelSlot;

  beforeAll(async () => {
    const auto = batchingFromConfig('auto', 0)!;
    mlp = new ModelSlot('mlp', { warmupRuns: 3, batching: auto, logger });
    mixer = new ModelSlot('mixer', { warmupRuns: 3, batching: auto, logger });
    forced = new ModelSlot('forced', { warmupRuns: 0, batching: batchingFromConfig(64, 0)!, logger });
    await mlp.swap({ version: '1', createSession: () => createSession(fixture('mnist-mlp'), { threads: 1 }) });
    await mixer.swap({ version: '1', createSession: () => counting(mixing) });
    await forced.swap({ version: '1', createSession: () => counting(mixing) });
  });
  afterAll(async () => {
    await Promise.all([mlp.close(), mixer.close(), forced.close()]);
  });

  it("turns batching on for a model the probe passes, and says so in the metadata labels (GET /v2/models/<name> parameters)", () => {
    expect(mlp.active!.batching).toMatchObject({ enabled: true, maxRows: 128 });
    expect(mlp.active!.labels).toMatchObject({ batching: 'on' });
    expect(mlp.active!.labels.batching_reason).toMatch(/^each row of batches of 3 and 2 rows equals its run alone/);
    expect(logLines.find((l) => l.model === 'mlp')).toMatchObject({ batched: true, msg: 'dynamic batching on (up to 128 rows): the batch probe passed' });
  });

  it('leaves a row-mixing model unbatched, logs why, and answers concurrent requests each from its own run', async () => {
    expect(mixer.active!.batching.enabled).toBe(false);
    expect(mixer.active!.labels).toMatchObject({ batching: 'off' });
    expect(mixer.active!.labels.batching_reason).toMatch(/output 'y' of row \d in a batch of \d rows differs from that row run alone .*rows affect each other/);
    const line = logLines.find((l) => l.model === 'mixer');
    expect(line).toMatchObject({ batched: false });
    expect(line!.msg).toMatch(/^model not batched: output 'y' of row/);

    runRows.length = 0;
    const answers = await Promise.all([0, 1, 2, 3].map((i) => mixer.infer(row(i))));
    expect(runRows).toEqual([1, 1, 1, 1]);
    // Alone, y = x + x: each answer is its own row doubled, whatever else was in flight.
    for (let i = 0; i < 4; i++) expect(Array.from(answers[i]!.outputs.y!.data as Float32Array)).toEqual(Array.from(row(i).x!.data as Float32Array, (v) => 2 * v));
  });

  it('with an explicit row count batches the same model unprobed (why auto probes): answers then depend on the other requests', async () => {
    expect(forced.active!.batching).toMatchObject({ enabled: true, maxRows: 64 });
    expect(forced.active!.batching.reason).toMatch(/batch probe not run/);
    runRows.length = 0;
    const answers = await Promise.all([0, 1, 2, 3].map((i) => forced.infer(row(i))));
    expect(runRows).toEqual([4]);
    expect(Array.from(answers[1]!.outputs.y!.data as Float32Array)).not.toEqual(Array.from(row(1).x!.data as Float32Array, (v) => 2 * v));
  });

  it('counts the probe runs as warm-up runs: a probed load makes no more single-row runs than the warm-up alone would', async () => {
    const rows: number[] = [];
    const slot = new ModelSlot('count', { warmupRuns: 3, batching: batchingFromConfig('auto', 0)! });
    await slot.swap({
      version: '1',
      createSession: async () => {
        const inner = await createSession(fixture('mnist-mlp'), { threads: 1 });
        return { inputs: inner.inputs, outputs: inner.outputs, run: (f, n) => (rows.push(Object.values(f)[0]!.dims[0]!), inner.run(f, n)), release: () => inner.release() };
      },
    });
    await slot.close();
    // 3 single rows (the probe's, standing in for the 3 warm-up runs), then batches of 3 and 2.
    expect(rows).toEqual([1, 1, 1, 3, 2]);
  });
});

describe('probeBatching on an inference-worker session', () => {
  it('reaches the same verdicts when the model runs in a worker thread (server.inferenceWorkers > 0)', async () => {
    const mlp = await createSession(fixture('mnist-mlp'), { threads: 1, workers: 1 });
    const mixer = await createSession(MIXING['a Softmax over the batch axis (axis 0)']!(), { threads: 1, workers: 1 });
    try {
      expect(await probeBatching(mlp)).toMatchObject({ batchable: true, runs: 5 });
      expect((await probeBatching(mixer)).reason).toMatch(/^output 'y' of row \d in a batch of \d rows differs .*: rows affect each other$/);
    } finally {
      await Promise.all([mlp.release(), mixer.release()]);
    }
  });
});
