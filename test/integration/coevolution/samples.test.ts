import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_FIELD_SHIFT, loadFieldData, openPredictor, scoreLogits, type FieldData } from '../../../src/coevolution/index.ts';
import { HardSampleMiner, SampleStore, httpTransport, registryTransport, sampleBatchTag, uploadPending, type MinerOptions } from '../../../src/coevolution/samples/index.ts';
import { readReceivedSamples, startSampleReceiver } from '../../../src/coevolution/cloud/sample-receiver.ts';
import { parseNpy } from '../../../src/data/npy.ts';
import { DataType } from '../../../src/onnx/index.ts';
import { RegistryClient } from '../../../src/registry/index.ts';
import { systemClock, systemRandom } from '../../../src/host/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { freePort } from '../../helpers/free-port.ts';
import { requireRegistry, startRegistry } from '../../helpers/registry-server.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';

const ROOMY = { maxPerDay: 100_000, maxBytesPerDay: 1e9, quotaBytes: 1e9 };
const MINE: MinerOptions = { enabled: true, rules: { student: { kind: 'classification', maxProbabilityBelow: 0.8 } }, defaultRule: undefined, maxPerMinute: 1e9 };
/** A [1,1,28,28] float32 NPY (128-byte header + 3,136) plus a [1,10] one (128 + 40). */
const SAMPLE_BYTES = 3264 + 168;
const DAY0 = Date.UTC(2026, 10, 28, 12);

let field: FieldData;
let logits: Float32Array;
const COUNT = 100;

beforeAll(async () => {
  field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
  const student = await openPredictor('test/fixtures/models/mnist-student.onnx', { threads: 1 });
  logits = await student.logits(field.stream.inputs.subarray(0, COUNT * 784), COUNT);
  await student.release();
});

/** Serves the first COUNT field images in batches of 10 to the miner, as the serving path's observer would. */
function serve(miner: HardSampleMiner): void {
  for (let start = 0; start < COUNT; start += 10) {
    miner.onInference({
      model: 'student',
      version: '1.0.0',
      inputs: { input: { dataType: DataType.FLOAT, dims: [10, 1, 28, 28], data: field.stream.inputs.slice(start * 784, (start + 10) * 784) } },
      localOutputs: { logits: { dataType: DataType.FLOAT, dims: [10, 10], data: logits.slice(start * 10, (start + 10) * 10) } },
    });
  }
}

function expectedHard(): number[] {
  const hard: number[] = [];
  for (let i = 0; i < COUNT; i++) if (scoreLogits(logits, i, 10).maxProbability < 0.8) hard.push(i);
  return hard;
}

describe('hard-sample mining into the sample store (real student outputs, real SQLite)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-samples-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('keeps exactly the rows below the max-probability threshold, each input as an NPY equal to the served row', async () => {
    const store = await SampleStore.open(tmp.dir, ROOMY);
    const miner = new HardSampleMiner(MINE, store, { now: () => DAY0 });
    serve(miner);
    await miner.drain();
    const hard = expectedHard();
    expect(hard.length).toBeGreaterThan(10);
    expect(store.count()).toBe(hard.length);
    expect(miner.stats).toMatchObject({ seen: COUNT, hard: hard.length, kept: hard.length, failed: 0 });
    const batch = store.nextBatch(1000, () => 'b1', DAY0)!;
    const first = batch.samples[0]!;
    const files = await store.readFiles(first.id);
    const npy = parseNpy(files.input);
    expect(npy.shape).toEqual([1, 1, 28, 28]);
    expect(Array.from(npy.data as Float32Array)).toEqual(Array.from(field.stream.inputs.subarray(hard[0]! * 784, (hard[0]! + 1) * 784)));
    expect(first.scores.maxProbability).toBeLessThan(0.8);
    expect(first.bytes).toBe(SAMPLE_BYTES);
    store.close();
  });

  it('keeps nothing unless mining is switched on (opt-in)', async () => {
    const store = await SampleStore.open(tmp.dir, ROOMY);
    const miner = new HardSampleMiner({ ...MINE, enabled: false }, store, { now: () => DAY0 });
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(0);
    store.close();
  });

  it('stops at the per-day count cap and starts again the next UTC day', async () => {
    let now = DAY0;
    const store = await SampleStore.open(tmp.dir, { ...ROOMY, maxPerDay: 3 });
    const miner = new HardSampleMiner(MINE, store, { now: () => now });
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(3);
    expect(store.counters()['dropped.day-count']).toBe(expectedHard().length - 3);
    now += 24 * 3600 * 1000;
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(6);
    store.close();
  });

  it('respects the per-day byte cap and the disk quota', async () => {
    const store = await SampleStore.open(tmp.dir, { ...ROOMY, maxBytesPerDay: 3 * SAMPLE_BYTES });
    const miner = new HardSampleMiner(MINE, store, { now: () => DAY0 });
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(3);
    expect(store.counters()['dropped.day-bytes']).toBeGreaterThan(0);
    store.close();
    const quota = await SampleStore.open(path.join(tmp.dir, 'q'), { ...ROOMY, quotaBytes: 2 * SAMPLE_BYTES });
    const miner2 = new HardSampleMiner(MINE, quota, { now: () => DAY0 });
    serve(miner2);
    await miner2.drain();
    expect(quota.count()).toBe(2);
    expect(quota.bytesOnDisk()).toBeLessThanOrEqual(2 * SAMPLE_BYTES);
    expect(quota.counters()['dropped.quota']).toBeGreaterThan(0);
    quota.close();
  });

  it('caps the sampling rate per minute with a token bucket (injected clock)', async () => {
    let now = DAY0;
    const store = await SampleStore.open(tmp.dir, ROOMY);
    const miner = new HardSampleMiner({ ...MINE, maxPerMinute: 5 }, store, { now: () => now });
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(5);
    expect(miner.stats.droppedRate).toBe(expectedHard().length - 5);
    now += 60_000;
    serve(miner);
    await miner.drain();
    expect(store.count()).toBe(10);
    store.close();
  });

  it('removes files without an index row on open, and rows whose files are gone', async () => {
    const store = await SampleStore.open(tmp.dir, ROOMY);
    const miner = new HardSampleMiner(MINE, store, { now: () => DAY0 });
    serve(miner);
    await miner.drain();
    const before = store.count();
    store.close();
    writeFileSync(path.join(tmp.dir, 'files', 'pending-crash.input.npy'), 'partial');
    writeFileSync(path.join(tmp.dir, 'files', '99999.input.npy'), 'stray');
    const { rmSync } = await import('node:fs');
    rmSync(path.join(tmp.dir, 'files', '1.input.npy'));
    const reopened = await SampleStore.open(tmp.dir, ROOMY);
    expect(reopened.count()).toBe(before - 1);
    const names = readdirSync(path.join(tmp.dir, 'files'));
    expect(names.filter((n) => n.startsWith('pending-') || n.startsWith('99999.') || n.startsWith('1.'))).toEqual([]);
    reopened.close();
  });
});

describe('upload of hard samples (real HTTP receiver, real registry)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-upload-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  async function minedStore(): Promise<SampleStore> {
    const store = await SampleStore.open(path.join(tmp.dir, 'device'), ROOMY);
    const miner = new HardSampleMiner(MINE, store, { now: () => DAY0 });
    serve(miner);
    await miner.drain();
    return store;
  }

  it('uploads in batches to the HTTP receiver and deletes only what the cloud confirmed', async () => {
    const store = await minedStore();
    const total = store.count();
    const receiver = await startSampleReceiver({ dir: path.join(tmp.dir, 'cloud'), host: '127.0.0.1', port: 0, maxBodyBytes: 10_000_000 });
    try {
      const report = await uploadPending(store, httpTransport(receiver.url, { timeoutMs: 5000 }), 'dev-1', 8, () => DAY0);
      expect(report.samples).toBe(total);
      expect(report.batches).toBe(Math.ceil(total / 8));
      expect(store.count()).toBe(0);
      expect(readdirSync(path.join(tmp.dir, 'device', 'files'))).toEqual([]);
      const received = await readReceivedSamples(path.join(tmp.dir, 'cloud'));
      expect(received.count).toBe(total);
      expect(received.sampleShape).toEqual([1, 28, 28]);
    } finally {
      await receiver.close();
      store.close();
    }
  });

  it('keeps the samples when the cloud is unreachable and resumes the same batch id later, stored once', async () => {
    const store = await minedStore();
    const total = store.count();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1/samples`;
    let failure: unknown;
    await uploadPending(store, httpTransport(url, { timeoutMs: 2000 }), 'dev-1', 1000, () => DAY0).catch((err: unknown) => (failure = err));
    expect(isEdgevolveError(failure) && failure.code).toBe('E_COEVO_UPLOAD');
    expect(store.count()).toBe(total);
    const receiver = await startSampleReceiver({ dir: path.join(tmp.dir, 'cloud'), host: '127.0.0.1', port, maxBodyBytes: 10_000_000 });
    try {
      const report = await uploadPending(store, httpTransport(url, { timeoutMs: 5000 }), 'dev-1', 1000, () => DAY0);
      expect(report).toMatchObject({ batches: 1, samples: total });
      const batches = readdirSync(path.join(tmp.dir, 'cloud', 'dev-1'));
      expect(batches).toHaveLength(1);
      expect(receiver.accepted()).toBe(1);
    } finally {
      await receiver.close();
      store.close();
    }
  });

  it.runIf(requireRegistry())('pushes a batch to docker-registry as an OCI artifact with one layer per NPY file', async () => {
    const registry = await startRegistry();
    const store = await minedStore();
    const total = store.count();
    const client = new RegistryClient({ registry: registry.host, repository: 'fleet/samples', plainHttp: true, clock: systemClock, random: systemRandom });
    try {
      let batchId = '';
      const transport = registryTransport(client);
      const report = await uploadPending(store, { send: async (b) => { batchId = b.id; await transport.send(b); } }, 'dev-1', 1000, () => DAY0);
      expect(report.samples).toBe(total);
      const manifest = await client.resolve(sampleBatchTag('dev-1', batchId));
      expect(manifest.kind === 'manifest' && manifest.manifest.layers.length).toBe(2 * total);
      expect(store.count()).toBe(0);
      expect(existsSync(path.join(tmp.dir, 'device', 'files'))).toBe(true);
    } finally {
      await client.close();
      await registry.stop();
      store.close();
    }
  }, 30_000);
});
