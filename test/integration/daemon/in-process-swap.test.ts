import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InProcessServing } from '../../../src/daemon/in-process-serving.ts';
import type { ServedModel } from '../../../src/daemon/ports.ts';
import { DataType } from '../../../src/onnx/index.ts';

const MODELS = path.resolve(import.meta.dirname, '../../fixtures/models');

function served(version: string, file: string): ServedModel {
  return { name: 'mnist', version, variant: 'fp32', versionId: Number(version[0]), manifestDigest: `sha256:${version}`, modelPath: path.join(MODELS, file) };
}

const feeds = { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: new Float32Array(784).fill(0.5) } };

describe('InProcessServing swaps (real onnxruntime sessions)', () => {
  it('requests started before a swap or an unload finish on the old session instead of failing on a released one', async () => {
    const serving = new InProcessServing({ threads: 1 });
    try {
      await serving.load(served('1.0.0', 'mnist-mlp.onnx'));
      // onnxruntime-node starts a run on a later turn: these runs are still pending when the swap releases 1.0.0.
      const before = Array.from({ length: 8 }, () => serving.infer('mnist', feeds));
      await serving.load(served('2.0.0', 'mnist-cnn.onnx'));
      const answers = await Promise.all(before);
      expect(answers).toHaveLength(8);
      for (const out of answers) expect(Object.values(out)[0]!.dims).toEqual([1, 10]);
      expect(serving.loaded().map((m) => m.version)).toEqual(['2.0.0']);

      const during = Array.from({ length: 4 }, () => serving.infer('mnist', feeds));
      await serving.unload('mnist');
      expect(await Promise.all(during)).toHaveLength(4);
      await expect(serving.infer('mnist', feeds)).rejects.toMatchObject({ code: 'E_DAEMON_NO_MODEL' });
    } finally {
      await serving.close();
    }
  });
});
