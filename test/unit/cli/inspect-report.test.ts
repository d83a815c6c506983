/**
 * The inspect report (src/onnx/inspect.ts) on hand-built models that exercise what the
 * PaddleOCR models do not: subgraphs, functions, custom domains, every Constant value
 * form, sparse and external initializers, IR<4 initializer inputs, unknown dims.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attr,
  DataType,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  writeModelFile,
  type ModelProto,
  type TensorProto,
} from '../../../src/onnx/index.ts';
import { inspectFile, inspectModel, type InspectReport } from '../../../src/onnx/inspect.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

function richModel(): ModelProto {
  const thenBranch = makeGraph({
    name: 'then',
    nodes: [makeNode('Add', ['x', 'bias'], ['t'])],
    inputs: [],
    outputs: [makeValueInfo('t', DataType.FLOAT, null)],
    initializers: [makeTensor('bias', DataType.FLOAT, [4], [1, 2, 3, 4])],
  });
  const elseBranch = makeGraph({
    name: 'else',
    nodes: [makeNode('Neg', ['x'], ['e'])],
    inputs: [],
    outputs: [makeValueInfo('e', DataType.FLOAT, null)],
  });
  const graph = makeGraph({
    name: 'rich',
    nodes: [
      makeNode('Constant', [], ['k_floats'], { value_floats: attr.floats([1, 2, 3]) }),
      makeNode('Constant', [], ['k_tensor'], { value: makeTensor('', DataType.INT64, [2], [7n, 8n]) }),
      makeNode('Constant', [], ['k_int'], { value_int: 5 }),
      makeNode('If', ['cond'], ['y'], { then_branch: thenBranch, else_branch: elseBranch }),
      makeNode('FusedGemm', ['y', 'w'], ['z'], {}, { domain: 'com.microsoft' }),
      makeNode('Add', ['z', 'w'], ['out']),
    ],
    inputs: [
      makeValueInfo('x', DataType.FLOAT, ['batch', 4]),
      makeValueInfo('cond', DataType.BOOL, []),
      makeValueInfo('w', DataType.FLOAT, [4, null]), // an overridable initializer (IR < 4 style)
    ],
    outputs: [makeValueInfo('out', DataType.FLOAT, null)],
    initializers: [makeTensor('w', DataType.FLOAT, [4, 4], new Float32Array(16)), makeTensor('labels', DataType.STRING, [2], ['ab', 'cde'])],
  });
  const model = makeModel({
    graph,
    opsets: [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
      { domain: 'custom', version: 1 },
    ],
    producerName: 'hand',
    producerVersion: '1.0',
  });
  model.metadataProps = [{ key: 'author', value: 'edgevolve tests' }];
  model.functions = [{ name: 'Twice', domain: 'custom', input: ['a'], output: ['b'], node: [makeNode('Add', ['a', 'a'], ['b'])], opsetImport: [{ domain: '', version: 17 }] }];
  return model;
}

describe('inspectModel', () => {
  let r: InspectReport;
  beforeAll(() => {
    r = inspectModel(richModel(), { path: 'rich.onnx', fileBytes: 123, findings: [], largest: 2 });
  });

  it('lists inputs a caller must feed, leaving out inputs that carry an initializer', () => {
    expect(r.inputs).toEqual([
      { name: 'x', kind: 'tensor', elementType: 'FLOAT', shape: ['batch', 4] },
      { name: 'cond', kind: 'tensor', elementType: 'BOOL', shape: [] },
    ]);
    expect(r.outputs).toEqual([{ name: 'out', kind: 'tensor', elementType: 'FLOAT', shape: null }]);
  });

  it('counts nodes in subgraphs and qualifies non-default domains in the histogram', () => {
    expect(r.graph).toEqual({ name: 'rich', nodes: 6, nodesIncludingSubgraphs: 8, subgraphs: 2, initializers: 2 });
    // Most frequent first, ties by name.
    expect(r.ops).toEqual([
      { op: 'Constant', count: 3 },
      { op: 'Add', count: 2 },
      { op: 'If', count: 1 },
      { op: 'Neg', count: 1 },
      { op: 'com.microsoft.FusedGemm', count: 1 },
    ]);
    expect(r.opsetImports).toEqual([
      { domain: 'ai.onnx', version: 17 },
      { domain: 'com.microsoft', version: 1 },
      { domain: 'custom', version: 1 },
    ]);
  });

  it('counts parameters by element type over initializers in all graphs and every Constant value form', () => {
    // FLOAT: w (16) + bias in the then-branch (4) + value_floats (3); INT64: value tensor (2) + value_int (1); STRING: labels (2, 5 bytes).
    expect(r.parameters).toEqual({
      tensors: 6,
      elements: 28,
      bytes: 23 * 4 + 3 * 8 + 5,
      externalTensors: 0,
      externalBytes: 0,
      byElementType: [
        { elementType: 'FLOAT', tensors: 3, elements: 23, bytes: 92 },
        { elementType: 'INT64', tensors: 2, elements: 3, bytes: 24 },
        { elementType: 'STRING', tensors: 1, elements: 2, bytes: 5 },
      ],
    });
  });

  it('lists the largest parameter tensors, naming Constant values by their output', () => {
    expect(r.largestTensors.map((t) => [t.name, t.source, t.bytes])).toEqual([
      ['w', 'initializer', 64],
      ['bias', 'initializer', 16],
    ]);
    const all = inspectModel(richModel(), { path: 'x', fileBytes: 0, findings: [] }).largestTensors;
    expect(all.find((t) => t.source === 'constant')).toMatchObject({ name: 'k_tensor', elementType: 'INT64', shape: [2], bytes: 16 });
  });

  it('reports header fields, functions and metadata', () => {
    expect(r).toMatchObject({
      file: { path: 'rich.onnx', bytes: 123 },
      irVersion: 10,
      producer: { name: 'hand', version: '1.0' },
      functions: [{ domain: 'custom', name: 'Twice', nodes: 1 }],
      metadata: { author: 'edgevolve tests' },
    });
  });
});

describe('inspectFile', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('edgevolve-inspect-report-'));
  });
  afterAll(async () => {
    await cleanup();
  });

  function externalModel(location: string): ModelProto {
    const weight: TensorProto = {
      name: 'big',
      dataType: DataType.FLOAT,
      dims: [256, 4],
      dataLocation: 1,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(256 * 4 * 4) },
      ],
    };
    const graph = makeGraph({
      name: 'ext',
      nodes: [makeNode('MatMul', ['x', 'big'], ['y'])],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 256])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 4])],
      initializers: [weight],
    });
    return makeModel({ graph });
  }

  it('counts external data from dims and finds no problem when the data file is there', async () => {
    fs.writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(256 * 4 * 4));
    await writeModelFile(path.join(dir, 'ext.onnx'), externalModel('weights.bin'));
    const r = await inspectFile(path.join(dir, 'ext.onnx'));
    expect(r.parameters).toMatchObject({ tensors: 1, elements: 1024, bytes: 4096, externalTensors: 1, externalBytes: 4096 });
    expect(r.largestTensors[0]).toMatchObject({ name: 'big', external: true });
    expect(r.findings).toEqual([]);
  });

  it('reports external data that escapes the model directory as a validation error', async () => {
    await writeModelFile(path.join(dir, 'escape.onnx'), externalModel('../outside.bin'));
    const r = await inspectFile(path.join(dir, 'escape.onnx'));
    expect(r.findings).toContainEqual(expect.objectContaining({ severity: 'error', code: 'external-data' }));
  });
});
