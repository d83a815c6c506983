import { describe, expect, it } from 'vitest';
import { convertToFp16 } from '../../../../src/compress/quantize/fp16.ts';
import { DataType, float16ArrayToFloat32, float32ArrayToFloat16, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, readTensor, validateModel } from '../../../../src/onnx/index.ts';
import { convGraph, cosine, mlpGraph, randomInput, runModel } from './graphs.ts';

describe('fp16', () => {
  it('stores every float initializer as float16, keeps graph I/O float32 with Casts, and matches float within fp16 precision', async () => {
    const g = convGraph();
    const r = convertToFp16(g, { keepIoTypes: true });
    expect(r.model.graph!.initializer!.every((t) => t.dataType === DataType.FLOAT16)).toBe(true);
    expect(r.model.graph!.input).toEqual(g.graph!.input);
    expect(r.model.graph!.output).toEqual(g.graph!.output);
    expect(r.report.stats.parameterBytesAfter).toBe(r.report.stats.parameterBytesBefore! / 2);
    expect(r.report.warnings.join(' ')).toMatch(/usually slower/);
    expect(validateModel(r.model).filter((f) => f.severity === 'error')).toEqual([]);
    const x = randomInput([1, 3, 12, 12], 4);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99999);
  });

  it('with keepIoTypes false the inputs and outputs become float16', async () => {
    const g = mlpGraph();
    const r = convertToFp16(g, { keepIoTypes: false });
    expect(r.model.graph!.input![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
    expect(r.model.graph!.output![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
    expect(r.model.graph!.node!.some((n) => n.opType === 'Cast')).toBe(false);
    const x = randomInput([4, 16], 2);
    const a = await runModel(g, { x });
    const b = await runModel(r.model, { x: { dataType: DataType.FLOAT16, dims: x.dims, data: float32ArrayToFloat16(x.data as Float32Array) } });
    expect(cosine(a.y!.data as Float32Array, float16ArrayToFloat32(b.y!.data as Uint16Array))).toBeGreaterThan(0.9999);
  });

  it('keeps blocked ops and nodes in float32 with Casts around them, and names them', async () => {
    const g = convGraph();
    const r = convertToFp16(g, { keepIoTypes: true, nodeBlockList: ['relu'], opBlockList: ['Concat'] });
    expect(r.report.changes.filter((c) => c.action === 'kept-float').map((c) => c.target).sort()).toEqual(['concat', 'relu']);
    const relu = r.model.graph!.node!.find((n) => n.name === 'relu')!;
    const castIn = r.model.graph!.node!.find((n) => n.output![0] === relu.input![0])!;
    expect(castIn.opType).toBe('Cast');
    const x = randomInput([1, 3, 12, 12], 4);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99999);
  });

  it('clamps values outside the float16 range and counts them', () => {
    const big = makeTensor('w', DataType.FLOAT, [4], [1e6, -7e4, 1e-9, 0.5]);
    const g = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [makeNode('Mul', ['x', 'w'], ['y'], {}, { name: 'scale' })],
        inputs: [makeValueInfo('x', DataType.FLOAT, [4])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [4])],
        initializers: [big],
      }),
    });
    const r = convertToFp16(g, { keepIoTypes: true });
    expect(r.report.stats.clampedValues).toBe(3);
    expect(r.report.warnings[0]).toMatch(/3 initializer value\(s\) outside the float16 range/);
    const w = r.model.graph!.initializer!.find((t) => t.name === 'w')!;
    expect(Array.from(float16ArrayToFloat32(readTensor(w).data as Uint16Array))).toEqual([65504, -65504, float16ArrayToFloat32(float32ArrayToFloat16([5.96e-8]))[0], 0.5]);
  });

  it('keeps Resize in float32 by default (block list) while its neighbours run in float16', async () => {
    const g = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [
          makeNode('Relu', ['x'], ['r'], {}, { name: 'relu' }),
          makeNode('Resize', ['r', '', 'scales'], ['up'], { mode: 'nearest' }, { name: 'resize' }),
          makeNode('Mul', ['up', 'k'], ['y'], {}, { name: 'mul' }),
        ],
        inputs: [makeValueInfo('x', DataType.FLOAT, [1, 1, 2, 2])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [1, 1, 4, 4])],
        initializers: [makeTensor('scales', DataType.FLOAT, [4], [1, 1, 2, 2]), makeTensor('k', DataType.FLOAT, [], [0.5])],
      }),
      opsets: [{ domain: '', version: 13 }],
    });
    const r = convertToFp16(g, { keepIoTypes: true });
    expect(r.model.graph!.initializer!.find((t) => t.name === 'scales')!.dataType).toBe(DataType.FLOAT);
    const x = randomInput([1, 1, 2, 2], 1);
    const [a, b] = [await runModel(g, { x }), await runModel(r.model, { x })];
    expect(b.y!.dims).toEqual([1, 1, 4, 4]);
    expect(cosine(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeGreaterThan(0.99999);
  });
});
