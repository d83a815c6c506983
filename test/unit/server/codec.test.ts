import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { DataType, float32ToFloat16Bits, type TensorValue } from '../../../src/onnx/index.ts';
import { decodeInferenceRequest, encodeInferenceResponse, KSERVE_DATATYPES, kserveDatatypeInfo } from '../../../src/server/index.ts';

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A body of the binary-data extension: the JSON header, then the raw tensors. */
function binaryBody(header: unknown, ...parts: Uint8Array[]): { body: Buffer; jsonLength: number } {
  const head = json(header);
  return { body: Buffer.concat([head, ...parts]), jsonLength: head.length };
}

function badRequestMessage(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (isEdgevolveError(err, 'E_SERVER_BAD_REQUEST')) return err.message;
    throw err;
  }
  throw new Error('expected E_SERVER_BAD_REQUEST');
}

describe('decodeInferenceRequest (JSON tensors)', () => {
  it('reads nested and flat row-major data into the same Float32Array', () => {
    const nested = decodeInferenceRequest(json({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [[1, 2, 3], [4, 5, 6]] }] }), undefined);
    const flat = decodeInferenceRequest(json({ inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] }), undefined);
    expect(nested.feeds.x).toEqual({ dataType: DataType.FLOAT, dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    expect(flat.feeds.x).toEqual(nested.feeds.x);
  });

  it('maps every KServe datatype to its ONNX element type and array class', () => {
    const cases: [string, unknown[], TensorValue['data']][] = [
      ['BOOL', [true, false], new Uint8Array([1, 0])],
      ['UINT8', [0, 255], new Uint8Array([0, 255])],
      ['UINT16', [0, 65535], new Uint16Array([0, 65535])],
      ['UINT32', [0, 4294967295], new Uint32Array([0, 4294967295])],
      ['UINT64', [0, 2 ** 40], new BigUint64Array([0n, 2n ** 40n])],
      ['INT8', [-128, 127], new Int8Array([-128, 127])],
      ['INT16', [-32768, 32767], new Int16Array([-32768, 32767])],
      ['INT32', [-1, 7], new Int32Array([-1, 7])],
      ['INT64', [-(2 ** 40), 3], new BigInt64Array([-(2n ** 40n), 3n])],
      ['FP16', [1.5, -2], new Uint16Array([float32ToFloat16Bits(1.5), float32ToFloat16Bits(-2)])],
      ['FP32', [0.25, -1], new Float32Array([0.25, -1])],
      ['FP64', [0.1, 1e300], new Float64Array([0.1, 1e300])],
      ['BYTES', ['a', 'żółw'], ['a', 'żółw']],
    ];
    expect(cases.map((c) => c[0]).sort()).toEqual([...KSERVE_DATATYPES].sort());
    for (const [datatype, data, expected] of cases) {
      const decoded = decodeInferenceRequest(json({ inputs: [{ name: 'x', shape: [2], datatype, data }] }), undefined);
      expect(decoded.feeds.x, datatype).toEqual({ dataType: kserveDatatypeInfo(datatype)!.dataType, dims: [2], data: expected });
    }
  });

  it('keeps the id, the requested outputs and binary_data_output', () => {
    const decoded = decodeInferenceRequest(
      json({
        id: 'req-7',
        parameters: { binary_data_output: true },
        inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }],
        outputs: [{ name: 'a' }, { name: 'b', parameters: { binary_data: false } }],
      }),
      undefined,
    );
    expect(decoded.id).toBe('req-7');
    expect(decoded.binaryDataOutput).toBe(true);
    expect(decoded.outputs).toEqual([{ name: 'a', binary: undefined }, { name: 'b', binary: false }]);
  });

  it.each([
    ['not JSON', Buffer.from('{"inputs": ['), /not valid JSON/],
    ['not an object', json([1]), /must be a JSON object/],
    ['no inputs', json({ inputs: [] }), /"inputs" must be a non-empty array/],
    ['an input without a name', json({ inputs: [{ shape: [1], datatype: 'FP32', data: [1] }] }), /inputs\[0\]\.name/],
    ['an unknown datatype', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FLOAT', data: [1] }] }), /input 'x': datatype "FLOAT" is not one of/],
    ['a negative dimension', json({ inputs: [{ name: 'x', shape: [-1], datatype: 'FP32', data: [1] }] }), /input 'x': shape\[0\] is -1/],
    ['too few elements', json({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3] }] }), /input 'x': "data" has 3 elements, the shape needs 4/],
    ['too many elements', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1, 2] }] }), /more elements than the shape's 1/],
    ['a string among floats', json({ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [1, 'a'] }] }), /input 'x': element 1 is "a", expected a number/],
    ['an integer out of range', json({ inputs: [{ name: 'x', shape: [1], datatype: 'UINT8', data: [300] }] }), /element 0 is 300, expected an integer in \[0, 255\]/],
    ['a fraction for INT32', json({ inputs: [{ name: 'x', shape: [1], datatype: 'INT32', data: [1.5] }] }), /expected an integer/],
    ['a number for BOOL', json({ inputs: [{ name: 'x', shape: [1], datatype: 'BOOL', data: [2] }] }), /expected true or false/],
    ['a duplicate input', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }, { name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }), /input 'x' appears twice/],
    ['no data', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32' }] }), /input 'x' has no "data"/],
    ['binary size without the header', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }), /no Inference-Header-Content-Length/],
    ['data nested deeper than the shape', json({ inputs: [{ name: 'x', shape: [2], datatype: 'FP32', data: [[[1]], [[2]]] }] }), /nested deeper than the shape's 1 dimensions/],
    ['a body nested 100000 deep', Buffer.from(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(100_000)}1${']'.repeat(100_000)}}]}`), /nested deeper|not valid JSON/],
    ['a duplicate output', json({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }], outputs: [{ name: 'y' }, { name: 'y' }] }), /output 'y' is requested twice/],
  ])('refuses %s with a 400 naming the problem', (_label, body, message) => {
    expect(badRequestMessage(() => decodeInferenceRequest(body, undefined))).toMatch(message);
  });
});

describe('decodeInferenceRequest (binary-data extension)', () => {
  it('reads raw little-endian tensors after the JSON header, for several inputs in order', () => {
    const a = new Float32Array([1.5, -2, 3]);
    const b = new BigInt64Array([7n, -9n]);
    const { body, jsonLength } = binaryBody(
      {
        inputs: [
          { name: 'a', shape: [3], datatype: 'FP32', parameters: { binary_data_size: 12 } },
          { name: 'b', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
          { name: 'c', shape: [1], datatype: 'INT32', data: [5] },
        ],
      },
      new Uint8Array(a.buffer),
      new Uint8Array(b.buffer),
    );
    const decoded = decodeInferenceRequest(body, jsonLength);
    expect(decoded.feeds.a!.data).toEqual(a);
    expect(decoded.feeds.b!.data).toEqual(b);
    expect(decoded.feeds.c!.data).toEqual(new Int32Array([5]));
  });

  it('copies a tensor that sits misaligned in the body instead of failing', () => {
    const a = new Float32Array([0.5, 0.25]);
    // Pad the header so the tensor starts at an odd offset.
    for (let pad = 0; pad < 4; pad++) {
      const { body, jsonLength } = binaryBody({ id: 'x'.repeat(pad), inputs: [{ name: 'a', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }, new Uint8Array(a.buffer));
      expect(decodeInferenceRequest(body, jsonLength).feeds.a!.data).toEqual(a);
    }
  });

  it('reads BYTES as 4-byte length-prefixed UTF-8 elements', () => {
    const parts = ['hi', '', 'żółw'].map((s) => Buffer.from(s, 'utf8'));
    const raw = Buffer.concat(parts.flatMap((p) => [Buffer.from(new Uint32Array([p.length]).buffer), p]));
    const { body, jsonLength } = binaryBody({ inputs: [{ name: 's', shape: [3], datatype: 'BYTES', parameters: { binary_data_size: raw.length } }] }, raw);
    expect(decodeInferenceRequest(body, jsonLength).feeds.s!.data).toEqual(['hi', '', 'żółw']);
  });

  it.each([
    ['a size that disagrees with the shape', [{ name: 'a', shape: [3], datatype: 'FP32', parameters: { binary_data_size: 8 } }], 8, /binary_data_size is 8 bytes, the shape needs 3 × 4 = 12/],
    ['a size past the end of the body', [{ name: 'a', shape: [4], datatype: 'FP32', parameters: { binary_data_size: 16 } }], 8, /runs past the end of the body/],
    ['bytes left over', [{ name: 'a', shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }], 8, /4 bytes after the last binary input/],
    ['a BOOL byte other than 0 or 1', [{ name: 'a', shape: [8], datatype: 'BOOL', parameters: { binary_data_size: 8 } }], 8, /BOOL element 0 is byte 7/],
  ])('refuses %s', (_label, inputs, rawBytes, message) => {
    const { body, jsonLength } = binaryBody({ inputs }, new Uint8Array(rawBytes).fill(7));
    expect(badRequestMessage(() => decodeInferenceRequest(body, jsonLength))).toMatch(message);
  });

  it('refuses a header length longer than the body', () => {
    expect(badRequestMessage(() => decodeInferenceRequest(Buffer.from('{}'), 10))).toMatch(/Inference-Header-Content-Length is 10, but the body has 2 bytes/);
  });
});

describe('encodeInferenceResponse', () => {
  const head = { modelName: 'm', modelVersion: '3', id: 'q', parameters: { answered_by: 'local' } };

  it('writes JSON data exactly: float32 values that parse back to the same float32, int64 digits, booleans, null for NaN', () => {
    const f = new Float32Array([0.1, -3.4028234663852886e38, Number.NaN]);
    const encoded = encodeInferenceResponse(head, [
      { name: 'f', value: { dataType: DataType.FLOAT, dims: [3], data: f }, binary: false },
      { name: 'i', value: { dataType: DataType.INT64, dims: [2], data: new BigInt64Array([9007199254740993n, -1n]) }, binary: false },
      { name: 'b', value: { dataType: DataType.BOOL, dims: [2], data: new Uint8Array([1, 0]) }, binary: false },
      { name: 'h', value: { dataType: DataType.FLOAT16, dims: [1], data: new Uint16Array([float32ToFloat16Bits(0.5)]) }, binary: false },
    ]);
    expect(encoded.jsonLength).toBeUndefined();
    const text = encoded.body.toString('utf8');
    expect(text).toContain('"data":[9007199254740993,-1]');
    const parsed = JSON.parse(text) as { model_name: string; model_version: string; id: string; outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
    expect(parsed).toMatchObject({ model_name: 'm', model_version: '3', id: 'q', parameters: { answered_by: 'local' } });
    expect(parsed.outputs.map((o) => o.datatype)).toEqual(['FP32', 'INT64', 'BOOL', 'FP16']);
    expect(Float32Array.from(parsed.outputs[0]!.data.slice(0, 2) as number[])).toEqual(f.subarray(0, 2));
    expect(parsed.outputs[0]!.data[2]).toBeNull();
    expect(parsed.outputs[2]!.data).toEqual([true, false]);
    expect(parsed.outputs[3]!.data).toEqual([0.5]);
  });

  it('puts binary outputs after the JSON header, which it measures, and a binary response decodes back to the same tensors', () => {
    const f = new Float32Array([1, 2, 3, 4]);
    const s = ['ab', 'c'];
    const encoded = encodeInferenceResponse(head, [
      { name: 'f', value: { dataType: DataType.FLOAT, dims: [2, 2], data: f }, binary: true },
      { name: 's', value: { dataType: DataType.STRING, dims: [2], data: s }, binary: true },
      { name: 'j', value: { dataType: DataType.INT32, dims: [1], data: new Int32Array([4]) }, binary: false },
    ]);
    expect(encoded.jsonLength).toBeDefined();
    const header = JSON.parse(encoded.body.subarray(0, encoded.jsonLength).toString('utf8')) as { outputs: { name: string; shape: number[]; datatype: string; parameters?: { binary_data_size: number } }[] };
    expect(header.outputs[0]!.parameters!.binary_data_size).toBe(16);
    expect(header.outputs[1]!.parameters!.binary_data_size).toBe(4 + 2 + 4 + 1);
    // The response's layout is the request's: decode it as if it were a request.
    const asRequest = { inputs: header.outputs.map((o) => ({ ...o, ...(o.parameters === undefined ? { data: [4] } : {}) })) };
    const { body, jsonLength } = binaryBody(asRequest, encoded.body.subarray(encoded.jsonLength));
    const decoded = decodeInferenceRequest(body, jsonLength);
    expect(decoded.feeds.f!.data).toEqual(f);
    expect(decoded.feeds.s!.data).toEqual(s);
  });
});
