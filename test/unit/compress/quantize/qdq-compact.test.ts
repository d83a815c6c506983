/**
 * What keeps the QDQ structure small (issue 4, int8 size <= 0.27x): zero points left out
 * when all zero, per-channel bias scales made by a Mul instead of stored, short generated
 * names. Each is checked against onnxruntime: same values, same fused graph.
 */
import { describe, expect, it } from 'vitest';
import { calibrate, type OpenCalibrationSession } from '../../../../src/compress/quantize/calibrate.ts';
import { DEFAULT_STATIC_OP_TYPES, prepareStatic, quantizeStatic, type StaticSelection } from '../../../../src/compress/quantize/static-qdq.ts';
import { DataType, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, tensorToFloat32, validateModel, type ModelProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { convGraph, cosine, feedsOf, maxAbsDiff, mlpGraph, optimizedOpTypes, randomInput, runModel } from './graphs.ts';

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

describe('compact QDQ', () => {
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

  it('Conv weights and biases carry no zero point; the per-channel bias scale is a Mul of the scales, bit-identical to the stored product and folded away by onnxruntime before its QLinearConv fusion', async () => {
    const r = await quantize(convGraph());
    const graph = r.model.graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const convInputs = new Set(graph.node!.filter((n) => n.opType === 'Conv').flatMap((n) => n.input!));
    const dqs = graph.node!.filter((n) => n.opType === 'DequantizeLinear' && convInputs.has(n.output![0]!) && new Set<number>([DataType.INT8, DataType.INT32]).has(inits.get(n.input![0]!)?.dataType ?? -1));
    expect(dqs.length).toBeGreaterThan(4);
    for (const dq of dqs) expect(dq.input).toHaveLength(2);
    const muls = graph.node!.filter((n) => n.opType === 'Mul');
    expect(muls.length).toBeGreaterThan(0);
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

  it('Gemm and MatMul keep their weight zero points and stored bias scales, without which onnxruntime does not fuse them into QGemm and QLinearMatMul', async () => {
    const r = await quantize(mlpGraph(), [4, 16]);
    const graph = r.model.graph!;
    const inits = new Map(graph.initializer!.map((t) => [t.name!, t]));
    const weightDqs = graph.node!.filter((n) => n.opType === 'DequantizeLinear' && inits.get(n.input![0]!)?.dataType === DataType.INT8);
    expect(weightDqs.length).toBeGreaterThan(0);
    for (const dq of weightDqs) expect(dq.input).toHaveLength(3);
    expect(graph.node!.filter((n) => n.opType === 'Mul')).toHaveLength(0);
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
