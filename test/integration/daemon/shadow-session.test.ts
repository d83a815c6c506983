import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { SlotServing, type ModelServing } from '../../../src/daemon/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import type * as runtime from '../../../src/runtime/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import type { OpenedStore } from '../../../src/store/index.ts';
import { MNIST_CNN, writeInt8Dynamic } from '../../helpers/shadow-models.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { deployRig, publish, testConfig, type DeployRig } from './fixtures.ts';

// Not a fake: the real createSession, wrapped so the test can count the onnxruntime sessions the daemon creates.
vi.mock('../../../src/runtime/index.ts', async (importOriginal) => {
  const real = await importOriginal<typeof runtime>();
  return { ...real, createSession: vi.fn(real.createSession) };
});

const PIXELS = 28 * 28;
const SHADOW = { enabled: true, share: 1, minRequests: 40, maxDurationMs: 60_000, minAgreement: 0.97, maxLatencyRatio: 20, maxInFlight: 4, checkIntervalMs: 10 };

describe('a promoted shadow serves its trial with the warm shadow session (real store, KServe slots, onnxruntime)', () => {
  let models: { dir: string; cleanup: () => Promise<void> };
  let images: Float32Array;
  let int8: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig<ModelServing>;
  let slots: ModelSlots;

  beforeAll(async () => {
    models = await makeTempDir('edgevolve-shadow-session-models-');
    images = (await readNpy('test/fixtures/data/mnist-test/input.npy')).data as Float32Array;
    int8 = await writeInt8Dynamic(MNIST_CNN, join(models.dir, 'cnn-int8.onnx'));
  });

  afterAll(async () => {
    await models.cleanup();
  });

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-shadow-session-');
  });

  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  async function start(shadow: Record<string, unknown>): Promise<void> {
    const stateDir = join(tmp.dir, 'state');
    const ref = await publish(join(tmp.dir, 'oci'), '1.0.0', [{ name: 'fp32', modelPath: MNIST_CNN }]);
    const config = testConfig(stateDir, { daemon: { models: [{ name: 'm', ref }] }, deploy: { shadow: { ...SHADOW, ...shadow } } });
    rig = await deployRig(stateDir, config, (store: OpenedStore) => {
      const holder: { slots?: ModelSlots } = {};
      const serving = new SlotServing(() => holder.slots as ModelSlots, store, { threads: 1 });
      holder.slots = new ModelSlots({ warmupRuns: 1, observers: [serving.observer] });
      slots = holder.slots;
      return serving;
    });
    const first = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(first.action === 'deployed' && first.outcome.outcome).toBe('committed');
    rig.config = testConfig(stateDir, { daemon: { models: [{ name: 'm', ref: await publish(join(tmp.dir, 'oci'), '2.0.0', [{ name: 'fp32', modelPath: int8 }]) }] }, deploy: { shadow: { ...SHADOW, ...shadow } } });
  }

  /** Deploys 2.0.0 under live traffic; resolves with the sessions created meanwhile and the versions that answered. */
  async function deployUnderTraffic(): Promise<{ created: number; versions: string[] }> {
    const before = vi.mocked(createSession).mock.calls.length;
    const versions: string[] = [];
    let done = false;
    const loop = (async () => {
      for (let i = 0; !done; i++) {
        const k = i % 2000;
        const feeds: Record<string, TensorValue> = { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.subarray(k * PIXELS, (k + 1) * PIXELS) } };
        versions.push((await slots.get('m')!.infer(feeds)).version);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      const result = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
      expect(result.action === 'deployed' && result.outcome.outcome, JSON.stringify(result)).toBe('committed');
    } finally {
      done = true;
      await loop;
    }
    return { created: vi.mocked(createSession).mock.calls.length - before, versions };
  }

  it('in-process shadow: one session for 2.0.0 from shadow to commit, and the live answers switch from 1.0.0 to 2.0.0 without a gap', async () => {
    await start({});
    const { created, versions } = await deployUnderTraffic();
    // The shadow's session only: the trial swapped it in instead of creating and warming a second copy.
    expect(created).toBe(1);
    expect(rig.events.ofKind('shadow-promoted')).toHaveLength(1);
    expect(rig.store.repository.active('m')?.version).toBe('2.0.0');
    expect(slots.get('m')!.active?.version).toBe('2.0.0');
    const firstNew = versions.indexOf('2.0.0');
    expect(firstNew).toBeGreaterThan(0);
    expect(new Set(versions.slice(0, firstNew))).toEqual(new Set(['1.0.0']));
    expect(new Set(versions.slice(firstNew))).toEqual(new Set(['2.0.0']));
  });

  it('over the in-process serving too (server.enabled: false): one session for 2.0.0 from shadow to commit', async () => {
    const stateDir = join(tmp.dir, 'state');
    const layout = join(tmp.dir, 'oci');
    const config = (ref: string): DeployRig['config'] => testConfig(stateDir, { daemon: { models: [{ name: 'm', ref }] }, deploy: { shadow: { ...SHADOW, maxDurationMs: 300 } } });
    const inProcess = await deployRig(stateDir, config(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: MNIST_CNN }])));
    rig = inProcess;
    await inProcess.reconciler.reconcile(inProcess.config.daemon.models[0]!, 'test');
    inProcess.config = config(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: int8 }]));
    const before = vi.mocked(createSession).mock.calls.length;
    // No traffic: onNoTraffic (promote) decides after 300 ms; the promotion path is the same.
    const result = await inProcess.reconciler.reconcile(inProcess.config.daemon.models[0]!, 'test');
    expect(result.action === 'deployed' && result.outcome.outcome).toBe('committed');
    expect(inProcess.events.ofKind('shadow-promoted')[0]?.fields).toMatchObject({ version: '2.0.0', evidence: false });
    expect(vi.mocked(createSession).mock.calls.length - before).toBe(1);
    expect(inProcess.serving.loaded().map((m) => m.version)).toEqual(['2.0.0']);
  });

  it('a shadow in a worker thread while the live sessions run in-process cannot serve as it is: released, and the trial loads the candidate anew', async () => {
    await start({ worker: true });
    const { created } = await deployUnderTraffic();
    expect(created).toBe(2);
    expect(vi.mocked(createSession).mock.calls.at(-2)?.[1]).toMatchObject({ workers: 1 });
    expect(vi.mocked(createSession).mock.calls.at(-1)?.[1]).not.toMatchObject({ workers: 1 });
    expect(slots.get('m')!.active?.version).toBe('2.0.0');
  });
});
