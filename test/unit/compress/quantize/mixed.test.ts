import { describe, expect, it } from 'vitest';
import { applyMixed, parsePrecisionPlan, resolvePlan } from '../../../../src/compress/quantize/mixed.ts';
import { DataType, validateModel } from '../../../../src/onnx/index.ts';
import { convGraph, cosine, mlpGraph, randomInput, runModel } from './graphs.ts';

const common = { perChannel: true, reduceRange: true, activationType: 'uint8' as const, keepIoTypes: true };

describe('precision plans', () => {
  it('accepts {"nodes": {...}} with a default, and the bare map', () => {
    expect(parsePrecisionPlan({ nodes: { fc1: 'int8' }, default: 'fp16' })).toEqual({ nodes: { fc1: 'int8' }, default: 'fp16' });
    expect(parsePrecisionPlan({ fc1: 'fp16' })).toEqual({ nodes: { fc1: 'fp16' }, default: 'fp32' });
  });
  it('rejects unknown precisions with the path, and unknown node names listing them', () => {
    expect(() => parsePrecisionPlan({ nodes: { fc1: 'int4' } }, 'plan.json')).toThrow(/plan\.json .*nodes\.fc1/);
    expect(() => resolvePlan(mlpGraph(), parsePrecisionPlan({ fc1: 'int8', nope: 'fp16', also_not: 'fp32' }))).toThrow(
      expect.objectContaining({ code: 'E_COMPRESS_PLAN_INVALID', message: expect.stringMatching(/2 node\(s\).*'nope', 'also_not'/) as unknown }) as Error,
    );
  });
});

describe('mixed', () => {
  it('makes a plan mixing int8 (dynamic), fp16 and fp32 regions run, with Casts at the fp16 borders', async () => {
    const g = mlpGraph();
    const plan = parsePrecisionPlan({ fc1: 'int8', relu1: 'fp16', fc2: 'fp16', fc2_shared: 'fp32', residual: 'fp16' });
    const r = applyMixed(g, { ...common, plan });
    const ops = r.model.graph!.node!.map((n) => n.opType);
    expect(ops).toContain('MatMulInteger');
    expect(ops).toContain('Cast');
    expect(r.model.graph!.node!.find((n) => n.name === 'fc2_shared')!.opType).toBe('MatMul');
    expect(r.report.stats).toMatchObject({ int8Nodes: 1, fp16Nodes: 3, fp32Nodes: 1 });
    expect(r.model.graph!.input).toEqual(g.graph!.input);
    expect(r.model.graph!.output).toEqual(g.graph!.output);
    expect(validateModel(r.model).filter((f) => f.severity === 'error')).toEqual([]);
    const x = randomInput([4, 16], 3);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.999);
  });

  it('uses static QDQ for int8 nodes when ranges are given, and warns about int8 nodes with no int8 form', async () => {
    const g = convGraph();
    const plan = parsePrecisionPlan({ nodes: { conv_bias: 'int8', gap: 'int8', flatten: 'fp16' }, default: 'fp32' });
    const ranges = new Map<string, [number, number]>([
      ['x', [-1, 1]],
      ['r1', [0, 3]],
    ]);
    const r = applyMixed(g, { ...common, plan, ranges });
    expect(r.model.graph!.node!.some((n) => n.opType === 'QuantizeLinear')).toBe(true);
    expect(r.report.warnings.join(' ')).toMatch(/planned int8 .*gap/);
    const x = randomInput([1, 3, 12, 12], 8);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99);
    expect(r.model.graph!.initializer!.some((t) => t.dataType === DataType.INT8)).toBe(true);
  });
});
