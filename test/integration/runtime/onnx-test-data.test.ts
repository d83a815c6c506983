import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataType, decodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, onnxSchema, type ModelProto, type TensorProto } from '../../../src/onnx/index.ts';
import { listDataSetDirs, readTensorFile, readTestDataSets } from '../../../src/runtime/onnx-test-data.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const CORPUS_ABS = '/usr/share/libonnx-testdata/data/node/test_abs';

function tensorBytes(t: TensorProto): Uint8Array {
  const type = onnxSchema().lookupType('onnx.TensorProto');
  return type.encode(type.fromObject(t)).finish();
}

function addModel(): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'add',
      nodes: [makeNode('Add', ['a', 'b'], ['c'])],
      inputs: [makeValueInfo('a', DataType.FLOAT, [2]), makeValueInfo('b', DataType.FLOAT, [2])],
      outputs: [makeValueInfo('c', DataType.FLOAT, [2])],
    }),
  });
}

function thrown(fn: () => unknown): EdgevolveError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EdgevolveError) return err;
    throw err;
  }
  throw new Error('expected an EdgevolveError');
}

describe('the ONNX test-data layout', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir('edgevolve-testdata-'));
  });
  afterEach(async () => {
    await cleanup();
  });

  function writeSet(n: number, files: Record<string, Uint8Array>): void {
    const setDir = path.join(dir, `test_data_set_${n}`);
    fs.mkdirSync(setDir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(setDir, name), bytes);
  }

  it('pairs input_K/output_K with the K-th graph input/output, data sets in numeric order', () => {
    for (const n of [10, 2]) {
      writeSet(n, {
        'input_0.pb': tensorBytes(makeTensor('a', DataType.FLOAT, [2], [n, 1])),
        'input_1.pb': tensorBytes(makeTensor('b', DataType.FLOAT, [2], [2, 3])),
        'output_0.pb': tensorBytes(makeTensor('c', DataType.FLOAT, [2], [n + 2, 4])),
      });
    }
    fs.mkdirSync(path.join(dir, 'test_data_set_x')); // not a data set
    expect(listDataSetDirs(dir)).toEqual(['test_data_set_2', 'test_data_set_10']);
    const sets = readTestDataSets(dir, addModel());
    expect(sets.map((s) => s.name)).toEqual(['test_data_set_2', 'test_data_set_10']);
    expect(Object.keys(sets[1]!.inputs)).toEqual(['a', 'b']);
    expect(Array.from(sets[1]!.inputs.a!.data as Float32Array)).toEqual([10, 1]);
    expect(sets[1]!.outputs.map((o) => [o.name, Array.from(o.value.data as Float32Array)])).toEqual([['c', [12, 4]]]);
  });

  it('refuses a file with no matching graph value with E_ONNX_INVALID', () => {
    writeSet(0, { 'output_1.pb': tensorBytes(makeTensor('x', DataType.FLOAT, [1], [1])), 'output_0.pb': tensorBytes(makeTensor('c', DataType.FLOAT, [2], [1, 1])) });
    const err = thrown(() => readTestDataSets(dir, addModel()));
    expect(err.code).toBe('E_ONNX_INVALID');
    expect(err.message).toMatch(/no graph output 1/);
  });

  it('refuses sequence values with E_RUNTIME_UNSUPPORTED_TYPE', () => {
    const model = addModel();
    model.graph!.input![0] = { name: 'a', type: { sequenceType: { elemType: { tensorType: { elemType: DataType.FLOAT } } } } };
    writeSet(0, { 'input_0.pb': new Uint8Array(0) });
    const err = thrown(() => readTestDataSets(dir, model));
    expect(err.code).toBe('E_RUNTIME_UNSUPPORTED_TYPE');
    expect(err.message).toMatch(/sequence/);
  });

  it('reports a truncated tensor file as E_ONNX_TRUNCATED naming the file', () => {
    const bytes = tensorBytes(makeTensor('a', DataType.FLOAT, [64], new Float32Array(64)));
    const file = path.join(dir, 'cut.pb');
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    const err = thrown(() => readTensorFile(file));
    expect(err.code).toBe('E_ONNX_TRUNCATED');
    expect(err.message).toContain(file);
  });

  it.runIf(requireTool({ name: 'the ONNX backend test corpus', check: () => fs.existsSync(CORPUS_ABS), debianPackage: 'libonnx-testdata' }))(
    'reads the corpus test_abs data: x and y FLOAT [3, 4, 5] with y = |x|',
    () => {
      const model = decodeModel(fs.readFileSync(path.join(CORPUS_ABS, 'model.onnx')));
      const [set] = readTestDataSets(CORPUS_ABS, model);
      const x = set!.inputs.x!;
      const y = set!.outputs[0]!.value;
      expect([x.dataType, x.dims, y.dims]).toEqual([DataType.FLOAT, [3, 4, 5], [3, 4, 5]]);
      expect(Array.from(y.data as Float32Array)).toEqual(Array.from(x.data as Float32Array, Math.abs));
    },
  );
});
