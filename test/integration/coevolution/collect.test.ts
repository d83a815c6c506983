import { readdir, readFile } from 'node:fs/promises';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collectSamplesHandler, coevolutionConfigSchema, DEFAULT_FIELD_SHIFT, DeviceCoevolution, isHard, loadFieldData, openPredictor, scoreLogits } from '../../../src/coevolution/index.ts';
import { readReceivedSamples, startSampleReceiver, type SampleReceiver } from '../../../src/coevolution/cloud/index.ts';
import { DataType } from '../../../src/onnx/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const COUNT = 100;
/** A [1,1,28,28] float32 NPY (128-byte header + 3,136) plus a [1,10] one (128 + 40). */
const SAMPLE_BYTES = 3264 + 168;
let inputs: Float32Array;
let logits: Float32Array;

beforeAll(async () => {
  const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
  inputs = field.stream.inputs.slice(0, COUNT * 784);
  const student = await openPredictor('test/fixtures/models/mnist-student.onnx', { threads: 1 });
  logits = await student.logits(inputs, COUNT);
  await student.release();
});

describe('collect-samples on DeviceCoevolution (real sample store and HTTP receiver)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let receiver: SampleReceiver;
  let device: DeviceCoevolution | undefined;
  const running = new AbortController();

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-collect-');
    receiver = await startSampleReceiver({ dir: `${tmp.dir}/cloud`, host: '127.0.0.1', port: 0, maxBodyBytes: 1e8 });
  });
  afterEach(async () => {
    running.abort();
    await device?.stop();
    await receiver.close();
    await tmp.cleanup();
  });

  async function start(mining: Record<string, unknown>): Promise<DeviceCoevolution> {
    const config = coevolutionConfigSchema.parse({
      enabled: true,
      // maxPerMinute 1: the regular miner keeps almost nothing, so what is stored is the collection's.
      mining: { enabled: true, defaultRule: { kind: 'classification', maxProbabilityBelow: 0.8 }, maxPerMinute: 1, ...mining },
      upload: { target: 'http', url: receiver.url, intervalS: 3600 },
      drift: { enabled: false },
      collect: { maxWaitS: 60 },
    });
    device = new DeviceCoevolution(config, { stateDir: tmp.dir, deviceId: 'dev-1', clock: systemClock, driftSink: { report: () => {}, event: () => {} }, onError: () => {} });
    await device.start(running.signal);
    return device;
  }

  function serve(d: DeviceCoevolution, from: number, to: number): void {
    const [observer] = d.hooks().observers;
    for (let i = from; i < to; i++) {
      observer!.onInference({
        model: 'student', version: '1', requestId: `r${i}`,
        inputs: { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: inputs.slice(i * 784, (i + 1) * 784) } },
        localOutputs: { logits: { dataType: DataType.FLOAT, dims: [1, 10], data: logits.slice(i * 10, (i + 1) * 10) } },
      });
    }
  }

  it('low-confidence keeps the rows the rule calls hard, beyond the per-minute cap, up to count, and uploads them', async () => {
    const d = await start({});
    const hardRows = Array.from({ length: COUNT }, (_, i) => isHard(scoreLogits(logits, i, 10), { maxProbabilityBelow: 0.8 })).filter(Boolean).length;
    expect(hardRows).toBeGreaterThan(12);
    const report = d.collect({ count: 10, criterion: 'low-confidence' }, new AbortController().signal);
    serve(d, 0, COUNT);
    const result = await report;
    expect(result).toMatchObject({ criterion: 'low-confidence', requested: 10, collected: 10, bytes: 10 * SAMPLE_BYTES, end: 'count', target: 'http', destination: receiver.url, pending: 0 });
    // The regular miner's one token kept one more hard row.
    expect(result.uploaded.samples).toBe(11);
    const received = await readReceivedSamples(`${tmp.dir}/cloud`);
    expect(received.count).toBe(11);
  }, 30_000);

  it('ends at maxBytes, and at the disk quota with the store\'s reason', async () => {
    const d = await start({});
    const bytes = d.collect({ count: 50, criterion: 'random', maxBytes: 3 * SAMPLE_BYTES + 10 }, new AbortController().signal);
    serve(d, 0, 20);
    expect(await bytes).toMatchObject({ collected: 3, end: 'max-bytes' });
    await d.stop();
    await tmp.cleanup();
    tmp = await makeTempDir('edgevolve-collect-');
    const q = await start({ quotaBytes: 4 * SAMPLE_BYTES });
    const quota = q.collect({ count: 50, criterion: 'random' }, new AbortController().signal);
    serve(q, 0, 20);
    expect(await quota).toMatchObject({ end: 'quota' });
    expect((await quota).collected).toBeLessThanOrEqual(4);
  }, 30_000);

  it('high-entropy keeps only rows above the entropy bound; a second collection at once is refused', async () => {
    const d = await start({});
    const signal = new AbortController().signal;
    const report = d.collect({ count: 3, criterion: 'high-entropy' }, signal);
    await expect(d.collect({ count: 1, criterion: 'random' }, signal)).rejects.toMatchObject({ code: 'E_COEVO_INVALID' });
    serve(d, 0, COUNT);
    const result = await report;
    expect(result).toMatchObject({ collected: 3, end: 'count' });
    // What the cloud received: the 3 collected rows (entropy > 0.5) and the regular miner's one hard row.
    const entropies: number[] = [];
    for (const name of await readdir(`${tmp.dir}/cloud/dev-1`)) {
      const batch = JSON.parse(await readFile(`${tmp.dir}/cloud/dev-1/${name}`, 'utf8')) as { samples: { scores: { normalizedEntropy: number } }[] };
      entropies.push(...batch.samples.map((x) => x.scores.normalizedEntropy));
    }
    expect(result.uploaded.samples).toBe(4);
    expect(entropies.filter((e) => e > 0.5).length).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it('the command handler fails with E_COEVO_DISABLED when co-evolution or mining is off', async () => {
    const handler = collectSamplesHandler(undefined);
    const context = { id: 'c1', type: 'collect-samples' as const, issuedAt: 0, signedBy: undefined, signal: new AbortController().signal };
    await expect(handler({ count: 1, criterion: 'random' }, context)).rejects.toMatchObject({ code: 'E_COEVO_DISABLED' });
    const d = await start({ enabled: false });
    await expect(d.collect({ count: 1, criterion: 'random' }, context.signal)).rejects.toMatchObject({ code: 'E_COEVO_DISABLED' });
  });
});
