/**
 * A weight-only int8 variant (int8-static with lowFanIn 'weight-only': int8 weights behind
 * DequantizeLinear, float compute) of mnist-cnn, built by the real compressor, pushed to a
 * real OCI layout, pulled into a real store and deployed through the real gate on the
 * in-process serving over the store: its weights are materialized to float at load
 * (src/daemon/session-bytes.ts), and it answers as the materialized model does.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compressModel, materializeWeightOnly } from '../../../src/compress/index.ts';
import { InProcessServing, type DesiredModel } from '../../../src/daemon/index.ts';
import { sessionModelBytes } from '../../../src/daemon/session-bytes.ts';
import { openDataset } from '../../../src/data/index.ts';
import { decodeModel, encodeModel, readModelFile, type TensorValue } from '../../../src/onnx/index.ts';
import { calibrationFrom } from '../../../src/planner/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN, deployRig, publish, testConfig, type DeployRig } from './fixtures.ts';

const MNIST = 'test/fixtures/data/mnist-test';

describe('a weight-only int8 variant deploys and serves with its weights materialized at load', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-weight-only-');
  });
  afterEach(async () => {
    await rig?.close();
    await tmp.cleanup();
  });

  it('the store keeps the small int8 file; the serving session gets float weights and answers exactly as the materialized model', async () => {
    const { model, bytes: fp32 } = await readModelFile(CNN);
    const dataset = await openDataset(MNIST);
    const reference = await createSession(fp32, { threads: 1 });
    let weightOnly: Uint8Array;
    let digit: Record<string, TensorValue> = {};
    try {
      // Every Conv/Gemm under the fan-in threshold: all of them weight-only.
      const result = await compressModel(model, 'int8-static', { minFanIn: 1_000_000, lowFanIn: 'weight-only' }, { calibration: calibrationFrom(dataset, reference.inputs, 32) }, fp32.byteLength);
      weightOnly = result.bytes;
      for await (const batch of dataset.batches(1)) {
        digit = batch.feeds;
        break;
      }
    } finally {
      await reference.release();
      await dataset.close();
    }
    expect(weightOnly.byteLength).toBeLessThan(fp32.byteLength * 0.4);
    /** DequantizeLinear of an initializer: a weight stored in int8 (activation Q/DQ pairs read node outputs). */
    const weightDequantizes = (b: Uint8Array): number => {
      const graph = decodeModel(b).graph;
      const constants = new Set((graph?.initializer ?? []).map((t) => t.name));
      return (graph?.node ?? []).filter((n) => n.opType === 'DequantizeLinear' && constants.has(n.input?.[0])).length;
    };
    // conv1, conv2 and fc1.
    expect(weightDequantizes(weightOnly)).toBe(3);

    // The seam: what materializeWeightOnly turns to float (conv1 and fc1; conv2 reads a propagated int8 pair through
    // MaxPool, an int8 unit it leaves) becomes float initializers; a float model is handed over as it is (the same array).
    const loaded = sessionModelBytes(weightOnly);
    const { materialized } = materializeWeightOnly(decodeModel(weightOnly));
    expect(materialized.length).toBeGreaterThan(0);
    expect(weightDequantizes(loaded)).toBe(3 - materialized.length);
    expect(sessionModelBytes(fp32)).toBe(fp32);

    const woPath = join(tmp.dir, 'cnn-wo.onnx');
    await writeFile(woPath, weightOnly);
    const ref = await publish(join(tmp.dir, 'oci'), '1.0.0', [
      { name: 'fp32', modelPath: CNN },
      { name: 'int8-wo', modelPath: woPath, precision: 'int8' },
    ]);
    const desired: DesiredModel = { name: 'm', ref, budgets: { variant: 'int8-wo' } };
    const stateDir = join(tmp.dir, 'state');
    rig = await deployRig(stateDir, testConfig(stateDir, { daemon: { models: [desired] } }), (store) => new InProcessServing({ threads: 1 }, store));
    expect(await rig.reconciler.reconcile(desired, 'initial')).toMatchObject({ action: 'deployed', outcome: { outcome: 'committed' } });
    const active = rig.store.repository.active('m')!;
    expect(active.variant).toBe('int8-wo');
    // What the store holds is the int8 file as pushed.
    expect(rig.store.repository.versions('m').find((v) => v.variant === 'int8-wo')?.modelDigest).toBe(active.modelDigest);

    const served = await rig.serving.infer('m', digit);
    const direct = await createSession(encodeModel(materializeWeightOnly(decodeModel(weightOnly)).model), { threads: 1 });
    try {
      const expected = await direct.run(digit);
      const name = Object.keys(expected)[0]!;
      expect(Array.from(served[name]!.data as Float32Array)).toEqual(Array.from(expected[name]!.data as Float32Array));
    } finally {
      await direct.release();
    }
  }, 120_000);
});
