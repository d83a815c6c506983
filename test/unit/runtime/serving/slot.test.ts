import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../../src/errors/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../../src/runtime/index.ts';
import { ModelSlot, ModelSlots, type InferenceEvent } from '../../../../src/runtime/serving/index.ts';

/** y = x · k, so the output says which version answered. */
function scaleModel(k: number): Uint8Array {
  return encodeModel(
    makeModel({
      graph: makeGraph({
        name: `scale${k}`,
        nodes: [makeNode('Mul', ['x', 'k'], ['y'])],
        inputs: [makeValueInfo('x', DataType.FLOAT, ['n', 2])],
        outputs: [makeValueInfo('y', DataType.FLOAT, ['n', 2])],
        initializers: [makeTensor('k', DataType.FLOAT, [], new Float32Array([k]))],
      }),
    }),
  );
}

const x = { dataType: DataType.FLOAT, dims: [1, 2], data: new Float32Array([1, 2]) };

/** A real session whose release is recorded, and whose runs can be held at a gate (to have requests in flight during a swap). */
function instrumented(session: Session, log: string[], label: string): Session & { hold: () => () => void } {
  let gate: Promise<void> | undefined;
  return {
    inputs: session.inputs,
    outputs: session.outputs,
    async run(feeds, names) {
      if (gate !== undefined) await gate;
      return session.run(feeds, names);
    },
    async release() {
      log.push(`release ${label}`);
      await session.release();
    },
    hold() {
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('ModelSlot', () => {
  it('is not loaded before its first swap and refuses inference with E_SERVING_NOT_LOADED', async () => {
    const slot = new ModelSlot('m');
    expect(slot.loaded).toBe(false);
    await expect(slot.infer({ x })).rejects.toMatchObject({ code: 'E_SERVING_NOT_LOADED' });
  });

  it('warms a new version before switching, and answers with its version afterwards', async () => {
    const slot = new ModelSlot('m', { warmupRuns: 2 });
    let runsBeforeServing = 0;
    await slot.swap({
      version: '1',
      createSession: async () => {
        const s = await createSession(scaleModel(1));
        return { ...s, inputs: s.inputs, outputs: s.outputs, run: (f, n) => (runsBeforeServing++, s.run(f, n)), release: () => s.release() };
      },
    });
    expect(runsBeforeServing).toBe(2);
    const r1 = await slot.infer({ x });
    expect(r1).toMatchObject({ version: '1', answeredBy: 'local' });
    expect(r1.outputs.y!.data).toEqual(new Float32Array([1, 2]));
    const swapped = await slot.swap({ version: '2', variant: 'int8', createSession: () => createSession(scaleModel(2)) });
    expect(swapped.previousVersion).toBe('1');
    await swapped.previousDrained;
    const r2 = await slot.infer({ x });
    expect(r2).toMatchObject({ version: '2', variant: 'int8' });
    expect(r2.outputs.y!.data).toEqual(new Float32Array([2, 4]));
    await slot.close();
  });

  it('finishes in-flight inferences on the old version and releases it only after they end', async () => {
    const log: string[] = [];
    const slot = new ModelSlot('m', { warmupRuns: 0 });
    const old = instrumented(await createSession(scaleModel(1)), log, 'v1');
    await slot.swap({ version: '1', createSession: () => Promise.resolve(old) });
    const open = old.hold();
    const inFlight = slot.infer({ x });
    const swap = await slot.swap({ version: '2', createSession: async () => instrumented(await createSession(scaleModel(2)), log, 'v2') });
    // The new version serves while the old request still runs.
    expect((await slot.infer({ x })).version).toBe('2');
    expect(slot.metrics().inFlight).toBe(1);
    expect(log).toEqual([]);
    open();
    const result = await inFlight;
    expect(result.version).toBe('1');
    expect(result.outputs.y!.data).toEqual(new Float32Array([1, 2]));
    await swap.previousDrained;
    expect(log).toEqual(['release v1']);
    await slot.close();
    expect(log).toEqual(['release v1', 'release v2']);
  });

  it('keeps the old version serving when the new one fails to load or to warm up', async () => {
    const slot = new ModelSlot('m', { warmupRuns: 1 });
    await slot.swap({ version: '1', createSession: () => createSession(scaleModel(1)) });
    const garbage = slot.swap({ version: '2', createSession: () => createSession(new Uint8Array([1, 2, 3])) });
    await expect(garbage).rejects.toMatchObject({ code: 'E_SERVING_SWAP_FAILED', context: { reason: 'E_RUNTIME_SESSION_CREATE', previousVersion: '1' } });
    const log: string[] = [];
    const failsWarmup = slot.swap({
      version: '3',
      createSession: async () => {
        const s = instrumented(await createSession(scaleModel(3)), log, 'v3');
        return { ...s, run: () => Promise.reject(new Error('kernel failed')) };
      },
    });
    await expect(failsWarmup).rejects.toMatchObject({ code: 'E_SERVING_SWAP_FAILED' });
    expect(log).toEqual(['release v3']);
    expect(slot.active?.version).toBe('1');
    expect((await slot.infer({ x })).outputs.y!.data).toEqual(new Float32Array([1, 2]));
    expect(slot.metrics()).toMatchObject({ swaps: 1, failedSwaps: 2 });
    await slot.close();
  });

  it('refuses inputs that do not fit the model with E_SERVING_INPUT_INVALID, without counting them as model errors', async () => {
    const slot = new ModelSlot('m', { warmupRuns: 0 });
    await slot.swap({ version: '1', createSession: () => createSession(scaleModel(1)) });
    const cases: [Record<string, typeof x>, RegExp][] = [
      [{ z: x }, /no input 'z'/],
      [{}, /input 'x' is missing/],
      [{ x: { ...x, dataType: DataType.DOUBLE, data: new Float64Array([1, 2]) } as never }, /input 'x' is FLOAT, the request sends DOUBLE/],
      [{ x: { ...x, dims: [2] } }, /input 'x' has rank 2/],
      [{ x: { ...x, dims: [2, 1] } }, /dimension 1 must be 2/],
    ];
    for (const [feeds, message] of cases) {
      const err: unknown = await slot.infer(feeds).catch((e: unknown) => e);
      expect(isEdgevolveError(err, 'E_SERVING_INPUT_INVALID') && message.test(err.message), String(err)).toBe(true);
    }
    await expect(slot.infer({ x }, { outputNames: ['nope'] })).rejects.toMatchObject({ code: 'E_SERVING_INPUT_INVALID' });
    await expect(slot.infer({ x }, { version: '9' })).rejects.toMatchObject({ code: 'E_SERVING_NOT_LOADED', context: { requestedVersion: '9' } });
    expect(slot.metrics().total).toMatchObject({ inferences: 0, errors: 0 });
    await slot.close();
  });

  it('tells observers about each inference and lets an interceptor answer instead (answeredBy cloud)', async () => {
    const events: InferenceEvent[] = [];
    const cloud = new Float32Array([9, 9]);
    const slot = new ModelSlot('m', {
      warmupRuns: 0,
      observers: [{ onInference: (e) => events.push(e) }, { onInference: () => { throw new Error('a broken observer'); } }],
      interceptor: {
        intercept: (req) => Promise.resolve(req.requestId === 'ask-cloud' ? { outputs: { y: { dataType: DataType.FLOAT, dims: [1, 2], data: cloud } }, answeredBy: 'cloud' as const } : undefined),
      },
    });
    await slot.swap({ version: '1', variant: 'fp32', createSession: () => createSession(scaleModel(1)) });
    const local = await slot.infer({ x }, { requestId: 'r1' });
    const remote = await slot.infer({ x }, { requestId: 'ask-cloud' });
    expect(local.answeredBy).toBe('local');
    expect(remote.answeredBy).toBe('cloud');
    expect(remote.outputs.y!.data).toBe(cloud);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ model: 'm', version: '1', variant: 'fp32', requestId: 'ask-cloud', answeredBy: 'cloud', error: undefined });
    expect(events[1]!.localOutputs!.y!.data).toEqual(new Float32Array([1, 2]));
    expect(events[1]!.outputs!.y!.data).toBe(cloud);
    expect(events[0]!.latencyMs).toBeGreaterThan(0);
    await slot.close();
  });

  it('refuses new work after close; a swap caught by the close releases its new session instead of serving it', async () => {
    const log: string[] = [];
    const slot = new ModelSlot('m', { warmupRuns: 0 });
    let created!: () => void;
    const creating = new Promise<void>((r) => (created = r));
    const loading = slot.swap({
      version: '1',
      createSession: async () => {
        created();
        return instrumented(await createSession(scaleModel(1)), log, 'v1');
      },
    });
    loading.catch(() => undefined);
    await creating;
    await slot.close();
    await expect(loading).rejects.toMatchObject({ code: 'E_SERVING_CLOSED' });
    expect(log).toEqual(['release v1']);
    expect(slot.loaded).toBe(false);
    await expect(slot.infer({ x })).rejects.toMatchObject({ code: 'E_SERVING_CLOSED' });
    await expect(slot.swap({ version: '2', createSession: () => createSession(scaleModel(2)) })).rejects.toMatchObject({ code: 'E_SERVING_CLOSED' });
  });
});

describe('ModelSlots', () => {
  it('is ready only when every added slot serves a version, and refuses names unusable in a URL', async () => {
    const slots = new ModelSlots({ warmupRuns: 0 });
    expect(slots.allLoaded()).toBe(false);
    const a = slots.add('a');
    slots.add('b');
    expect(slots.add('a')).toBe(a);
    await a.swap({ version: '1', createSession: () => createSession(scaleModel(1)) });
    expect(slots.allLoaded()).toBe(false);
    await slots.get('b')!.swap({ version: '1', createSession: () => createSession(scaleModel(1)) });
    expect(slots.allLoaded()).toBe(true);
    expect(() => slots.add('../etc')).toThrow(/not usable in a URL/);
    await slots.close();
    expect(slots.allLoaded()).toBe(false);
  });
});
