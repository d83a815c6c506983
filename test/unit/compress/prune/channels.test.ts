/**
 * Structured pruning on hand-built graphs, one per dependency pattern. The check is
 * exact: the channels to prune are made dead in the original (their producer's
 * weights and bias are zero, so they carry 0 through Relu/MaxPool/Add) and thus the
 * least important, so removing them must leave every output unchanged. A wrong slice
 * anywhere (wrong axis, wrong offset, a consumer not updated) changes the outputs or
 * makes onnxruntime refuse the model.
 */
import { describe, expect, it } from 'vitest';
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, readTensor, tensorDims, getAttrInt, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { pruneChannelsPass, type PruneChannelsOptions } from '../../../../src/compress/prune/index.ts';
import { CHECKS, expectEquivalent, seededFloats } from '../../../helpers/ort-equivalence.ts';

let seed = 100;

/** A random float tensor whose listed channels along `axis` are zero. */
function weight(name: string, dims: number[], axis = 0, dead: readonly number[] = []): TensorProto {
  const data = seededFloats(dims.reduce((a, b) => a * b, 1), seed++);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < data.length; i++) if (dead.includes(Math.floor(i / inner) % dims[axis]!)) data[i] = 0;
  return makeTensor(name, DataType.FLOAT, dims, data);
}

function model(nodes: NodeProto[], inits: TensorProto[], input: number[], outputs: [string, number[]][], extraInputs: [string, number[]][] = []): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes,
      inputs: [makeValueInfo('x', DataType.FLOAT, input), ...extraInputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s))],
      outputs: outputs.map(([name, shape]) => makeValueInfo(name, DataType.FLOAT, shape)),
      initializers: inits,
    }),
    opsets: [{ domain: '', version: 17 }],
  });
}

function dimsOf(m: ModelProto, nodeName: string, slot = 1): number[] {
  const node = m.graph!.node!.find((n) => n.name === nodeName)!;
  const t = m.graph!.initializer!.find((x) => x.name === node.input![slot])!;
  return tensorDims(t);
}

async function prunesExactly(m: ModelProto, options: PruneChannelsOptions, opts: { groups: number }): Promise<ModelProto> {
  const result = runPass(pruneChannelsPass, m, options, CHECKS);
  expect(result.report.stats['groupsPruned']).toBe(opts.groups);
  expect(result.report.stats['paramsAfter']).toBeLessThan(result.report.stats['paramsBefore']!);
  await expectEquivalent(m, result.model, { rtol: 1e-5, atol: 1e-5 });
  return result.model;
}

const DEAD4 = [1, 3]; // of 4 channels: ratio 0.5 prunes exactly these
const DEAD8 = [0, 2, 5]; // of 8 channels: ratio 0.375 prunes exactly these

describe('prune-channels on single patterns', () => {
  it('Conv without bias → Relu → Conv: producer rows and consumer input columns go together', async () => {
    const m = model(
      [makeNode('Conv', ['x', 'W1'], ['c1'], { pads: [1, 1, 1, 1] }, { name: 'conv1' }), makeNode('Relu', ['c1'], ['r']), makeNode('Conv', ['r', 'W2'], ['y'], {}, { name: 'conv2' })],
      [weight('W1', [4, 3, 3, 3], 0, DEAD4), weight('W2', [5, 4, 1, 1])],
      [1, 3, 6, 6],
      [['y', [1, 5, 6, 6]]],
    );
    const out = await prunesExactly(m, { ratio: 0.5 }, { groups: 1 });
    expect(dimsOf(out, 'conv1')).toEqual([2, 3, 3, 3]);
    expect(dimsOf(out, 'conv2')).toEqual([5, 2, 1, 1]);
  });

  it('Conv with bias → BatchNormalization → Relu → MaxPool → Conv: bias and all four BN vectors are sliced', async () => {
    const bnZeroShift = (name: string, dims: number[], dead: readonly number[]): TensorProto => weight(name, dims, 0, dead);
    const m = model(
      [
        makeNode('Conv', ['x', 'W1', 'B1'], ['c1'], {}, { name: 'conv1' }),
        makeNode('BatchNormalization', ['c1', 'g', 'b', 'mu', 'var'], ['bn'], {}, { name: 'bn' }),
        makeNode('Relu', ['bn'], ['r']),
        makeNode('MaxPool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }),
        makeNode('Conv', ['p', 'W2'], ['y'], {}, { name: 'conv2' }),
      ],
      [
        weight('W1', [8, 3, 3, 3], 0, DEAD8),
        bnZeroShift('B1', [8], DEAD8),
        makeTensor('g', DataType.FLOAT, [8], seededFloats(8, 7).map((v) => v + 2)),
        bnZeroShift('b', [8], DEAD8),
        bnZeroShift('mu', [8], DEAD8),
        makeTensor('var', DataType.FLOAT, [8], seededFloats(8, 8).map((v) => v + 2)),
        weight('W2', [2, 8, 1, 1]),
      ],
      [1, 3, 6, 6],
      [['y', [1, 2, 2, 2]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    expect(tensorDims(out.graph!.initializer!.find((t) => t.name === out.graph!.node![1]!.input![4])!)).toEqual([5]);
  });

  it('depthwise Conv passes channels through and its group count follows them', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'conv1' }),
        makeNode('Relu', ['c1'], ['r1']),
        makeNode('Conv', ['r1', 'Wd', 'Bd'], ['d'], { group: 8, pads: [1, 1, 1, 1] }, { name: 'dw' }),
        makeNode('Relu', ['d'], ['r2']),
        makeNode('Conv', ['r2', 'W2'], ['y'], {}, { name: 'conv2' }),
      ],
      [weight('W1', [8, 3, 1, 1], 0, DEAD8), weight('Wd', [8, 1, 3, 3]), weight('Bd', [8], 0, DEAD8), weight('W2', [4, 8, 1, 1])],
      [1, 3, 5, 5],
      [['y', [1, 4, 5, 5]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    const dw = out.graph!.node!.find((n) => n.name === 'dw')!;
    expect(getAttrInt(dw, 'group')).toBe(5);
    expect(dimsOf(out, 'dw')).toEqual([5, 1, 3, 3]);
  });

  it('Gemm with transB=1 → Relu → Gemm with transB=0: rows, bias, then columns', async () => {
    const m = model(
      [makeNode('Gemm', ['x', 'W1', 'C1'], ['h'], { transB: 1 }, { name: 'fc1' }), makeNode('Relu', ['h'], ['r']), makeNode('Gemm', ['r', 'W2'], ['y'], {}, { name: 'fc2' })],
      [weight('W1', [8, 6], 0, DEAD8), weight('C1', [8], 0, DEAD8), weight('W2', [8, 3])],
      [2, 6],
      [['y', [2, 3]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    expect(dimsOf(out, 'fc1')).toEqual([5, 6]);
    expect(dimsOf(out, 'fc1', 2)).toEqual([5]);
    expect(dimsOf(out, 'fc2')).toEqual([5, 3]);
  });

  it('MatMul on a 3-D input → Add(bias) → Relu → MatMul: columns, bias and rows', async () => {
    const m = model(
      [makeNode('MatMul', ['x', 'W1'], ['h'], {}, { name: 'mm1' }), makeNode('Add', ['h', 'b1'], ['hb']), makeNode('Relu', ['hb'], ['r']), makeNode('MatMul', ['r', 'W2'], ['y'], {}, { name: 'mm2' })],
      [weight('W1', [6, 8], 1, DEAD8), weight('b1', [8], 0, DEAD8), weight('W2', [8, 3])],
      [2, 5, 6],
      [['y', [2, 5, 3]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    expect(dimsOf(out, 'mm1')).toEqual([6, 5]);
    expect(dimsOf(out, 'mm2')).toEqual([5, 3]);
  });

  it('a weight shared by two Convs joins them in one group and stays one shared tensor', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W1'], ['a'], {}, { name: 'convA' }),
        makeNode('Conv', ['x2', 'W1'], ['b'], {}, { name: 'convB' }),
        makeNode('Relu', ['a'], ['ra']),
        makeNode('Relu', ['b'], ['rb']),
        makeNode('Conv', ['ra', 'W2'], ['y1'], {}, { name: 'headA' }),
        makeNode('Conv', ['rb', 'W3'], ['y2'], {}, { name: 'headB' }),
      ],
      [weight('W1', [4, 3, 1, 1], 0, DEAD4), weight('W2', [2, 4, 1, 1]), weight('W3', [2, 4, 1, 1])],
      [1, 3, 3, 3],
      [
        ['y1', [1, 2, 3, 3]],
        ['y2', [1, 2, 3, 3]],
      ],
      [['x2', [1, 3, 3, 3]]],
    );
    const out = await prunesExactly(m, { ratio: 0.5 }, { groups: 1 });
    const a = out.graph!.node!.find((n) => n.name === 'convA')!;
    const b = out.graph!.node!.find((n) => n.name === 'convB')!;
    expect(a.input![1]).toBe(b.input![1]);
    expect(dimsOf(out, 'convA')).toEqual([2, 3, 1, 1]);
  });

  it('a residual Add unites both branches: the same channels leave the block, the shortcut and every reader', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'stem' }),
        makeNode('Relu', ['c1'], ['r1']),
        makeNode('Conv', ['r1', 'W2'], ['c2'], { pads: [1, 1, 1, 1] }, { name: 'inner' }),
        makeNode('Relu', ['c2'], ['r2']),
        makeNode('Conv', ['r2', 'W3'], ['c3'], {}, { name: 'expand' }),
        makeNode('Add', ['c3', 'r1'], ['sum']),
        makeNode('Relu', ['sum'], ['r3']),
        makeNode('Conv', ['r3', 'W4'], ['y'], {}, { name: 'head' }),
      ],
      [weight('W1', [8, 3, 1, 1], 0, DEAD8), weight('W2', [4, 8, 3, 3], 0, DEAD4), weight('W3', [8, 4, 1, 1], 0, DEAD8), weight('W4', [2, 8, 1, 1])],
      [1, 3, 4, 4],
      [['y', [1, 2, 4, 4]]],
    );
    const result = runPass(pruneChannelsPass, m, { ratio: 0.375, layers: { inner: 0.5 } }, CHECKS);
    const groups = result.report.changes.filter((c) => c.action === 'pruned').map((c) => c.target);
    expect(groups).toContain('stem, expand');
    expect(groups).toContain('inner');
    await expectEquivalent(m, result.model, { rtol: 1e-5, atol: 1e-5 });
    expect(dimsOf(result.model, 'head')).toEqual([2, 5, 1, 1]);
  });

  it('Concat of a pruned branch and an unpruned graph-input branch keeps the offsets straight', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'branch' }),
        makeNode('Relu', ['c1'], ['r1']),
        makeNode('Concat', ['x', 'r1'], ['cat'], { axis: 1 }),
        makeNode('Conv', ['cat', 'W2'], ['y'], {}, { name: 'fuse' }),
      ],
      [weight('W1', [8, 3, 1, 1], 0, DEAD8), weight('W2', [4, 11, 1, 1])],
      [1, 3, 4, 4],
      [['y', [1, 4, 4, 4]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    expect(dimsOf(out, 'fuse')).toEqual([4, 8, 1, 1]);
  });

  it('Flatten, Reshape [0,-1] and Reshape [1,K] into Gemm expand channels by the spatial size (K rewritten)', async () => {
    for (const flatten of ['flatten', 'reshape-infer', 'reshape-explicit'] as const) {
      const nodes = [makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'conv' }), makeNode('Relu', ['c1'], ['r'])];
      const inits = [weight('W1', [8, 2, 3, 3], 0, DEAD8), weight('W2', [5, 8 * 4], 0)];
      if (flatten === 'flatten') nodes.push(makeNode('Flatten', ['r'], ['f'], { axis: 1 }));
      else {
        nodes.push(makeNode('Reshape', ['r', 'shape'], ['f']));
        inits.push(makeTensor('shape', DataType.INT64, [2], flatten === 'reshape-infer' ? [0n, -1n] : [1n, 32n]));
      }
      nodes.push(makeNode('Gemm', ['f', 'W2'], ['y'], { transB: 1 }, { name: 'fc' }));
      const m = model(nodes, inits, [1, 2, 4, 4], [['y', [1, 5]]]);
      const out = await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
      expect(dimsOf(out, 'fc')).toEqual([5, 20]);
      if (flatten === 'reshape-explicit') expect(Array.from(readTensor(out.graph!.initializer!.find((t) => t.name === out.graph!.node![2]!.input![1])!).data as BigInt64Array)).toEqual([1n, 20n]);
    }
  });

  it('Resize with constant scales passes channels through; with constant sizes the channel entry is rewritten', async () => {
    for (const mode of ['scales', 'sizes'] as const) {
      const inits = [weight('W1', [8, 3, 1, 1], 0, DEAD8), weight('W2', [2, 8, 1, 1]), makeTensor('roi', DataType.FLOAT, [0], [])];
      if (mode === 'scales') inits.push(makeTensor('scales', DataType.FLOAT, [4], [1, 1, 2, 2]));
      else inits.push(makeTensor('sizes', DataType.INT64, [4], [1n, 8n, 6n, 6n]));
      const m = model(
        [
          makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'conv' }),
          makeNode('Resize', mode === 'scales' ? ['c1', 'roi', 'scales'] : ['c1', 'roi', '', 'sizes'], ['up'], { mode: 'nearest' }),
          makeNode('Conv', ['up', 'W2'], ['y'], {}, { name: 'head' }),
        ],
        inits,
        [1, 3, 3, 3],
        [['y', [1, 2, 6, 6]]],
      );
      await prunesExactly(m, { ratio: 0.375 }, { groups: 1 });
    }
  });
});

describe('prune-channels through a squeeze-and-excitation block', () => {
  it('ReduceMean over H,W → Conv → Relu → Conv → Sigmoid → Mul joins the excitation with the trunk', async () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'trunk' }),
        makeNode('Relu', ['c1'], ['r1']),
        makeNode('ReduceMean', ['r1'], ['squeeze'], { axes: [2, 3], keepdims: 1 }),
        makeNode('Conv', ['squeeze', 'Wr', 'Br'], ['red'], {}, { name: 'reduce' }),
        makeNode('Relu', ['red'], ['rr']),
        makeNode('Conv', ['rr', 'We', 'Be'], ['exc'], {}, { name: 'excite' }),
        makeNode('Sigmoid', ['exc'], ['gate']),
        makeNode('Mul', ['r1', 'gate'], ['scaled']),
        makeNode('Conv', ['scaled', 'W2'], ['y'], {}, { name: 'head' }),
      ],
      [weight('W1', [8, 3, 1, 1], 0, DEAD8), weight('Wr', [4, 8, 1, 1], 0, DEAD4), weight('Br', [4], 0, DEAD4), weight('We', [8, 4, 1, 1], 0, DEAD8), weight('Be', [8]), weight('W2', [2, 8, 1, 1])],
      [1, 3, 4, 4],
      [['y', [1, 2, 4, 4]]],
    );
    const out = await prunesExactly(m, { ratio: 0.375, layers: { reduce: 0.5 } }, { groups: 2 });
    expect(dimsOf(out, 'excite')).toEqual([5, 2, 1, 1]);
    expect(dimsOf(out, 'head')).toEqual([2, 5, 1, 1]);
  });
});

describe('prune-channels leaves unsafe groups alone and says why', () => {
  it('skips a group that reaches a graph output, is read by Shape, feeds a grouped Conv, or is on the never-prune list', () => {
    const m = model(
      [
        makeNode('Conv', ['x', 'Wout'], ['out1'], {}, { name: 'toOutput' }),
        makeNode('Conv', ['x', 'Wshape'], ['s1'], {}, { name: 'shaped' }),
        makeNode('Shape', ['s1'], ['shp']),
        makeNode('Conv', ['x', 'Wg'], ['g1'], {}, { name: 'toGrouped' }),
        makeNode('Conv', ['g1', 'Wgrp'], ['g2'], { group: 2 }, { name: 'grouped' }),
        makeNode('Conv', ['x', 'Wn'], ['n1'], {}, { name: 'protected' }),
        makeNode('Conv', ['n1', 'Wn2'], ['n2'], {}, { name: 'protectedHead' }),
      ],
      [weight('Wout', [4, 3, 1, 1]), weight('Wshape', [4, 3, 1, 1]), weight('Wg', [4, 3, 1, 1]), weight('Wgrp', [4, 2, 1, 1]), weight('Wn', [4, 3, 1, 1]), weight('Wn2', [2, 4, 1, 1])],
      [1, 3, 2, 2],
      [
        ['out1', [1, 4, 2, 2]],
        ['shp', [4]],
        ['g2', [1, 4, 2, 2]],
        ['n2', [1, 2, 2, 2]],
      ],
    );
    const result = runPass(pruneChannelsPass, m, { ratio: 0.5, neverPrune: ['protected'] }, CHECKS);
    expect(result.modified).toBe(false);
    const why = Object.fromEntries(result.report.changes.filter((c) => c.action === 'kept').map((c) => [c.target, c.detail]));
    expect(why['toOutput']).toMatch(/reaches graph output 'out1'/);
    expect(why['shaped']).toMatch(/read by Shape/);
    expect(why['toGrouped']).toMatch(/grouped Conv \(group=2\)/);
    expect(why['protected']).toMatch(/neverPrune/);
    expect(result.report.stats['groupsPruned']).toBe(0);
    expect(result.report.warnings.length).toBeGreaterThan(0);
  });

  it('honours per-layer ratios, the maxRatio cap, minChannels and channelMultiple', () => {
    const m = model(
      [makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'a' }), makeNode('Conv', ['c1', 'W2'], ['c2'], {}, { name: 'b' }), makeNode('Conv', ['c2', 'W3'], ['y'], {}, { name: 'head' })],
      [weight('W1', [16, 3, 1, 1]), weight('W2', [16, 16, 1, 1]), weight('W3', [2, 16, 1, 1])],
      [1, 3, 2, 2],
      [['y', [1, 2, 2, 2]]],
    );
    const channels = (options: PruneChannelsOptions): [number, number] => {
      const out = runPass(pruneChannelsPass, m, options, CHECKS).model;
      return [dimsOf(out, 'a')[0]!, dimsOf(out, 'b')[0]!];
    };
    expect(channels({ ratio: 0.25 })).toEqual([12, 12]);
    expect(channels({ ratio: 0.25, layers: { b: 0.5 } })).toEqual([12, 8]);
    expect(channels({ ratio: 0.75, maxRatio: 0.5 })).toEqual([8, 8]);
    expect(channels({ ratio: 0.75, minChannels: 6 })).toEqual([6, 6]);
    expect(channels({ ratio: 0.3, channelMultiple: 4 })).toEqual([12, 12]);
  });

  it("ranks by the producers' weights by default and adds the consumers' input weights with importance 'group'", () => {
    // Every conv1 channel has the same output-weight norm; conv2 reads channel 0 with the smallest weights.
    const w2 = makeTensor('W2', DataType.FLOAT, [1, 4, 1, 1], [0.01, 1, 2, 3]);
    const m = model(
      [makeNode('Conv', ['x', 'W1'], ['c1'], {}, { name: 'conv1' }), makeNode('Relu', ['c1'], ['r']), makeNode('Conv', ['r', 'W2'], ['y'], {}, { name: 'conv2' })],
      [makeTensor('W1', DataType.FLOAT, [4, 1, 1, 1], [1, -1, 1, -1]), w2],
      [1, 1, 2, 2],
      [['y', [1, 1, 2, 2]]],
    );
    const keptColumns = (options: PruneChannelsOptions): number[] => {
      const out = runPass(pruneChannelsPass, m, options, CHECKS).model;
      const t = out.graph!.initializer!.find((x) => x.name === out.graph!.node![2]!.input![1])!;
      return Array.from(readTensor(t).data as Float32Array);
    };
    expect(keptColumns({ ratio: 0.25 })).toEqual([Math.fround(0.01), 1, 2]);
    expect(keptColumns({ ratio: 0.25, importance: 'group' })).toEqual([1, 2, 3]);
  });

  it('rejects options outside their ranges with a typed error', () => {
    const m = model([makeNode('Relu', ['x'], ['y'])], [], [1], [['y', [1]]]);
    expect(() => runPass(pruneChannelsPass, m, { ratio: 1.5 }, CHECKS)).toThrow(expect.objectContaining({ code: 'E_COMPRESS_METHOD', message: expect.stringMatching(/ratio/) as unknown }));
  });
});
