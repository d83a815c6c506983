import { describe, expect, it } from 'vitest';
import Long from 'long';
import {
  DataType,
  allElementTypes,
  decodeModel,
  encodeModel,
  makeGraph,
  makeModel,
  makeTensor,
  readTensor,
  tensorToFloat32,
  float32ToFloat16Bits,
  float32ToBfloat16Bits,
  float32ToFloat8Bits,
  type TensorProto,
} from '../../../src/onnx/index.ts';
import { codeOf } from '../../helpers/error-code.ts';


/** Encodes the tensor as an initializer and decodes it back: what readTensor sees from a real file. */
function throughWire(t: TensorProto): TensorProto {
  const model = makeModel({ graph: makeGraph({ name: 'g', nodes: [], inputs: [], outputs: [], initializers: [t] }) });
  return decodeModel(encodeModel(model)).graph!.initializer![0]!;
}

describe('readTensor / makeTensor', () => {
  it('round-trips every numeric element type through raw_data', () => {
    const samples: Record<number, ArrayLike<number | bigint>> = {
      [DataType.FLOAT]: new Float32Array([1.5, -2, 0]),
      [DataType.DOUBLE]: new Float64Array([1e300, -0.25, 3]),
      [DataType.INT8]: new Int8Array([-128, 0, 127]),
      [DataType.UINT8]: new Uint8Array([0, 200, 255]),
      [DataType.BOOL]: new Uint8Array([0, 1, 1]),
      [DataType.INT16]: new Int16Array([-32768, 1, 32767]),
      [DataType.UINT16]: new Uint16Array([0, 1, 65535]),
      [DataType.INT32]: new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]),
      [DataType.UINT32]: new Uint32Array([0, 1, 2 ** 32 - 1]),
      [DataType.INT64]: new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]),
      [DataType.UINT64]: new BigUint64Array([0n, 1n, 2n ** 64n - 1n]),
      [DataType.FLOAT16]: new Uint16Array([0x3c00, 0x8000, 0x7c00]),
      [DataType.BFLOAT16]: new Uint16Array([0x3f80, 0xbf80, 0x7f80]),
      [DataType.FLOAT8E4M3FN]: new Uint8Array([0x38, 0x7e, 0xfe]),
      [DataType.FLOAT8E4M3FNUZ]: new Uint8Array([0x40, 0x7f, 0x80]),
      [DataType.FLOAT8E5M2]: new Uint8Array([0x3c, 0x7b, 0x7c]),
      [DataType.FLOAT8E5M2FNUZ]: new Uint8Array([0x40, 0x7f, 0x80]),
      [DataType.INT4]: new Int8Array([-8, 7, -1]),
      [DataType.UINT4]: new Uint8Array([0, 15, 9]),
      [DataType.FLOAT4E2M1]: new Uint8Array([0, 7, 15]),
    };
    for (const info of allElementTypes()) {
      if (info.dataType === DataType.STRING || info.lanes === 2) continue;
      const data = samples[info.dataType];
      expect(data, info.name).toBeDefined();
      const value = readTensor(throughWire(makeTensor('t', info.dataType, [3], data as never)));
      expect(value.data.constructor.name, info.name).toBe(info.typedArray);
      expect(Array.from(value.data as ArrayLike<unknown>), info.name).toEqual(Array.from(data!));
      expect(value.dims).toEqual([3]);
    }
  });

  it('round-trips complex and string tensors', () => {
    const c = readTensor(throughWire(makeTensor('c', DataType.COMPLEX64, [2], new Float32Array([1, 2, 3, 4]))));
    expect(Array.from(c.data as Float32Array)).toEqual([1, 2, 3, 4]);
    const s = readTensor(throughWire(makeTensor('s', DataType.STRING, [2], ['héllo', ''])));
    expect(s.data).toEqual(['héllo', '']);
  });

  it('returns aligned raw_data as a view of the model bytes, not a copy', () => {
    const t = throughWire(makeTensor('w', DataType.FLOAT, [4], new Float32Array([1, 2, 3, 4])));
    const value = readTensor(t);
    const data = value.data as Float32Array;
    if (t.rawData!.byteOffset % 4 === 0) expect(data.buffer).toBe(t.rawData!.buffer);
    else expect(data.buffer).not.toBe(t.rawData!.buffer);
    expect(Array.from(data)).toEqual([1, 2, 3, 4]);
  });

  it('decodes the typed fields per the ONNX spec', () => {
    const cases: { t: TensorProto; want: unknown[] }[] = [
      { t: { dataType: DataType.FLOAT, dims: [2], floatData: [1.5, -1] }, want: [1.5, -1] },
      { t: { dataType: DataType.INT8, dims: [2], int32Data: [-5, 7] }, want: [-5, 7] },
      { t: { dataType: DataType.FLOAT16, dims: [1], int32Data: [0x3c00] }, want: [0x3c00] },
      { t: { dataType: DataType.INT4, dims: [3], int32Data: [0xf8, 0x07] }, want: [-8, -1, 7] },
      { t: { dataType: DataType.INT64, dims: [2], int64Data: [Long.fromString('-9223372036854775808'), 5] }, want: [-(2n ** 63n), 5n] },
      { t: { dataType: DataType.UINT64, dims: [1], uint64Data: [Long.fromString('18446744073709551615', true)] }, want: [2n ** 64n - 1n] },
      { t: { dataType: DataType.UINT32, dims: [1], uint64Data: [4294967295] }, want: [4294967295] },
      { t: { dataType: DataType.DOUBLE, dims: [1], doubleData: [0.1] }, want: [0.1] },
    ];
    for (const { t, want } of cases) expect(Array.from(readTensor(throughWire(t)).data as ArrayLike<unknown>)).toEqual(want);
  });

  it('converts any numeric type to float32', () => {
    const f16 = makeTensor('h', DataType.FLOAT16, [2], new Uint16Array([float32ToFloat16Bits(0.5), float32ToFloat16Bits(-2)]));
    expect(Array.from(tensorToFloat32(f16))).toEqual([0.5, -2]);
    const bf = makeTensor('b', DataType.BFLOAT16, [1], new Uint16Array([float32ToBfloat16Bits(3)]));
    expect(Array.from(tensorToFloat32(bf))).toEqual([3]);
    const f8 = makeTensor('e', DataType.FLOAT8E4M3FN, [1], new Uint8Array([float32ToFloat8Bits(448, DataType.FLOAT8E4M3FN)]));
    expect(Array.from(tensorToFloat32(f8))).toEqual([448]);
    expect(Array.from(tensorToFloat32(makeTensor('i', DataType.INT64, [2], [-3n, 4n])))).toEqual([-3, 4]);
    expect(codeOf(() => tensorToFloat32(makeTensor('s', DataType.STRING, [1], ['x'])))).toBe('E_ONNX_UNSUPPORTED');
  });

  it('rejects data that disagrees with dims, negative dims and absurd sizes', () => {
    const t = makeTensor('w', DataType.FLOAT, [4], new Float32Array(4));
    expect(codeOf(() => readTensor({ ...t, dims: [5] }))).toBe('E_ONNX_TENSOR');
    expect(codeOf(() => readTensor({ dataType: DataType.FLOAT, dims: [2], floatData: [1] }))).toBe('E_ONNX_TENSOR');
    expect(codeOf(() => readTensor({ ...t, dims: [-4] }))).toBe('E_ONNX_TENSOR');
    expect(codeOf(() => readTensor({ ...t, dims: [2 ** 31, 2 ** 31] }))).toBe('E_ONNX_TOO_LARGE');
    expect(readTensor({ dataType: DataType.FLOAT, dims: [Long.MAX_VALUE, Long.MAX_VALUE, 0] }).data).toHaveLength(0);
    expect(codeOf(() => readTensor({ ...t, dims: new Array<number>(40).fill(1) }))).toBe('E_ONNX_TOO_LARGE');
    expect(codeOf(() => readTensor({ dataType: 99, dims: [1] }))).toBe('E_ONNX_UNSUPPORTED');
  });
});
