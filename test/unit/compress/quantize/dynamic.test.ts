import { describe, expect, it } from 'vitest';
import { quantizeDynamic, type DynamicQuantOptions } from '../../../../src/compress/quantize/dynamic.ts';
import { DataType, makeGraph, makeModel, makeNode, makeValueInfo, readTensor, validateModel } from '../../../../src/onnx/index.ts';
import { convGraph, cosine, matmul3dGraph, mlpGraph, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

const base: DynamicQuantOptions = { perChannel: false, reduceRange: true, opTypes: ['MatMul', 'Gemm'], exclude: [] };

function ops(m: ReturnType<typeof mlpGraph>): string[] {
  return (m.graph?.node ?? []).map((n) => n.opType ?? '');
}

describe('int8-dynamic', () => {
  it('emits onnxruntime\'s chain per MatMul: DynamicQuantizeLinear, MatMulInteger, Cast, Mul(scales), Mul(output)', () => {
    const r = quantizeDynamic(matmul3dGraph(), base);
    expect(ops(r.model)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
    const w = r.model.graph!.initializer!.find((t) => t.dataType === DataType.INT8 && (t.dims ?? []).length === 2)!;
    expect(readTensor(w).dims).toEqual([16, 12]);
    expect(r.model.graph!.initializer!.some((t) => t.name === 'w')).toBe(false);
    expect(validateModel(r.model).filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('turns Gemm(transB=1) into MatMul + Add with a transposed int8 weight, and gives each MatMul its own DynamicQuantizeLinear', () => {
    const r = quantizeDynamic(mlpGraph(), base);
    const o = ops(r.model);
    // fc2 and fc2_shared both read r1: still one DynamicQuantizeLinear each.
    expect(r.model.graph!.node!.filter((n) => n.opType === 'DynamicQuantizeLinear').map((n) => n.input![0])).toEqual(['x', 'r1', 'r1']);
    expect(o).not.toContain('Gemm');
    const fc1 = r.model.graph!.node!.find((n) => n.opType === 'MatMulInteger')!;
    const w = r.model.graph!.initializer!.find((t) => t.name === fc1.input![1])!;
    expect(readTensor(w).dims).toEqual([16, 32]);
    // The shared weight w2 is stored once for its two MatMuls.
    expect(r.model.graph!.initializer!.filter((t) => t.name?.startsWith('w2_quantized'))).toHaveLength(1);
    expect(r.report.changes.find((c) => c.target === 'fc1')?.stats?.transB).toBe(true);
  });

  it('runs in onnxruntime with the same inputs and outputs and stays close to float (cosine > 0.999)', async () => {
    for (const [g, dims] of [[mlpGraph(), [4, 16]], [matmul3dGraph(), [2, 5, 16]]] as const) {
      for (const perChannel of [false, true]) {
        const r = quantizeDynamic(g, { ...base, perChannel });
        expect(r.model.graph!.input!.map((v) => v.name)).toEqual(g.graph!.input!.map((v) => v.name));
        expect(r.model.graph!.output).toEqual(g.graph!.output);
        const x = randomInput([...dims], 9);
        const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
        expect(b.y!.dims).toEqual(a.y!.dims);
        expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.999);
      }
    }
  });

  it('is fused by onnxruntime (no MatMulInteger left); two MatMuls reading one input end up sharing one DynamicQuantizeLinear all the same', async () => {
    expect(await optimizedOpTypes(quantizeDynamic(mlpGraph(), base).model)).not.toContain('MatMulInteger');
    // x feeds two projections with different weights (as Q and K do); their sum feeds a third MatMul alone.
    const g = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [makeNode('MatMul', ['x', 'wa'], ['a'], {}, { name: 'proj_a' }), makeNode('MatMul', ['x', 'wb'], ['b'], {}, { name: 'proj_b' }), makeNode('Add', ['a', 'b'], ['s'], {}, { name: 'sum' }), makeNode('MatMul', ['s', 'wc'], ['y'], {}, { name: 'out' })],
        inputs: [makeValueInfo('x', DataType.FLOAT, [4, 16])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [4, 8])],
        initializers: [randomTensor('wa', [16, 32], 1, 0.5), randomTensor('wb', [16, 32], 2, 0.5), randomTensor('wc', [32, 8], 3, 0.5)],
      }),
      opsets: [{ domain: '', version: 13 }],
    });
    const r = quantizeDynamic(g, base);
    expect(ops(r.model).filter((o) => o === 'DynamicQuantizeLinear')).toHaveLength(3);
    const types = await optimizedOpTypes(r.model);
    // onnxruntime's common-subexpression elimination merges the two identical DynamicQuantizeLinear(x)
    // before its fusions run, so proj_a and proj_b become MatMulIntegerToFloat; out keeps its own.
    expect(types.filter((t) => t === 'DynamicQuantizeLinear')).toHaveLength(1);
    expect(types.filter((t) => t === 'MatMulIntegerToFloat')).toHaveLength(2);
    expect(types.filter((t) => t === 'DynamicQuantizeMatMul')).toHaveLength(1);
    expect(types).not.toContain('MatMulInteger');
    const x = randomInput([4, 16], 9);
    const [fa, fb] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(fa.y!.data as Float32Array, fb.y!.data as Float32Array)).toBeGreaterThan(0.999);
  });

  it('keeps a narrow logits layer float under minFanOut while it holds at most 1% of the weights, and quantizes it above that', async () => {
    // fc1 400 → 64 (25,600 weights), then a logits layer 64 → classes: 4 classes are 0.99% of the weights, 8 are 1.96%.
    const head = (classes: number) =>
      makeModel({
        graph: makeGraph({
          name: 'g',
          nodes: [makeNode('Gemm', ['x', 'w1', 'b1'], ['h'], { transB: 1 }, { name: 'fc1' }), makeNode('Relu', ['h'], ['r'], {}, { name: 'relu' }), makeNode('Gemm', ['r', 'w2', 'b2'], ['y'], { transB: 1 }, { name: 'logits' })],
          inputs: [makeValueInfo('x', DataType.FLOAT, [3, 400])],
          outputs: [makeValueInfo('y', DataType.FLOAT, [3, classes])],
          initializers: [randomTensor('w1', [64, 400], 1, 0.1), randomTensor('b1', [64], 2, 0.1), randomTensor('w2', [classes, 64], 3, 0.3), randomTensor('b2', [classes], 4, 0.1)],
        }),
        opsets: [{ domain: '', version: 13 }],
      });
    const narrow = quantizeDynamic(head(4), { ...base, minFanOut: 32 });
    expect(narrow.report.changes.map((c) => [c.target, c.action])).toEqual([
      ['fc1', 'quantized'],
      ['logits', 'kept-float'],
    ]);
    expect(narrow.report.changes[1]!.detail).toMatch(/fan-out 4 < minFanOut 32/);
    expect(ops(narrow.model).filter((o) => o === 'Gemm')).toHaveLength(1);
    const x = randomInput([3, 400], 5);
    const [a, b] = [await runModel(head(4), { x }), await runModel(narrow.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.999);
    // Over the 1% budget the narrow layer is quantized too; minFanOut 0 (and absent) quantizes all.
    expect(quantizeDynamic(head(8), { ...base, minFanOut: 32 }).report.changes.every((c) => c.action === 'quantized')).toBe(true);
    expect(quantizeDynamic(head(4), { ...base, minFanOut: 0 }).report.changes.every((c) => c.action === 'quantized')).toBe(true);
    expect(quantizeDynamic(head(4), base).report.changes.every((c) => c.action === 'quantized')).toBe(true);
  });

  it('quantizes Conv to ConvInteger only when asked, with the bias added after the rescale', async () => {
    const g = convGraph();
    const floatConv = quantizeDynamic(g, base);
    expect(ops(floatConv.model).filter((o) => o === 'Conv')).toHaveLength(3);
    expect(floatConv.report.changes.filter((c) => c.action === 'kept-float' && c.detail?.startsWith('Conv'))).toHaveLength(3);
    const r = quantizeDynamic(g, { ...base, opTypes: ['Conv', 'Gemm'] });
    expect(ops(r.model).filter((o) => o === 'ConvInteger')).toHaveLength(3);
    const x = randomInput([1, 3, 12, 12], 3);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99);
  });

  it('leaves excluded nodes and activation × activation MatMuls in float and names them', () => {
    const g = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [makeNode('MatMul', ['a', 'b'], ['ab'], {}, { name: 'act_x_act' }), makeNode('MatMul', ['ab', 'w'], ['y'], {}, { name: 'fc' })],
        inputs: [makeValueInfo('a', DataType.FLOAT, [2, 3]), makeValueInfo('b', DataType.FLOAT, [3, 4])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [2, 5])],
        initializers: [randomTensor('w', [4, 5], 1)],
      }),
      opsets: [{ domain: '', version: 13 }],
    });
    const r = quantizeDynamic(g, { ...base, exclude: ['fc'] });
    expect(r.modified).toBe(false);
    expect(r.report.changes.map((c) => [c.target, c.action])).toEqual([
      ['act_x_act', 'kept-float'],
      ['fc', 'kept-float'],
    ]);
    expect(r.report.changes[0]!.detail).toMatch(/not a float32 initializer/);
    expect(r.report.warnings.join(' ')).toMatch(/act_x_act, fc/);
  });

  it('raises opset 9 to 11 for DynamicQuantizeLinear', () => {
    const g = matmul3dGraph();
    g.opsetImport = [{ domain: '', version: 9 }];
    const r = quantizeDynamic(g, base);
    expect(r.model.opsetImport![0]!.version).toBe(11);
    expect(r.report.warnings[0]).toMatch(/opset raised from 9 to 11/);
  });

  it('does not mutate its input model', () => {
    const g = mlpGraph();
    const before = JSON.stringify(g, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    quantizeDynamic(g, base);
    expect(JSON.stringify(g, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v))).toBe(before);
  });
});
