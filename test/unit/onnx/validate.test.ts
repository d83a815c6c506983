import { describe, expect, it } from 'vitest';
import Long from 'long';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import {
  DataType,
  assertValidModel,
  attr,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  validateModel,
  type Finding,
  type ModelProto,
} from '../../../src/onnx/index.ts';
import { tinyMlp } from '../../helpers/onnx-builders.ts';

const errors = (m: ModelProto, opts = {}): Finding[] => validateModel(m, opts).filter((f) => f.severity === 'error');
const codes = (m: ModelProto, opts = {}): string[] => errors(m, opts).map((f) => f.code);

describe('validateModel', () => {
  it('finds nothing wrong with a sound model', () => {
    expect(validateModel(tinyMlp())).toEqual([]);
  });

  it('reports a missing graph and a missing opset import', () => {
    expect(codes({ irVersion: 10, opsetImport: [{ domain: '', version: 17 }] })).toEqual(['missing-graph']);
    const m = tinyMlp();
    m.opsetImport = [];
    expect(codes(m)).toContain('no-opset-import');
  });

  it('reports an opset version that is not a positive integer and a domain imported twice', () => {
    const m = tinyMlp();
    m.opsetImport = [{ domain: '', version: 0 }, { domain: 'ai.onnx', version: Long.MAX_VALUE }];
    expect(codes(m)).toEqual(['bad-opset-version', 'bad-opset-version', 'duplicate-opset-import']);
  });

  it('accepts imported domains and ai.onnx, rejects a domain the model does not import', () => {
    const m = tinyMlp();
    m.graph!.node![2]!.domain = 'ai.onnx';
    expect(codes(m)).toEqual([]);
    m.graph!.node![2]!.domain = 'com.microsoft';
    expect(errors(m)).toMatchObject([{ code: 'unknown-domain', node: 'relu' }]);
    m.opsetImport!.push({ domain: 'com.microsoft', version: 1 });
    expect(codes(m)).toEqual([]);
  });

  it('names a dangling input and the node that reads it', () => {
    const m = tinyMlp();
    m.graph!.node![1]!.input = ['xw', 'missing_bias'];
    expect(errors(m)).toMatchObject([{ code: 'dangling-input', node: 'add', value: 'missing_bias', graph: 'mlp' }]);
  });

  it('reports a value produced twice, an output nobody produces, and an empty op_type', () => {
    const m = tinyMlp();
    m.graph!.node!.push(makeNode('Neg', ['x'], ['h'], {}, { name: 'second_h' }));
    m.graph!.output!.push(makeValueInfo('ghost', DataType.FLOAT, null));
    m.graph!.node![0]!.opType = '';
    expect(codes(m).sort()).toEqual(['duplicate-definition', 'empty-op-type', 'output-not-produced']);
  });

  it('reports a cycle naming a node on it', () => {
    const m = tinyMlp();
    m.graph!.node![0]!.input = ['x', 'y']; // MatMul now reads Relu's output
    m.graph!.initializer = m.graph!.initializer!.filter((t) => t.name !== 'W');
    const found = errors(m).find((f) => f.code === 'cycle');
    expect(found?.message).toMatch(/cycle through node (matmul|add|relu)/);
  });

  it('reports duplicate initializers and tensor data that disagrees with dims', () => {
    const m = tinyMlp();
    m.graph!.initializer!.push(makeTensor('W', DataType.FLOAT, [1], [0]));
    m.graph!.initializer![1] = { ...m.graph!.initializer![1]!, dims: [4] };
    expect(codes(m).sort()).toEqual(['duplicate-initializer', 'tensor-data']);
  });

  it('reports negative, overflowing and too many dims in tensors and declared shapes', () => {
    const m = tinyMlp();
    m.graph!.initializer![0] = { name: 'W', dataType: DataType.FLOAT, dims: [Long.fromString('4611686018427387904'), Long.fromString('4611686018427387904')], rawData: new Uint8Array(48) };
    m.graph!.initializer![1] = { name: 'B', dataType: DataType.FLOAT, dims: [-3], rawData: new Uint8Array(12) };
    m.graph!.input![0] = makeValueInfo('x', DataType.FLOAT, new Array<number>(40).fill(1));
    m.graph!.output![0] = makeValueInfo('y', DataType.FLOAT, [2 ** 40, 2 ** 40]);
    expect(codes(m).sort()).toEqual(['shape-rank', 'shape-too-large', 'tensor-data', 'tensor-too-large']);
  });

  it('reports a declared element type that ONNX does not define', () => {
    const m = tinyMlp();
    m.graph!.input![0] = makeValueInfo('x', 99, ['N', 4]);
    expect(errors(m)).toMatchObject([{ code: 'unknown-data-type', value: 'x' }]);
  });

  it('applies configurable caps on tensor bytes, node count and subgraph depth', () => {
    expect(codes(tinyMlp(), { limits: { maxTensorBytes: 16 } })).toEqual(['tensor-too-large']);
    expect(codes(tinyMlp(), { limits: { maxNodes: 2 } })).toEqual(['too-many-nodes']);
    let body = makeGraph({ name: 'leaf', nodes: [makeNode('Identity', ['x'], ['o'])], inputs: [], outputs: [makeValueInfo('o', DataType.FLOAT, [1])] });
    for (let i = 0; i < 5; i++) {
      body = makeGraph({
        name: `level${i}`,
        nodes: [makeNode('If', ['c'], [`o${i}`], { then_branch: attr.graph(body), else_branch: attr.graph(body) })],
        inputs: [],
        outputs: [makeValueInfo(`o${i}`, DataType.FLOAT, [1])],
      });
    }
    body.input = [makeValueInfo('x', DataType.FLOAT, [1]), makeValueInfo('c', DataType.BOOL, [])];
    const deep = makeModel({ graph: body });
    expect(codes(deep)).toEqual([]);
    expect(codes(deep, { limits: { maxGraphDepth: 3 } })).toContain('graph-too-deep');
  });

  it('accepts subgraphs that read outer values and rejects ones that read nothing defined', () => {
    const branch = (input: string) => makeGraph({ name: 'b', nodes: [makeNode('Neg', [input], ['o'])], inputs: [], outputs: [makeValueInfo('o', DataType.FLOAT, [1])] });
    const model = (input: string) =>
      makeModel({
        graph: makeGraph({
          name: 'main',
          nodes: [makeNode('If', ['c'], ['y'], { then_branch: attr.graph(branch(input)), else_branch: attr.graph(branch('x')) }, { name: 'if' })],
          inputs: [makeValueInfo('x', DataType.FLOAT, [1]), makeValueInfo('c', DataType.BOOL, [])],
          outputs: [makeValueInfo('y', DataType.FLOAT, [1])],
        }),
      });
    expect(codes(model('x'))).toEqual([]);
    expect(errors(model('nowhere'))).toMatchObject([{ code: 'dangling-input', value: 'nowhere', graph: 'b' }]);
  });

  it('checks function bodies with the function\'s own opset imports', () => {
    const m = tinyMlp();
    m.functions = [{ name: 'F', domain: 'local', input: ['a'], output: ['b'], node: [makeNode('Gelu', ['a'], ['b'], {}, { domain: 'com.microsoft' })], opsetImport: [{ domain: 'com.microsoft', version: 1 }] }];
    expect(codes(m)).toEqual([]);
    m.functions[0]!.node![0]!.input = ['not_an_input'];
    expect(codes(m)).toEqual(['dangling-input']);
  });

  it('assertValidModel throws E_ONNX_INVALID with the findings in context', () => {
    const m = tinyMlp();
    m.graph!.node![1]!.input = ['xw', 'nope'];
    try {
      assertValidModel(m);
      expect.unreachable();
    } catch (err) {
      expect(isEdgevolveError(err, 'E_ONNX_INVALID')).toBe(true);
      expect((err as Error).message).toContain("reads 'nope'");
      expect((err as { context: { findings: Finding[] } }).context.findings).toHaveLength(1);
    }
  });

  it('caps the number of findings a hostile model can produce', () => {
    const m = tinyMlp();
    m.graph!.node = Array.from({ length: 5000 }, (_, i) => makeNode('Relu', [`missing${i}`], [`o${i}`]));
    const found = validateModel(m, { maxFindings: 100 });
    expect(found.length).toBe(101);
    expect(found[100]!.code).toBe('too-many-findings');
  });
});
