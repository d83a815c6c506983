/**
 * The ONNX test layout, on ONNX's own backend test data (Debian libonnx-testdata):
 * sets open as data sets, bind to the model's inputs by position, and running them
 * through onnxruntime reproduces the shipped expected outputs.
 */
import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAgainstModel, openDataset, type Batch } from '../../../src/data/index.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { DataType } from '../../../src/onnx/types.ts';
import { compareTensors } from '../../../src/runtime/compare.ts';
import { createSession } from '../../../src/runtime/session.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const CORPUS = '/usr/share/libonnx-testdata/data/node';
const hasCorpus = requireTool({ name: 'the ONNX backend test corpus', check: () => existsSync(path.join(CORPUS, 'test_add')), debianPackage: 'libonnx-testdata' });

describe.runIf(hasCorpus)('the ONNX test layout as a data set', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'edgevolve-onnx-layout-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('opens node/test_add with its inputs, shapes and expected outputs', async () => {
    const dataset = await openDataset(path.join(CORPUS, 'test_add'));
    try {
      expect(dataset.layout).toBe('onnx-test');
      expect(dataset.wholeFeeds).toBe(true);
      expect(dataset.size).toBe(1);
      expect(dataset.hasExpectedOutputs).toBe(true);
      expect(dataset.inputs.map((i) => [i.name, i.dataType, i.sampleShape])).toEqual([
        ['x', DataType.FLOAT, [3, 4, 5]],
        ['y', DataType.FLOAT, [3, 4, 5]],
      ]);
    } finally {
      await dataset.close();
    }
  });

  for (const name of ['test_add', 'test_basic_conv_with_padding', 'test_gemm_default_vector_bias']) {
    it(`binds ${name} to the model by position, and onnxruntime reproduces output_0.pb`, async () => {
      const dir = path.join(CORPUS, name);
      const session = await createSession(path.join(dir, 'model.onnx'));
      const dataset = await openDataset(dir);
      try {
        const binding = checkAgainstModel(dataset, session.inputs);
        expect(binding.mode).toBe('whole');
        const batches: Batch[] = [];
        for await (const batch of binding.dataset.batches(8)) batches.push(batch);
        expect(batches).toHaveLength(1);
        const batch = batches[0]!;
        const outputs = await session.run(batch.feeds);
        const first = session.outputs[0]!.name;
        expect(compareTensors(outputs[first]!, batch.expectedOutputs![0]!)).toBeUndefined();
      } finally {
        await dataset.close();
        await session.release();
      }
    });
  }

  it('yields one batch per test_data_set_N, in numeric order', async () => {
    const dir = path.join(scratch, 'multi');
    for (const n of [0, 1, 10, 2]) cpSync(path.join(CORPUS, 'test_add', 'test_data_set_0'), path.join(dir, `test_data_set_${n}`), { recursive: true });
    const dataset = await openDataset(dir);
    try {
      const indices: number[] = [];
      for await (const batch of dataset.batches(3)) indices.push(...batch.indices);
      expect(indices).toEqual([0, 1, 2, 3]);
      expect(dataset.size).toBe(4);
    } finally {
      await dataset.close();
    }
  });

  it('rejects a set with a gap in its input numbering', async () => {
    const dir = path.join(scratch, 'gap');
    cpSync(path.join(CORPUS, 'test_add', 'test_data_set_0'), path.join(dir, 'test_data_set_0'), { recursive: true });
    renameSync(path.join(dir, 'test_data_set_0', 'input_1.pb'), path.join(dir, 'test_data_set_0', 'input_2.pb'));
    const error: unknown = await openDataset(dir).catch((err: unknown) => err);
    expect(isEdgevolveError(error, 'E_DATA_SET_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/has input_2\.pb but no input_1\.pb/);
  });

  it('names the missing input when the sets carry fewer inputs than the model takes', async () => {
    const dir = path.join(scratch, 'short');
    cpSync(path.join(CORPUS, 'test_add', 'test_data_set_0'), path.join(dir, 'test_data_set_0'), { recursive: true });
    rmSync(path.join(dir, 'test_data_set_0', 'input_1.pb'));
    const session = await createSession(path.join(CORPUS, 'test_add', 'model.onnx'));
    const dataset = await openDataset(dir);
    try {
      expect(() => checkAgainstModel(dataset, session.inputs)).toThrow(/takes 2 inputs but the test data sets have 1 \(no data for 'y'\)/);
    } finally {
      await dataset.close();
      await session.release();
    }
  });
});
