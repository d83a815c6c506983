import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceCoevolution, coevolutionConfigSchema, DEFAULT_FIELD_SHIFT, loadFieldData, openPredictor } from '../../../src/coevolution/index.ts';
import { readReceivedSamples, startSampleReceiver } from '../../../src/coevolution/cloud/index.ts';
import { DataType } from '../../../src/onnx/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { codeOf } from '../../helpers/error-code.ts';

describe('DeviceCoevolution built from the coevolution config section', () => {
  it('mines through its serving hooks, uploads to the configured endpoint and reports counters', async () => {
    const tmp = await makeTempDir();
    const receiver = await startSampleReceiver({ dir: path.join(tmp.dir, 'cloud'), host: '127.0.0.1', port: 0, maxBodyBytes: 1e8 });
    const config = coevolutionConfigSchema.parse({
      mining: { enabled: true, defaultRule: { kind: 'classification', maxProbabilityBelow: 0.8 }, maxPerMinute: 1000 },
      upload: { target: 'http', url: receiver.url, intervalS: 3600 },
      drift: { referenceSize: 20, windowSize: 20 },
    });
    const drifts: number[] = [];
    const device = new DeviceCoevolution(config, { stateDir: tmp.dir, deviceId: 'dev-1', clock: systemClock, driftSink: { report: (r) => drifts.push(r.score), event: () => {} }, onError: () => {} });
    const controller = new AbortController();
    try {
      await device.start(controller.signal);
      const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
      const student = await openPredictor('test/fixtures/models/mnist-student.onnx', { threads: 1 });
      const logits = await student.logits(field.stream.inputs.subarray(0, 60 * 784), 60);
      await student.release();
      const hooks = device.hooks();
      expect(hooks.observers).toHaveLength(1);
      expect(hooks.interceptor).toBeUndefined();
      for (let i = 0; i < 60; i++) {
        for (const observer of hooks.observers) {
          observer.onInference({
            model: 'student', version: '1', requestId: undefined,
            inputs: { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: field.stream.inputs.slice(i * 784, (i + 1) * 784) } },
            localOutputs: { logits: { dataType: DataType.FLOAT, dims: [1, 10], data: logits.slice(i * 10, (i + 1) * 10) } },
          });
        }
      }
      const report = await device.uploadOnce();
      expect(report.samples).toBeGreaterThan(0);
      expect((await readReceivedSamples(path.join(tmp.dir, 'cloud'))).count).toBe(report.samples);
      expect(device.hardSampleRate()).toBeCloseTo(report.samples / 60, 9);
      expect(drifts).toHaveLength(2);
      expect(device.snapshot()).toMatchObject({ stored: { samples: 0 }, lastUpload: { ok: true } });
    } finally {
      controller.abort();
      await device.stop();
      await receiver.close();
      await tmp.cleanup();
    }
  }, 30_000);

  it('refuses an enabled cascade without a URL with E_CONFIG_INVALID', async () => {
    const config = coevolutionConfigSchema.parse({ cascade: { enabled: true } });
    const device = new DeviceCoevolution(config, { stateDir: '/nonexistent', deviceId: 'd', clock: systemClock, driftSink: { report: () => {}, event: () => {} }, onError: () => {} });
    let code = 'ok';
    await device.start(new AbortController().signal).catch((err: unknown) => { code = codeOf(() => { throw err; }); });
    expect(code).toBe('E_CONFIG_INVALID');
  });
});
