/**
 * What keeps the QDQ structure small (issue 4, int8 size <= 0.27x): zero points left out
 * when all zero and shared when equal, per-channel bias scales made by a Mul instead of
 * stored, float biases where onnxruntime quantizes them itself, no Q/DQ pair where its
 * propagation inserts the same one, short generated names. Each is checked against
 * onnxruntime: same values, same fused graph.
 */
import { describe, expect, it } from 'vitest';
import { calibrate, type OpenCalibrationSession } from '../../../../src/compress/quantize/calibrate.ts';
import { DEFAULT_STATIC_OP_TYPES, prepareStatic, quantizeStatic, type StaticSelection } from '../../../../src/compress/quantize/static-qdq.ts';
import { quantizeBias } from '../../../../src/compress/quantize/quant-math.ts';
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, readTensor, tensorToFloat32, validateModel, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { convGraph, cosine, feedsOf, maxAbsDiff, mlpGraph, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

const selection: StaticSelection = { opTypes: DEFAULT_STATIC_OP_TYPES, exclude: [], perChannel: true };

const open: OpenCalibrationSession = async (bytes) => {
  const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
  return { run: (f, o) => s.run(f, o), release: () => s.release() };
};

async function quantize(g: ModelProto, inputDims = [1, 3, 12, 12]) {
  const prepared = prepareStatic(g, selection);
  const feeds = feedsOf(() => [0, 1, 2, 3].map((i) => ({ x: randomInput(inputDims, 100 + i) })));
  const cal = await calibrate(prepared.model, prepared.plan.tensorsToCalibrate, feeds, open, { method: 'minmax' });
  return quantizeStatic(prepared.model, { ...selection, activationType: 'uint8', reduceRange: true, ranges: cal.ranges });
}

/** DQ(data, scale[, zero]) + x, so the decoded values come out as the graph output. */
function dqModel(data: TensorProto, scale: TensorProto, zero: TensorProto | undefined, axis: number | undefined): ModelProto {
  const dims = (data.dims ?? []).map(Number);
  return makeModel({
    graph: makeGraph({
      name: 'dq',
      nodes: [
        makeNode('DequantizeLinear', zero ? ['data', 'scale', 'zero'] : ['data', 'scale'], ['decoded'], axis === undefined ? {} : { axis }),
        makeNode('Add', ['decoded', 'x'], ['y']),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, dims)],
      outputs: [makeValueInfo('y', DataType.FLOAT, dims)],
      initializers: [data, scale, ...(zero ? [zero] : [])],
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

/** The DequantizeLinear that writes `tensor`, else undefined. */
function dqOf(graph: NonNullable<ModelProto['graph']>, tensor: string): NodeProto | undefined {
  return graph.node!.find((n) => n.opType === 'DequantizeLinear' && n.output![0] === tensor);
}

/** The model with each float Conv/Gemm bias replaced by the int32 DQ form the quantizer used to write (quantizeBias, stored scale). */
function withInt32Biases(m: ModelProto): ModelProto {
  const out = structuredClone(m);
  const g = out.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const nodes: NodeProto[] = [];
  for (const node of g.node!) {
    const bias = inits.get(node.input?.[2] ?? '');
    if ((node.opType === 'Conv' || node.opType === 'Gemm') && bias?.dataType === DataType.FLOAT) {
      const inputScale = tensorToFloat32(inits.get(dqOf(g, node.input![0]!)!.input![1]!)!)[0]!;
      const weightScales = tensorToFloat32(inits.get(dqOf(g, node.input![1]!)!.input![1]!)!);
      const qb = quantizeBias(tensorToFloat32(bias), inputScale, weightScales);
      const name = `${bias.name}_int32`;
      const perChannel = weightScales.length > 1;
      g.initializer!.push(makeTensor(name, DataType.INT32, [qb.data.length], qb.data), makeTensor(`${name}_scale`, DataType.FLOAT, perChannel ? [qb.scales.length] : [], qb.scales));
      nodes.push(makeNode('DequantizeLinear', [name, `${name}_scale`], [`${name}_dq`], perChannel ? { axis: 0 } : {}));
      g.initializer = g.initializer!.filter((t) => t !== bias);
      node.input![2] = `${name}_dq`;
    }
    nodes.push(node);
  }
  g.node = nodes;
  return out;
}

/** The model with an explicit Q/DQ pair after every node of `opTypes`, with the parameters of the DQ it reads. */
function withExplicitPairs(m: ModelProto, opTypes: readonly string[]): ModelProto {
  const out = structuredClone(m);
  const g = out.graph!;
  const nodes: NodeProto[] = [];
  for (const node of g.node!) {
    nodes.push(node);
    if (!opTypes.includes(node.opType!)) continue;
    // Its input is read through a DQ: one of the model's, or one inserted here after an earlier node.
    const dq = [...nodes, ...g.node!].find((n) => n.opType === 'DequantizeLinear' && n.output![0] === node.input![0])!;
    const t = node.output![0]!;
    const params = dq.input!.slice(1);
    nodes.push(makeNode('QuantizeLinear', [t, ...params], [`${t}_q`]), makeNode('DequantizeLinear', [`${t}_q`, ...params], [`${t}_dq`]));
    for (const reader of g.node!) if (reader !== node) reader.input = reader.input!.map((i) => (i === t ? `${t}_dq` : i));
  }
  g.node = nodes;
  return out;
}

/** x → Conv → Relu → MaxPool → Transpose → Conv → GlobalAveragePool → y, opset 13; `sideReader` also reads the Relu output. */
function poolTransposeGraph(sideReader: boolean): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes: [
        makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' }),
        makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu1' }),
        makeNode('MaxPool', ['r1'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool' }),
        makeNode('Transpose', ['p'], ['t'], { perm: [0, 1, 3, 2] }, { name: 'transpose' }),
        makeNode('Conv', ['t', 'w2', 'b2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv2' }),
        makeNode('GlobalAveragePool', ['c2'], ['y'], {}, { name: 'gap' }),
        ...(sideReader ? [makeNode('GlobalAveragePool', ['r1'], ['y2'], {}, { name: 'side' })] : []),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 3, 12, 12])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 8, 1, 1]), ...(sideReader ? [makeValueInfo('y2', DataType.FLOAT, [1, 8, 1, 1])] : [])],
      initializers: [randomTensor('w1', [8, 3, 3, 3], 41, 0.4), randomTensor('b1', [8], 42, 0.1), randomTensor('w2', [8, 8, 3, 3], 43, 0.3), randomTensor('b2', [8], 44, 0.1)],
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe('compact QDQ', () => {
  it('a Conv or Gemm whose output goes into a QuantizeLinear stores its bias as the float q·scale of the int32 form: onnxruntime quantizes it on load into that int32 bias, with the same fused kernels and outputs, and the unoptimized graph computes the same too', async () => {
    for (const [g, dims, fused] of [[convGraph(), [1, 3, 12, 12], 'QLinearConv'], [mlpGraph(), [4, 16], 'QGemm']] as const) {
      const r = await quantize(g, [...dims]);
      const graph = r.model.graph!;
      const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
      const floatBiased = graph.node!.filter((n) => (n.opType === 'Conv' || n.opType === 'Gemm') && inits.get(n.input?.[2] ?? '')?.dataType === DataType.FLOAT);
      expect(floatBiased.length).toBeGreaterThan(0);
      const int32 = withInt32Biases(r.model);
      const x = randomInput([...dims], 5);
      for (const level of ['disabled', 'all'] as const) {
        const [a, b] = [await runModel(r.model, { x }, level), await runModel(int32, { x }, level)];
        expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBe(0);
      }
      const [ta, tb] = [await optimizedOpTypes(r.model), await optimizedOpTypes(int32)];
      expect(sorted(ta)).toEqual(sorted(tb));
      expect(ta).toContain(fused);
      expect(ta).not.toContain('Conv');
      expect(ta).not.toContain('Gemm');
    }
  });

  it('no Q/DQ pair after a MaxPool or Transpose read through a DQ of its own: onnxruntime\'s QDQ propagation inserts the same pair, so the fused graph and the outputs are unchanged', async () => {
    const r = await quantize(poolTransposeGraph(false));
    const graph = r.model.graph!;
    const quantizedTensors = graph.node!.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]);
    expect(quantizedTensors).not.toContain('p');
    expect(quantizedTensors).not.toContain('t');
    expect(graph.node!.find((n) => n.name === 'conv2')!.input![0]).toBe('t');
    const explicit = withExplicitPairs(r.model, ['MaxPool', 'Transpose']);
    const x = randomInput([1, 3, 12, 12], 6);
    for (const level of ['disabled', 'all'] as const) {
      const [a, b] = [await runModel(r.model, { x }, level), await runModel(explicit, { x }, level)];
      expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBe(0);
    }
    const [ta, tb] = [await optimizedOpTypes(r.model), await optimizedOpTypes(explicit)];
    expect(sorted(ta)).toEqual(sorted(tb));
    expect(ta.filter((t) => t === 'QLinearConv')).toHaveLength(2);
    expect(ta).not.toContain('Conv');
    // A second reader of the MaxPool's input: onnxruntime would not move that DQ, so the pair after the MaxPool stays.
    const shared = await quantize(poolTransposeGraph(true));
    const sharedQuantized = shared.model.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]);
    expect(sharedQuantized).toContain('p');
    expect(sharedQuantized).not.toContain('t');
    expect((await optimizedOpTypes(shared.model)).filter((t) => t === 'QLinearConv')).toHaveLength(2);
  });

  it('activation zero points of the same value are one initializer', async () => {
    const r = await quantize(convGraph());
    const graph = r.model.graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const qs = graph.node!.filter((n) => n.opType === 'QuantizeLinear');
    const zeroPoints = [...new Set(qs.map((n) => n.input![2]!))];
    const values = zeroPoints.map((z) => (readTensor(inits.get(z)!).data as Uint8Array)[0]);
    expect(new Set(values).size).toBe(values.length);
    expect(zeroPoints.length).toBeLessThan(qs.length);
  });

  it('a DequantizeLinear without a zero point decodes per-channel int8 weights and int32 biases exactly as with an all-zero one', async () => {
    const scale = makeTensor('scale', DataType.FLOAT, [3], new Float32Array([0.5, 0.031, 7.25]));
    const cases = [
      { data: makeTensor('data', DataType.INT8, [3, 4], new Int8Array([-127, -1, 0, 1, 127, 64, -64, 3, -3, 100, -100, 5])), zero: makeTensor('zero', DataType.INT8, [3], new Int8Array(3)) },
      { data: makeTensor('data', DataType.INT32, [3], new Int32Array([-2_000_000_000, 17, 2_000_000_000])), zero: makeTensor('zero', DataType.INT32, [3], new Int32Array(3)) },
    ];
    for (const { data, zero } of cases) {
      const dims = (data.dims ?? []).map(Number);
      const x = { dataType: DataType.FLOAT, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) };
      const [withZero, without] = [await runModel(dqModel(data, scale, zero, 0), { x }, 'disabled'), await runModel(dqModel(data, scale, undefined, 0), { x }, 'disabled')];
      expect(Array.from(without.y!.data as Float32Array)).toEqual(Array.from(withZero.y!.data as Float32Array));
      // And the values are data × scale per channel (not all zero by accident).
      expect((without.y!.data as Float32Array)[0]).toBe(data.dataType === DataType.INT8 ? -63.5 : -1e9);
    }
  });

  it('Conv weights and int32 biases carry no zero point; a per-channel int32 bias scale is a Mul of the scales, bit-identical to the stored product and folded away by onnxruntime before its QLinearConv/QGemm fusion', async () => {
    const r = await quantize(convGraph());
    const graph = r.model.graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const convInputs = new Set(graph.node!.filter((n) => n.opType === 'Conv').flatMap((n) => n.input!));
    const weightDqs = graph.node!.filter((n) => n.opType === 'DequantizeLinear' && convInputs.has(n.output![0]!) && inits.get(n.input![0]!)?.dataType === DataType.INT8);
    expect(weightDqs).toHaveLength(3);
    const biasDqs = graph.node!.filter((n) => n.opType === 'DequantizeLinear' && inits.get(n.input![0]!)?.dataType === DataType.INT32);
    // The Gemm head writes the float graph output, so onnxruntime does not quantize its bias: it is stored int32.
    expect(biasDqs).toHaveLength(1);
    for (const dq of [...weightDqs, ...biasDqs]) expect(dq.input).toHaveLength(2);
    const muls = graph.node!.filter((n) => n.opType === 'Mul');
    expect(muls).toHaveLength(1);
    // The same model with each Mul replaced by its product stored as an initializer (the previous form).
    const stored = structuredClone(r.model);
    const g2 = stored.graph!;
    for (const mul of g2.node!.filter((n) => n.opType === 'Mul')) {
      const [a, b] = mul.input!.map((i) => tensorToFloat32(inits.get(i)!));
      const product = new Float32Array(b!.length);
      for (let c = 0; c < b!.length; c++) product[c] = Math.fround(a![0]! * b![c]!);
      g2.initializer!.push(makeTensor(mul.output![0]!, DataType.FLOAT, [b!.length], product));
    }
    g2.node = g2.node!.filter((n) => n.opType !== 'Mul');
    const x = randomInput([1, 3, 12, 12], 5);
    for (const level of ['disabled', 'all'] as const) {
      const [a, b] = [await runModel(r.model, { x }, level), await runModel(stored, { x }, level)];
      expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBe(0);
    }
    const types = await optimizedOpTypes(r.model);
    expect(types.filter((t) => t === 'QLinearConv')).toHaveLength(3);
    expect(types).toContain('QGemm');
    expect(types).not.toContain('Mul');
    expect(types).not.toContain('Conv');
    expect(types).not.toContain('Gemm');
  });

  it('Gemm and MatMul keep their weight zero points, without which onnxruntime does not fuse them into QGemm and QLinearMatMul', async () => {
    const r = await quantize(mlpGraph(), [4, 16]);
    const graph = r.model.graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const weightDqs = graph.node!.filter((n) => n.opType === 'DequantizeLinear' && inits.get(n.input![0]!)?.dataType === DataType.INT8);
    expect(weightDqs.length).toBeGreaterThan(0);
    for (const dq of weightDqs) expect(dq.input).toHaveLength(3);
    const types = await optimizedOpTypes(r.model);
    expect(types).toContain('QGemm');
    expect(types).toContain('QLinearMatMul');
    expect(types).not.toContain('Gemm');
    expect(types).not.toContain('MatMul');
  });

  it('generated names are short, unique, and step around names the model already uses', async () => {
    const g = convGraph();
    // '0q' and '0d' are what the first quantized tensor (x) would get: the model already uses them.
    for (const n of g.graph!.node!) {
      n.input = n.input!.map((i) => (i === 'c1' ? '0q' : i === 'r1' ? '0d' : i));
      n.output = n.output!.map((o) => (o === 'c1' ? '0q' : o === 'r1' ? '0d' : o));
    }
    const before = new Set([...g.graph!.node!.flatMap((n) => [n.name!, ...n.output!]), ...g.graph!.initializer!.map((t) => t.name!), 'x']);
    const r = await quantize(g);
    const graph = r.model.graph!;
    const tensors = [...graph.node!.flatMap((n) => n.output!), ...graph.initializer!.map((t) => t.name!)];
    expect(new Set(tensors).size).toBe(tensors.length);
    const nodeNames = graph.node!.map((n) => n.name!);
    expect(new Set(nodeNames).size).toBe(nodeNames.length);
    const generated = [...tensors, ...nodeNames].filter((n) => !before.has(n));
    expect(generated.length).toBeGreaterThan(20);
    for (const name of generated) expect(name.length, name).toBeLessThanOrEqual(5);
    expect(validateModel(r.model).filter((f) => f.severity === 'error')).toEqual([]);
    const x = randomInput([1, 3, 12, 12], 5);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.995);
  });
});
