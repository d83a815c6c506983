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
    expect(o.filter((x) => x === 'DynamicQuantizeLinear')).toHaveLength(3);
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

  it('is fused by onnxruntime into DynamicQuantizeMatMul (no MatMulInteger left)', async () => {
    const types = await optimizedOpTypes(quantizeDynamic(mlpGraph(), base).model);
    expect(types).toContain('DynamicQuantizeMatMul');
    expect(types).not.toContain('MatMulInteger');
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
