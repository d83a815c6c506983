import { describe, expect, it } from 'vitest';
import { calibrate, type OpenCalibrationSession } from '../../../../src/compress/quantize/calibrate.ts';
import { DEFAULT_STATIC_OP_TYPES, planStatic, prepareStatic, quantizeStatic, type StaticSelection } from '../../../../src/compress/quantize/static-qdq.ts';
import { DataType, getAttrInt, makeGraph, makeModel, makeNode, makeValueInfo, readTensor, tensorToFloat32, validateModel, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { quantizeBias } from '../../../../src/compress/quantize/quant-math.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { convGraph, cosine, feedsOf, matmul3dGraph, maxAbsDiff, mlpGraph, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

const selection: StaticSelection = { opTypes: DEFAULT_STATIC_OP_TYPES, exclude: [], perChannel: true };

const open: OpenCalibrationSession = async (bytes) => {
  const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
  return { run: (f, o) => s.run(f, o), release: () => s.release() };
};

async function quantize(g: ModelProto, dims: number[], sel: StaticSelection = selection, method: 'minmax' | 'percentile' | 'entropy' = 'minmax') {
  const prepared = prepareStatic(g, sel);
  const feeds = feedsOf(() => [0, 1, 2, 3, 4, 5].map((i) => ({ x: randomInput(dims, 100 + i) })));
  const cal = await calibrate(prepared.model, prepared.plan.tensorsToCalibrate, feeds, open, { method });
  return quantizeStatic(prepared.model, { ...sel, activationType: 'uint8', reduceRange: true, ranges: cal.ranges });
}

describe('planStatic', () => {
  it('folds a Relu that follows a quantized Conv into the Conv\'s output range, and calibrates the Relu output instead', () => {
    const plan = planStatic(convGraph(), selection);
    expect([...plan.removed.keys()].map((n) => n.name)).toEqual(['relu']);
    expect(plan.tensorsToCalibrate).toContain('r1');
    expect(plan.tensorsToCalibrate).not.toContain('c1');
    // The graph output stays float: it is not calibrated.
    expect(plan.tensorsToCalibrate).not.toContain('y');
    expect(plan.minOpset).toBe(13);
  });
  it('honours --exclude and --op-types and reports what stays float', () => {
    const plan = planStatic(convGraph(), { ...selection, exclude: ['conv_depthwise'], opTypes: ['Conv', 'Relu'] });
    expect(plan.nodes.map((n) => n.node.name)).toEqual(['conv_bias', 'conv_grouped']);
    expect(plan.keptFloat.map((c) => c.target)).toEqual(['conv_depthwise']);
  });
});

describe('int8-static QDQ', () => {
  it('stores weights int8 per channel behind a DequantizeLinear with the right axis; an int32 bias (where onnxruntime does not make it) has scale = input × weight scale', async () => {
    const r = await quantize(convGraph(), [1, 3, 12, 12]);
    const graph = r.model.graph!;
    const init = new Map(graph.initializer!.map((t) => [t.name!, t]));
    expect(graph.initializer!.filter((t) => t.dataType === DataType.FLOAT && (t.dims ?? []).length > 1)).toEqual([]);
    const conv = graph.node!.find((n) => n.name === 'conv_bias')!;
    const wDq = graph.node!.find((n) => n.output![0] === conv.input![1])!;
    expect(wDq.opType).toBe('DequantizeLinear');
    expect(getAttrInt(wDq, 'axis')).toBe(0);
    expect(init.get(wDq.input![0]!)!.dataType).toBe(DataType.INT8);
    // Symmetric int8 weights have all-zero zero points: left out (DequantizeLinear's default).
    expect(wDq.input).toHaveLength(2);
    // Its output goes into a QuantizeLinear: the bias is stored float, as q·scale of its int32 form, and onnxruntime quantizes it on load.
    const bias = init.get(conv.input![2]!)!;
    expect(bias.dataType).toBe(DataType.FLOAT);
    const xScale = tensorToFloat32(init.get(graph.node!.find((n) => n.output![0] === conv.input![0])!.input![1]!)!)[0]!;
    const original = convGraph().graph!.initializer!.find((t) => t.name === 'c1b')!;
    const qb = quantizeBias(tensorToFloat32(original), xScale, tensorToFloat32(init.get(wDq.input![1]!)!));
    expect(Array.from(tensorToFloat32(bias))).toEqual(Array.from(qb.data, (q, c) => Math.fround(q * qb.scales[c]!)));
    // The Gemm head writes the float graph output: its bias is int32, its per-channel scale a Mul of the input and weight scales.
    const head = graph.node!.find((n) => n.name === 'head')!;
    const hwDq = graph.node!.find((n) => n.output![0] === head.input![1])!;
    expect(getAttrInt(hwDq, 'axis')).toBe(0);
    const bDq = graph.node!.find((n) => n.output![0] === head.input![2])!;
    expect(init.get(bDq.input![0]!)!.dataType).toBe(DataType.INT32);
    expect(bDq.input).toHaveLength(2);
    const xDq = graph.node!.find((n) => n.output![0] === head.input![0])!;
    const bScaleMul = graph.node!.find((n) => n.output![0] === bDq.input![1])!;
    expect(bScaleMul.opType).toBe('Mul');
    expect(bScaleMul.input).toEqual([xDq.input![1], hwDq.input![1]]);
    expect(r.model.opsetImport![0]!.version).toBe(13);
    expect(validateModel(r.model).filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('runs in onnxruntime close to float on convs with/without bias, grouped, depthwise, residual Add, Concat and Gemm', async () => {
    const g = convGraph();
    const r = await quantize(g, [1, 3, 12, 12]);
    expect(r.report.stats.quantizedNodes).toBeGreaterThanOrEqual(8);
    const x = randomInput([1, 3, 12, 12], 5);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(b.y!.dims).toEqual(a.y!.dims);
    // Six calibration samples: the test input can step outside their ranges a little.
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.995);
  });

  it('is fused by onnxruntime into QLinearConv / QGemm / QLinearAdd / QLinearConcat', async () => {
    const types = await optimizedOpTypes((await quantize(convGraph(), [1, 3, 12, 12])).model);
    expect(types).toContain('QLinearConv');
    expect(types).toContain('QLinearAdd');
    expect(types).toContain('QLinearConcat');
    expect(types).not.toContain('Conv');
  });

  it('handles MatMul with a 3-D input, Gemm with transB, and a weight shared by two MatMuls', async () => {
    for (const [g, dims] of [[matmul3dGraph(), [2, 5, 16]], [mlpGraph(), [4, 16]]] as const) {
      const r = await quantize(g, [...dims]);
      const x = randomInput([...dims], 7);
      const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
      expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.999);
    }
    const shared = await quantize(mlpGraph(), [4, 16]);
    const sharedGraph = shared.model.graph!;
    const weightDq = (name: string) => {
      const consumer = sharedGraph.node!.find((n) => n.name === name)!;
      return sharedGraph.node!.find((n) => n.output![0] === consumer.input![1])!;
    };
    // One DQ per consumer, both over the one int8 copy of the shared weight.
    const [dq1, dq2] = [weightDq('fc2'), weightDq('fc2_shared')];
    expect(dq1).not.toBe(dq2);
    expect(dq1.input![0]).toBe(dq2.input![0]);
    const dqData = new Set(sharedGraph.node!.filter((n) => n.opType === 'DequantizeLinear').map((n) => n.input![0]!));
    expect(sharedGraph.initializer!.filter((t) => t.dataType === DataType.INT8 && dqData.has(t.name!))).toHaveLength(2);
  });

  it('percentile and entropy calibration also produce valid, accurate models', async () => {
    for (const method of ['percentile', 'entropy'] as const) {
      const g = convGraph();
      const r = await quantize(g, [1, 3, 12, 12], selection, method);
      const x = randomInput([1, 3, 12, 12], 5);
      const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
      expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99);
    }
  });

  it('int8 activations give int8 zero points', async () => {
    const prepared = prepareStatic(convGraph(), selection);
    const feeds = feedsOf(() => [{ x: randomInput([1, 3, 12, 12], 1) }]);
    const cal = await calibrate(prepared.model, prepared.plan.tensorsToCalibrate, feeds, open, { method: 'minmax' });
    const r = quantizeStatic(prepared.model, { ...selection, activationType: 'int8', reduceRange: true, ranges: cal.ranges });
    const q = r.model.graph!.node!.find((n) => n.opType === 'QuantizeLinear')!;
    const zp = r.model.graph!.initializer!.find((t) => t.name === q.input![2])!;
    expect(readTensor(zp).dataType).toBe(DataType.INT8);
  });

  it('a node whose input has no calibrated range stays float and is named', () => {
    const r = quantizeStatic(convGraph(), { ...selection, activationType: 'uint8', reduceRange: false, ranges: new Map() });
    expect(r.modified).toBe(false);
    expect(r.report.changes.find((c) => c.target === 'conv_bias')?.detail).toMatch(/no calibrated range for 'x'/);
  });
});

/** A graph of the given nodes over input x [1, 4, 8, 8], float32 throughout, opset 13. */
function graphOf(nodes: NodeProto[], outputs: string[], initializers: TensorProto[]): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes,
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 4, 8, 8])],
      outputs: outputs.map((o) => makeValueInfo(o, DataType.FLOAT, null)),
      initializers,
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

describe('int8-static QDQ: float paths and folded activations', () => {
  it('an excluded node whose input comes from a float producer (here the graph input) reads the exact float value, not the Q/DQ pair quantized consumers share', async () => {
    const g = graphOf(
      [
        makeNode('Conv', ['x', 'wq'], ['a'], { kernel_shape: [1, 1] }, { name: 'quantized_conv' }),
        makeNode('Conv', ['x', 'wf'], ['b'], { kernel_shape: [1, 1] }, { name: 'float_conv' }),
        makeNode('Add', ['a', 'b'], ['y'], {}, { name: 'join' }),
      ],
      ['y', 'b'],
      [randomTensor('wq', [4, 4, 1, 1], 21, 0.5), randomTensor('wf', [4, 4, 1, 1], 22, 0.5)],
    );
    const r = await quantize(g, [1, 4, 8, 8], { ...selection, exclude: ['float_conv'] });
    const floatConv = r.model.graph!.node!.find((n) => n.name === 'float_conv')!;
    expect(floatConv.input![0]).toBe('x');
    // The quantized consumer still reads x through its DQ.
    const quantizedConv = r.model.graph!.node!.find((n) => n.name === 'quantized_conv')!;
    expect(quantizedConv.input![0]).not.toBe('x');
    const x = { x: randomInput([1, 4, 8, 8], 7) };
    const [fp, q] = [await runModel(g, x, 'disabled'), await runModel(r.model, x, 'disabled')];
    expect(maxAbsDiff(fp.b!.data as Float32Array, q.b!.data as Float32Array)).toBeLessThan(1e-6);
  });

  it('a Relu after a direct 8-bit op (MaxPool) is kept: that op writes with its input\'s parameters, negatives included, so folding would drop the Relu', async () => {
    const g = graphOf(
      [
        makeNode('Conv', ['x', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' }),
        makeNode('MaxPool', ['c1'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool' }),
        makeNode('Relu', ['p'], ['r'], {}, { name: 'relu' }),
        makeNode('Conv', ['r', 'w2'], ['y'], { kernel_shape: [1, 1] }, { name: 'conv2' }),
      ],
      ['y'],
      [randomTensor('w1', [4, 4, 3, 3], 31, 0.5), randomTensor('w2', [4, 4, 1, 1], 32, 0.5)],
    );
    expect(planStatic(g, selection).removed.size).toBe(0);
    const r = await quantize(g, [1, 4, 8, 8]);
    expect(r.model.graph!.node!.some((n) => n.opType === 'Relu')).toBe(true);
    const x = { x: randomInput([1, 4, 8, 8], 8) };
    const [fp, q] = [await runModel(g, x), await runModel(r.model, x)];
    expect(cosine(fp.y!.data as Float32Array, q.y!.data as Float32Array)).toBeGreaterThan(0.99);
  });
});
