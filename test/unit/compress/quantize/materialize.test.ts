import { describe, expect, it } from 'vitest';
import { compressModel } from '../../../../src/compress/index.ts';
import { materializeWeightOnly } from '../../../../src/compress/quantize/materialize.ts';
import { DataType, decodeModel, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { convGraph, feedsOf, maxAbsDiff, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

/** DQ(weight) → MatMul: the weight DQ has the given zero point and axis. */
function dqMatMul(dataType: number, data: number[], scale: number[], zero: number[] | undefined, axis: number): ModelProto {
  const zp = zero === undefined ? [] : [makeTensor('wz', dataType, scale.length === 1 ? [] : [scale.length], zero)];
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes: [makeNode('DequantizeLinear', ['wq', 'ws', ...(zero ? ['wz'] : [])], ['w'], { axis }), makeNode('MatMul', ['x', 'w'], ['y'])],
      inputs: [makeValueInfo('x', DataType.FLOAT, [2, 3])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [2, 4])],
      initializers: [makeTensor('wq', dataType, [3, 4], data), makeTensor('ws', DataType.FLOAT, scale.length === 1 ? [] : [scale.length], scale), ...zp],
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

describe('materializeWeightOnly', () => {
  it('replaces a weight DQ feeding a float node by its float value, exactly as onnxruntime dequantizes (per tensor with a uint8 zero point, per channel on either axis)', async () => {
    const x = randomInput([2, 3], 1);
    const cases = [
      dqMatMul(DataType.UINT8, [0, 1, 2, 255, 128, 127, 3, 250, 9, 90, 200, 17], [0.37], [128], 1),
      dqMatMul(DataType.INT8, [-127, 1, 2, 127, -64, 63, 3, -50, 9, 90, -100, 17], [0.5, 0.031, 7.25, 1e-3], undefined, 1),
      dqMatMul(DataType.INT8, [-127, 1, 2, 127, -64, 63, 3, -50, 9, 90, -100, 17], [0.5, 0.031, 7.25], [1, -2, 3], 0),
    ];
    for (const m of cases) {
      const r = materializeWeightOnly(m);
      expect(r.materialized).toEqual(['w']);
      expect(r.model.graph!.node!.map((n) => n.opType)).toEqual(['MatMul']);
      expect(r.model.graph!.initializer!.map((t) => [t.name, t.dataType])).toEqual([['w', DataType.FLOAT]]);
      const [a, b] = [await runModel(m, { x }, 'disabled'), await runModel(r.model, { x }, 'disabled')];
      expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBe(0);
    }
    // The input model is not changed.
    expect(cases[0]!.graph!.node!).toHaveLength(2);
  });

  it('on an int8-static lowFanIn=weight-only model: the weight-only convs get float weights back, the int8 unit (DQ → Conv → Q) keeps its DQ and still fuses, outputs unchanged', async () => {
    const m = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [
          makeNode('Conv', ['x', 'W1', 'B1'], ['c1'], {}, { name: 'narrow' }),
          makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu' }),
          makeNode('Conv', ['r1', 'W2', 'B2'], ['c2'], { pads: [1, 1, 1, 1] }, { name: 'wide' }),
          makeNode('Conv', ['c2', 'W3'], ['y'], {}, { name: 'narrow_out' }),
        ],
        inputs: [makeValueInfo('x', DataType.FLOAT, [1, 2, 8, 8])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [1, 8, 8, 8])],
        initializers: [randomTensor('W1', [8, 2, 1, 1], 1), randomTensor('B1', [8], 2, 0.1), randomTensor('W2', [8, 8, 3, 3], 3, 0.3), randomTensor('B2', [8], 4, 0.1), randomTensor('W3', [8, 8, 1, 1], 5, 0.3)],
      }),
      opsets: [{ domain: '', version: 13 }],
    });
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2].map((i) => ({ x: randomInput([1, 2, 8, 8], 10 + i) }))), open };
    const q = decodeModel((await compressModel(m, 'int8-static', { minFanIn: 32, lowFanIn: 'weight-only' }, { calibration }, encodeModel(m).length)).bytes);
    const r = materializeWeightOnly(q);
    const weightOf = (name: string) => {
      const node = r.model.graph!.node!.find((n) => n.name === name)!;
      return r.model.graph!.initializer!.find((t) => t.name === node.input![1]);
    };
    expect(r.materialized).toHaveLength(2);
    expect(weightOf('narrow')?.dataType).toBe(DataType.FLOAT);
    expect(weightOf('narrow_out')?.dataType).toBe(DataType.FLOAT);
    // The wide conv writes into a Q/DQ pair: an int8 node unit, its weight DQ stays.
    expect(weightOf('wide')).toBeUndefined();
    const x = randomInput([1, 2, 8, 8], 99);
    const [a, b] = [await runModel(q, { x }, 'disabled'), await runModel(r.model, { x }, 'disabled')];
    expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBe(0);
    const types = await optimizedOpTypes(r.model);
    expect(types.filter((t) => t === 'QLinearConv')).toHaveLength(1);
  });

  it('leaves the weight DQ of a Conv that reads a MaxPool output (no Q/DQ pair stored there: onnxruntime inserts it) to its QLinearConv fusion', async () => {
    const m = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [
          makeNode('Conv', ['x', 'W1', 'B1'], ['c1'], { pads: [1, 1, 1, 1] }, { name: 'conv1' }),
          makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu' }),
          makeNode('MaxPool', ['r1'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool' }),
          makeNode('Conv', ['p', 'W2', 'B2'], ['c2'], { pads: [1, 1, 1, 1] }, { name: 'conv2' }),
          makeNode('GlobalAveragePool', ['c2'], ['y'], {}, { name: 'gap' }),
        ],
        inputs: [makeValueInfo('x', DataType.FLOAT, [1, 4, 8, 8])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [1, 8, 1, 1])],
        initializers: [randomTensor('W1', [8, 4, 3, 3], 1, 0.3), randomTensor('B1', [8], 2, 0.1), randomTensor('W2', [8, 8, 3, 3], 3, 0.3), randomTensor('B2', [8], 4, 0.1)],
      }),
      opsets: [{ domain: '', version: 13 }],
    });
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2].map((i) => ({ x: randomInput([1, 4, 8, 8], 20 + i) }))), open };
    const q = decodeModel((await compressModel(m, 'int8-static', {}, { calibration }, encodeModel(m).length)).bytes);
    expect(q.graph!.node!.find((n) => n.name === 'conv2')!.input![0]).toBe('p');
    const r = materializeWeightOnly(q);
    expect(r.materialized).toEqual([]);
    expect((await optimizedOpTypes(r.model)).filter((t) => t === 'QLinearConv')).toHaveLength(2);
  });

  it('leaves the weight DQ of an int8-static Gemm head that writes the float graph output: onnxruntime fuses it into QGemm without a Q after it', async () => {
    const m = convGraph();
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2].map((i) => ({ x: randomInput([1, 3, 12, 12], 30 + i) }))), open };
    const q = decodeModel((await compressModel(m, 'int8-static', {}, { calibration }, encodeModel(m).length)).bytes);
    const r = materializeWeightOnly(q);
    expect(r.materialized).toEqual([]);
    const types = await optimizedOpTypes(r.model);
    expect(types).toContain('QGemm');
    expect(types).not.toContain('Gemm');
  });
});
