import { describe, expect, it } from 'vitest';
import { DataType } from '../../../src/onnx/index.ts';
import { generateInput, parseShapeArgument, resolveInputShapes, type BenchInputSpec } from '../../../src/runtime/bench/inputs.ts';

const image: BenchInputSpec = { name: 'x', isTensor: true, dataType: DataType.FLOAT, shape: ['batch', 3, 'height', 'width'] };
const ids: BenchInputSpec = { name: 'ids', isTensor: true, dataType: DataType.INT64, shape: [-1, 128] };

describe('resolveInputShapes', () => {
  it('gives a free batch dimension --batch and free image sides 224, and says what it assumed', () => {
    const [x] = resolveInputShapes([image], { shapes: {}, batch: 4 });
    expect(x).toEqual({ name: 'x', dataType: DataType.FLOAT, dims: [4, 3, 224, 224], defaulted: ['height=224', 'width=224'] });
    const [i] = resolveInputShapes([ids], { shapes: {} });
    expect(i).toEqual({ name: 'ids', dataType: DataType.INT64, dims: [1, 128], defaulted: ['dim0=1'] });
  });

  it('takes --shape as given and checks it against fixed dimensions', () => {
    expect(resolveInputShapes([image], { shapes: { x: [2, 3, 32, 48] } })[0]?.dims).toEqual([2, 3, 32, 48]);
    expect(() => resolveInputShapes([image], { shapes: { x: [2, 1, 32, 48] } })).toThrow(/dimension 1 is fixed to 3/);
    expect(() => resolveInputShapes([image], { shapes: { x: [2, 3] } })).toThrow(/rank 4/);
  });

  it('refuses --shape for an input the model does not have and --batch against a fixed batch', () => {
    expect(() => resolveInputShapes([image], { shapes: { y: [1] } })).toThrow(expect.objectContaining({ code: 'E_USAGE', message: expect.stringContaining("'y'") as string }) as Error);
    const fixed: BenchInputSpec = { name: 'f', isTensor: true, dataType: DataType.FLOAT, shape: [1, 10] };
    expect(() => resolveInputShapes([fixed], { shapes: {}, batch: 8 })).toThrow(expect.objectContaining({ code: 'E_USAGE' }) as Error);
  });

  it('refuses non-tensor inputs with a typed error', () => {
    expect(() => resolveInputShapes([{ name: 's', isTensor: false, dataType: undefined, shape: [] }], { shapes: {} })).toThrow(
      expect.objectContaining({ code: 'E_RUNTIME_UNSUPPORTED_TYPE' }) as Error,
    );
  });
});

describe('parseShapeArgument', () => {
  it('parses name=DxD and names containing =', () => {
    expect(parseShapeArgument('images=1x3x224x224')).toEqual(['images', [1, 3, 224, 224]]);
    expect(parseShapeArgument('a=b=2x3')).toEqual(['a=b', [2, 3]]);
  });

  it('refuses malformed shapes as usage errors', () => {
    for (const bad of ['=1x2', 'x', 'x=1xa', 'x=1x-2']) expect(() => parseShapeArgument(bad)).toThrow(expect.objectContaining({ code: 'E_USAGE' }) as Error);
  });
});

describe('generateInput', () => {
  it('fills floats in [0, 1) reproducibly from the seed and integers with zeros', () => {
    const a = generateInput({ name: 'x', dataType: DataType.FLOAT, dims: [2, 3], defaulted: [] }, 7);
    const b = generateInput({ name: 'x', dataType: DataType.FLOAT, dims: [2, 3], defaulted: [] }, 7);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(b.data as Float32Array));
    expect((a.data as Float32Array).every((v) => v >= 0 && v < 1)).toBe(true);
    expect(new Set(a.data as Float32Array).size).toBeGreaterThan(1);
    const i = generateInput({ name: 'ids', dataType: DataType.INT64, dims: [1, 4], defaulted: [] }, 1);
    expect(i.data).toEqual(new BigInt64Array(4));
    expect(generateInput({ name: 'h', dataType: DataType.FLOAT16, dims: [3], defaulted: [] }, 1).data).toBeInstanceOf(Uint16Array);
  });

  it('refuses string inputs, naming --data as the way out', () => {
    expect(() => generateInput({ name: 's', dataType: DataType.STRING, dims: [1], defaulted: [] }, 1)).toThrow(/pass --data/);
  });
});
