/**
 * Models whose weights live in external-data files: pushed to a real OCI layout with
 * the external-data layer, pulled into a real store, and served by the daemon's two
 * servings (the KServe slots and the in-process sessions) from the verified in-memory
 * layers, with the same outputs as the single-file model.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InProcessServing, SlotServing, servedModel } from '../../../src/daemon/index.ts';
import { systemHost } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { OciLayout, pullModel, pushArtifact } from '../../../src/registry/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { openStore, parseDigest, type OpenedStore } from '../../../src/store/index.ts';
import { writeExternalDataModel } from '../../helpers/external-data-model.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { MLP, PROFILE, testConfig } from './fixtures.ts';


/** Four distinct MNIST-shaped inputs in one batch. */
function feeds(): Record<string, TensorValue> {
  const data = new Float32Array(4 * 784);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 255;
  return { input: { dataType: DataType.FLOAT, dims: [4, 1, 28, 28], data } };
}

describe('the daemon serves models with external data from the verified in-memory layers', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let store: OpenedStore;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-extdata-');
    store = await openStore(join(tmp.dir, 'state'), testConfig(join(tmp.dir, 'state')).store, systemHost());
    const layout = new OciLayout(join(tmp.dir, 'oci'));
    await layout.init();
    const ext = await writeExternalDataModel(tmp.dir);
    const pushed = await pushArtifact(layout, { name: 'mlp', version: '1.0.0', variants: [{ name: 'ext', modelPath: ext }, { name: 'single', modelPath: MLP }] }, 'v1');
    expect(pushed.variants[0]?.layers.map((l) => l.title)).toEqual(['weights/mlp.bin']);
    const deps = {
      blobs: store.blobs,
      repository: store.repository,
      policy: { requireSignature: false, publicKeys: [], allowSignedDowngrade: false },
      profile: PROFILE,
      clock: systemHost(),
      random: systemHost(),
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    };
    for (const variant of ['ext', 'single']) await pullModel(deps, { source: layout, reference: 'v1', fallbackName: 'mlp', activate: false, budgets: { variant } });
  });
  afterEach(async () => {
    store.close();
    await tmp.cleanup();
  });

  const version = (variant: string) => {
    const record = store.repository.versions('mlp').find((v) => v.variant === variant);
    if (record === undefined) throw new Error(`variant ${variant} was not pulled`);
    return servedModel(record, (d) => store.blobs.path(parseDigest(d)));
  };

  it('the KServe slots and the in-process sessions give the external-data variant the same outputs as the single-file one', async () => {
    const holder: { slots?: ModelSlots } = {};
    const slotServing = new SlotServing(() => holder.slots as ModelSlots, store, { threads: 1 });
    holder.slots = new ModelSlots({ warmupRuns: 1, observers: [slotServing.observer], logger: silentLogger() });
    const inProcess = new InProcessServing({ threads: 1 }, store);
    try {
      await slotServing.load(version('ext'));
      const fromSlot = (await holder.slots.get('mlp')!.infer(feeds())).outputs;
      await inProcess.load(version('ext'));
      const fromSession = await inProcess.infer('mlp', feeds());
      await inProcess.load(version('single'));
      const reference = await inProcess.infer('mlp', feeds());

      const logits = (out: Readonly<Record<string, TensorValue>>): number[] => Array.from(Object.values(out)[0]!.data as Float32Array);
      expect(logits(reference)).toHaveLength(40);
      expect(logits(fromSlot)).toEqual(logits(reference));
      expect(logits(fromSession)).toEqual(logits(reference));
    } finally {
      await slotServing.close();
      await inProcess.close();
    }
  });

  it('in shadow mode an external-data candidate is mirrored beside the single-file version, agrees on every request, and its warm session is promoted', async () => {
    const holder: { slots?: ModelSlots } = {};
    const serving = new SlotServing(() => holder.slots as ModelSlots, store, { threads: 1 });
    holder.slots = new ModelSlots({ warmupRuns: 1, observers: [serving.observer], logger: silentLogger() });
    try {
      await serving.load(version('single'));
      const shadow = await serving.startShadow(version('ext'), { share: 1, maxInFlight: 64, worker: false });
      for (let i = 0; i < 20; i++) await holder.slots.get('mlp')!.infer(feeds());
      for (let i = 0; i < 200 && shadow.stats().mirrored < 20; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(shadow.stats()).toMatchObject({ mirrored: 20, failed: 0, compared: 20, agreement: 1 });
      expect(await shadow.promote()).toEqual({ reused: true });
      const served = await holder.slots.get('mlp')!.infer(feeds());
      expect(served.variant).toBe('ext');
      expect(serving.loaded().map((m) => m.variant)).toEqual(['ext']);
    } finally {
      await serving.close();
    }
  });

  it('without the store, the in-process serving cannot find the weights under the blob digest and refuses with a typed error', async () => {
    const inProcess = new InProcessServing({ threads: 1 });
    try {
      await expect(inProcess.load(version('ext'))).rejects.toMatchObject({ code: 'E_RUNTIME_SESSION_CREATE' });
      expect(inProcess.loaded()).toEqual([]);
    } finally {
      await inProcess.close();
    }
  });
});
