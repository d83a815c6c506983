import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../src/runtime/index.ts';
import { ModelSlot, ShadowMirror, startShadowMirror, type ShadowMirrorOptions } from '../../../src/runtime/serving/index.ts';
import { MNIST_CNN, writeInt8Dynamic, writeReversedClasses } from '../../helpers/shadow-models.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const PIXELS = 28 * 28;

describe('ShadowMirror: a candidate beside the live version of a real ModelSlot (real onnxruntime, MNIST)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let images: Float32Array;
  let int8: string;
  let reversed: string;

  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-shadow-');
    images = (await readNpy('test/fixtures/data/mnist-test/input.npy')).data as Float32Array;
    int8 = await writeInt8Dynamic(MNIST_CNN, join(tmp.dir, 'cnn-int8.onnx'));
    reversed = await writeReversedClasses(MNIST_CNN, join(tmp.dir, 'cnn-reversed.onnx'));
  });

  afterAll(async () => {
    await tmp.cleanup();
  });

  function image(i: number): Record<string, TensorValue> {
    return { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: images.subarray(i * PIXELS, (i + 1) * PIXELS) } };
  }

  /** A live slot serving mnist-cnn whose observer forwards to whichever mirror the test sets. */
  async function liveSlot(): Promise<{ slot: ModelSlot; hub: { mirror?: ShadowMirror } }> {
    const hub: { mirror?: ShadowMirror } = {};
    const slot = new ModelSlot('mnist', { warmupRuns: 1, observers: [{ onInference: (e) => hub.mirror?.onInference(e) }] });
    await slot.swap({ version: 'live', createSession: () => createSession(MNIST_CNN, { threads: 1 }) });
    return { slot, hub };
  }

  async function serve(slot: ModelSlot, count: number): Promise<string[]> {
    const versions: string[] = [];
    for (let i = 0; i < count; i++) versions.push((await slot.infer(image(i))).version);
    return versions;
  }

  it('an int8-dynamic candidate of the same network agrees on top-1 with the live answers over 200 requests', async () => {
    const { slot, hub } = await liveSlot();
    const mirror = await startShadowMirror({ version: 'int8', createSession: () => createSession(int8, { threads: 1 }) }, { share: 1, maxInFlight: 256 });
    hub.mirror = mirror;
    await serve(slot, 200);
    await mirror.idle();
    const stats = mirror.stats();
    await mirror.close();
    await slot.close();
    expect(stats).toMatchObject({ version: 'int8', seen: 200, mirrored: 200, compared: 200, failed: 0, dropped: 0, inFlight: 0, metric: 'top1' });
    expect(stats.agreement).toBeGreaterThanOrEqual(0.98);
    expect(stats.candidateLatencyMs?.p95).toBeGreaterThan(0);
    expect(stats.liveLatencyMs?.p95).toBeGreaterThan(0);
  });

  it('a candidate that reverses the classes is measured as disagreeing while every live answer stays the live model’s', async () => {
    const { slot, hub } = await liveSlot();
    const reference = await createSession(MNIST_CNN, { threads: 1 });
    const mirror = await startShadowMirror({ version: 'reversed', createSession: () => createSession(reversed, { threads: 1 }) }, { share: 1, maxInFlight: 256 });
    hub.mirror = mirror;
    let sameAsReference = 0;
    for (let i = 0; i < 100; i++) {
      const live = await slot.infer(image(i));
      const expected = await reference.run(image(i));
      if (Array.from(live.outputs.logits!.data as Float32Array).every((v, k) => v === (expected.logits!.data as Float32Array)[k])) sameAsReference++;
    }
    await mirror.idle();
    const stats = mirror.stats();
    await mirror.close();
    await reference.release();
    await slot.close();
    expect(sameAsReference).toBe(100);
    expect(stats.compared).toBe(100);
    expect(stats.agreement).toBeLessThan(0.3);
  });

  it('mirrors only the configured share of live requests', async () => {
    const { slot, hub } = await liveSlot();
    let draw = 0;
    // Deterministic draws 0, 0.25, 0.5, 0.75, 0, ...: a share of 0.25 takes exactly every fourth request.
    const options: ShadowMirrorOptions = { share: 0.25, maxInFlight: 64, random: () => (draw++ % 4) / 4 };
    const mirror = await startShadowMirror({ version: 'same', createSession: () => createSession(MNIST_CNN, { threads: 1 }) }, options);
    hub.mirror = mirror;
    await serve(slot, 80);
    await mirror.idle();
    const stats = mirror.stats();
    await mirror.close();
    await slot.close();
    expect(stats).toMatchObject({ seen: 80, mirrored: 20, compared: 20, dropped: 0, agreement: 1 });
  });

  // Fault injection: a real onnxruntime run cannot be made to hang or throw on demand, so
  // these candidates are stub sessions (the live slot is real).
  it('a candidate that hangs never delays a live request; mirrors over the in-flight cap are dropped and counted', async () => {
    const { slot, hub } = await liveSlot();
    let releaseHung!: () => void;
    const hung = new Promise<void>((resolve) => (releaseHung = resolve));
    let releases = 0;
    const session: Pick<Session, 'run' | 'release'> = {
      run: async () => {
        await hung;
        return {};
      },
      release: () => {
        releases++;
        return Promise.resolve();
      },
    };
    const mirror = new ShadowMirror({ version: 'hangs', session }, { share: 1, maxInFlight: 2 });
    hub.mirror = mirror;
    // Would never resolve if a live request waited on its mirror.
    const versions = await serve(slot, 50);
    expect(versions).toEqual(Array.from({ length: 50 }, () => 'live'));
    expect(mirror.stats()).toMatchObject({ seen: 50, inFlight: 2, dropped: 48, mirrored: 0 });

    // A hung mirror keeps its session past the close deadline (released under a running inference is unsafe).
    await mirror.close(20);
    expect(releases).toBe(0);
    releaseHung();
    await mirror.idle();
    // The running mirror finishes; the one queued behind it is skipped, the mirror being closed.
    expect(mirror.stats()).toMatchObject({ inFlight: 0, mirrored: 1 });
    await slot.close();
  });

  it('a candidate that throws on every run fails no live request; its failures are counted and its session released once', async () => {
    const { slot, hub } = await liveSlot();
    let releases = 0;
    const session: Pick<Session, 'run' | 'release'> = {
      run: () => Promise.reject(new EdgevolveError('E_RUNTIME_RUN', 'injected candidate fault')),
      release: () => {
        releases++;
        return Promise.resolve();
      },
    };
    const mirror = new ShadowMirror({ version: 'throws', session }, { share: 1, maxInFlight: 64 });
    hub.mirror = mirror;
    const versions = await serve(slot, 30);
    await mirror.idle();
    await mirror.close();
    await mirror.close();
    await slot.close();
    expect(versions).toHaveLength(30);
    expect(mirror.stats()).toMatchObject({ seen: 30, mirrored: 30, failed: 30, compared: 0, agreement: undefined });
    expect(releases).toBe(1);
  });
});
