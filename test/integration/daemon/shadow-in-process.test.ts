import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { MNIST_CNN, writeInt8Dynamic, writeReversedClasses } from '../../helpers/shadow-models.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { InProcessServing } from '../../../src/daemon/index.ts';
import { deployRig, publish, testConfig, type DeployRig } from './fixtures.ts';

const PIXELS = 28 * 28;
const SHADOW = { enabled: true, share: 1, minRequests: 60, maxDurationMs: 60_000, minAgreement: 0.97, maxLatencyRatio: 20, maxInFlight: 4, checkIntervalMs: 10 };

describe('shadow mode over the in-process serving (server.enabled: false; real store, onnxruntime, MNIST traffic through infer)', () => {
  let models: { dir: string; cleanup: () => Promise<void> };
  let images: Float32Array;
  let int8: string;
  let reversed: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;

  beforeAll(async () => {
    models = await makeTempDir('edgevolve-shadow-inproc-models-');
    images = (await readNpy('test/fixtures/data/mnist-test/input.npy')).data as Float32Array;
    int8 = await writeInt8Dynamic(MNIST_CNN, join(models.dir, 'cnn-int8.onnx'));
    reversed = await writeReversedClasses(MNIST_CNN, join(models.dir, 'cnn-reversed.onnx'));
  });

  afterAll(async () => {
    await models.cleanup();
  });

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-shadow-inproc-');
  });

  afterEach(async () => {
    await rig.close();
    await tmp.cleanup();
  });

  /**
   * 1.0.0 (mnist-cnn) committed on the in-process serving, then 2.0.0 (`candidate`) desired.
   * `liveTraffic: false` is the serving as src/main.ts builds it without the KServe API.
   */
  async function start(candidate: string, options: { shadow?: Record<string, unknown>; liveTraffic?: boolean } = {}): Promise<void> {
    const stateDir = join(tmp.dir, 'state');
    const layout = join(tmp.dir, 'oci');
    const config = (ref: string): DeployRig['config'] => testConfig(stateDir, { daemon: { models: [{ name: 'm', ref }] }, deploy: { shadow: { ...SHADOW, ...options.shadow } } });
    const initial = config(await publish(layout, '1.0.0', [{ name: 'fp32', modelPath: MNIST_CNN }]));
    rig = options.liveTraffic === false ? await deployRig(stateDir, initial, (store) => new InProcessServing({ threads: 1 }, store, { liveTraffic: false })) : await deployRig(stateDir, initial);
    const first = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(first.action === 'deployed' && first.outcome.outcome).toBe('committed');
    rig.config = config(await publish(layout, '2.0.0', [{ name: 'fp32', modelPath: candidate }]));
  }

  /** Reconciles under live `infer` traffic; returns the result and the top-1 class of each live answer with the version serving then. */
  async function reconcileUnderTraffic(): Promise<{ outcome: string | false; answers: { version: string; top1: number }[] }> {
    const answers: { version: string; top1: number }[] = [];
    let done = false;
    const loop = (async () => {
      for (let i = 0; !done; i++) {
        const k = i % 2000;
        const feeds: Record<string, TensorValue> = { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.subarray(k * PIXELS, (k + 1) * PIXELS) } };
        const version = rig.serving.loaded()[0]?.version ?? '?';
        const logits = (await rig.serving.infer('m', feeds)).logits!.data as Float32Array;
        answers.push({ version, top1: logits.indexOf(Math.max(...logits)) });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      const result = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
      return { outcome: result.action === 'deployed' && result.outcome.outcome, answers };
    } finally {
      done = true;
      await loop;
    }
  }

  it('an int8-dynamic candidate is shadowed on the live infer calls, promoted with evidence, and committed', async () => {
    await start(int8);
    const { outcome } = await reconcileUnderTraffic();
    expect(outcome).toBe('committed');
    const [promoted] = rig.events.ofKind('shadow-promoted');
    expect(promoted?.fields).toMatchObject({ model: 'm', version: '2.0.0', live: '1.0.0/fp32', evidence: true, metric: 'top1' });
    expect(promoted!.fields.mirrored).toBeGreaterThanOrEqual(60);
    expect(promoted!.fields.agreement).toBeGreaterThanOrEqual(0.97);
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['2.0.0']);
  });

  it('a candidate with its classes reversed is rejected on its measured agreement; every live answer came from 1.0.0', async () => {
    await start(reversed);
    const { outcome, answers } = await reconcileUnderTraffic();
    expect(outcome).toBe('rejected');
    expect(answers.length).toBeGreaterThanOrEqual(60);
    expect(new Set(answers.map((a) => a.version))).toEqual(new Set(['1.0.0']));
    const [rejected] = rig.events.ofKind('shadow-rejected');
    expect(rejected?.fields).toMatchObject({ version: '2.0.0', evidence: true });
    expect(rejected!.fields.agreement).toBeLessThan(0.3);
    expect(rig.store.repository.active('m')?.version).toBe('1.0.0');
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['1.0.0']);
  });

  it('without live traffic to mirror (no KServe API) the shadow is skipped at once, not waited out: onNoTraffic promote goes to the trial, reject keeps 1.0.0', async () => {
    // A ten-minute window: waiting it out would exceed the test's timeout, so passing proves the skip.
    await start(int8, { liveTraffic: false, shadow: { maxDurationMs: 600_000, checkIntervalMs: 600_000 } });
    const promoted = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(promoted.action === 'deployed' && promoted.outcome.outcome).toBe('committed');
    expect(rig.events.ofKind('shadow-started')).toHaveLength(0);
    expect(rig.events.ofKind('shadow-skipped').map((e) => e.fields)).toEqual([
      {
        model: 'm',
        version: '2.0.0',
        variant: 'fp32',
        live: '1.0.0/fp32',
        action: 'trial',
        reason: 'no shadow: the in-process serving has no live requests to mirror (the KServe API is off: server.enabled is false)',
      },
    ]);
    // The trial gate judged it on probes, as without shadow mode.
    expect(rig.events.ofKind('deploy-committed').at(-1)?.fields).toMatchObject({ version: '2.0.0' });
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['2.0.0']);
    expect((await rig.state.get('m')).shadow).toBeNull();

    const stateDir = join(tmp.dir, 'state');
    rig.config = testConfig(stateDir, {
      daemon: { models: [{ name: 'm', ref: await publish(join(tmp.dir, 'oci'), '3.0.0', [{ name: 'fp32', modelPath: int8 }]) }] },
      deploy: { shadow: { ...SHADOW, maxDurationMs: 600_000, checkIntervalMs: 600_000, onNoTraffic: 'reject' } },
    });
    const rejected = await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test');
    expect(rejected.action === 'deployed' && rejected.outcome.outcome).toBe('rejected');
    expect(rig.events.ofKind('shadow-skipped').at(-1)?.fields).toMatchObject({ version: '3.0.0', action: 'reject' });
    expect(rig.events.ofKind('shadow-rejected').at(-1)?.fields).toMatchObject({ version: '3.0.0', evidence: false, mirrored: 0, reason: expect.stringMatching(/; rejected without shadow evidence \(onNoTraffic: reject\)$/) as unknown });
    expect(rig.store.repository.active('m')?.version).toBe('2.0.0');
    expect(rig.serving.loaded().map((m) => m.version)).toEqual(['2.0.0']);
    // Remembered as failed like any rejected candidate: reconcile does not try it again.
    expect((await rig.reconciler.reconcile(rig.config.daemon.models[0]!, 'test')).action).toBe('skipped-failed');
  });
});
