import { describe, expect, it } from 'vitest';
import { compressModel } from '../../../../src/compress/index.ts';
import { weightFanIn } from '../../../../src/compress/quantize/static-qdq.ts';
import { initializerMap } from '../../../../src/compress/quantize/common.ts';
import { DataType, decodeModel, encodeModel, makeGraph, makeModel, makeNode, makeValueInfo, type ModelProto } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { cosine, feedsOf, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

/** conv1: 1×1 over 2 channels (fan-in 2); conv2: 3×3 over 8 channels (fan-in 72); conv3: 1×1 over 8 (fan-in 8). */
function twoConvs(): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes: [
        makeNode('Conv', ['x', 'W1', 'B1'], ['c1'], {}, { name: 'conv1' }),
        makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu1' }),
        makeNode('Conv', ['r1', 'W2', 'B2'], ['c2'], { pads: [1, 1, 1, 1] }, { name: 'conv2' }),
        makeNode('Conv', ['c2', 'W3'], ['y'], {}, { name: 'conv3' }),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 2, 8, 8])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 8, 8, 8])],
      initializers: [randomTensor('W1', [8, 2, 1, 1], 1), randomTensor('B1', [8], 2, 0.1), randomTensor('W2', [8, 8, 3, 3], 3, 0.3), randomTensor('B2', [8], 4, 0.1), randomTensor('W3', [8, 8, 1, 1], 5, 0.3)],
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

describe('int8-static minFanIn', () => {
  it('counts products per output: Conv C_in/group·k², ConvTranspose averaged over strides, Gemm K with transB, MatMul K', () => {
    const g = makeGraph({
      name: 'g',
      nodes: [],
      inputs: [],
      outputs: [],
      initializers: [randomTensor('dw', [8, 1, 3, 3], 1), randomTensor('ct', [16, 4, 2, 2], 2), randomTensor('gt', [10, 64], 3), randomTensor('mm', [32, 10], 4)],
    });
    const inits = initializerMap(g);
    expect(weightFanIn(makeNode('Conv', ['x', 'dw'], ['y'], { group: 8 }), inits)).toBe(9);
    expect(weightFanIn(makeNode('ConvTranspose', ['x', 'ct'], ['y'], { strides: [2, 2] }), inits)).toBe(16);
    expect(weightFanIn(makeNode('Gemm', ['x', 'gt'], ['y'], { transB: 1 }), inits)).toBe(64);
    expect(weightFanIn(makeNode('MatMul', ['x', 'mm'], ['y']), inits)).toBe(32);
    expect(weightFanIn(makeNode('Conv', ['x', 'activation'], ['y']), inits)).toBeUndefined();
  });

  it('keeps the low-fan-in conv float with the reason in the report and quantizes the other, which onnxruntime fuses into QLinearConv', async () => {
    const m = twoConvs();
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2, 3].map((i) => ({ x: randomInput([1, 2, 8, 8], 10 + i) }))), open };
    const r = await compressModel(m, 'int8-static', { minFanIn: 32 }, { calibration }, encodeModel(m).length);
    const report = r.report.passes.find((p) => p.pass === 'int8-static')!;
    expect(report.changes.find((c) => c.target === 'conv1')).toMatchObject({ action: 'kept-float', detail: 'Conv: fan-in 2 < minFanIn 32' });
    expect(report.changes.find((c) => c.target === 'conv3')).toMatchObject({ action: 'kept-float', detail: 'Conv: fan-in 8 < minFanIn 32' });
    expect(report.changes.find((c) => c.target === 'conv2')?.action).toBe('quantized');
    const out = decodeModel(r.bytes);
    const optimized = await optimizedOpTypes(out);
    expect(optimized.filter((o) => o === 'QLinearConv')).toHaveLength(1);
    const feed = { x: randomInput([1, 2, 8, 8], 99) };
    expect(cosine((await runModel(m, feed)).y!.data as Float32Array, (await runModel(out, feed)).y!.data as Float32Array)).toBeGreaterThan(0.99);
    // The default (0) quantizes both.
    const all = await compressModel(m, 'int8-static', {}, { calibration }, encodeModel(m).length);
    expect(all.report.passes.find((p) => p.pass === 'int8-static')!.changes.filter((c) => c.action === 'quantized').map((c) => c.target)).toEqual(expect.arrayContaining(['conv1', 'conv2', 'conv3']));
  });

  it("lowFanIn 'weight-only' stores the low-fan-in convs' weights int8 (all 8 bits, no zero point) behind a DequantizeLinear, computes them in float, and still fuses the wide one", async () => {
    const m = twoConvs();
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2, 3].map((i) => ({ x: randomInput([1, 2, 8, 8], 10 + i) }))), open };
    const bytes = encodeModel(m).length;
    const floatLow = await compressModel(m, 'int8-static', { minFanIn: 32, reduceRange: true }, { calibration }, bytes);
    const r = await compressModel(m, 'int8-static', { minFanIn: 32, lowFanIn: 'weight-only', reduceRange: true }, { calibration }, bytes);
    const report = r.report.passes.find((p) => p.pass === 'int8-static')!;
    expect(report.changes.find((c) => c.target === 'conv1')).toMatchObject({ action: 'quantized', detail: 'Conv → int8 weight only, float compute (fan-in 2 < minFanIn 32)' });
    expect(report.stats.weightOnlyNodes).toBe(2);
    const out = decodeModel(r.bytes);
    const graph = out.graph!;
    const inits = initializerMap(graph);
    for (const name of ['conv1', 'conv3']) {
      const conv = graph.node!.find((n) => n.name === name)!;
      // conv1 reads the graph input as it is (conv3 reads the DQ after quantized conv2, which keeps conv2's unit fusable).
      if (name === 'conv1') expect(conv.input![0]).toBe('x');
      const dq = graph.node!.find((n) => n.output![0] === conv.input![1])!;
      expect(dq.opType).toBe('DequantizeLinear');
      expect(dq.input).toHaveLength(2);
      const w = inits.get(dq.input![0]!)!;
      expect(w.dataType).toBe(DataType.INT8);
      // reduceRange applies to weights an integer kernel reads; these keep the full [-127, 127].
      expect(Math.max(...Array.from(new Int8Array(w.rawData!.buffer, w.rawData!.byteOffset, w.rawData!.byteLength), Math.abs))).toBe(127);
    }
    expect(r.bytes.length).toBeLessThan(floatLow.bytes.length);
    const optimized = await optimizedOpTypes(out);
    expect(optimized.filter((o) => o === 'QLinearConv')).toHaveLength(1);
    const feed = { x: randomInput([1, 2, 8, 8], 99) };
    expect(cosine((await runModel(m, feed)).y!.data as Float32Array, (await runModel(out, feed)).y!.data as Float32Array)).toBeGreaterThan(0.99);
  });
});
