/**
 * The codec builds its schema from src/onnx/proto/onnx-descriptor.ts (so the dist/ bundle
 * needs no onnx.proto file); this checks the generated descriptor still says exactly what
 * the official onnx.proto beside it says. On failure: npx tsx scripts/gen-onnx-descriptor.ts
 */
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { onnxSchema } from '../../../src/onnx/index.ts';
import { ONNX_DESCRIPTOR } from '../../../src/onnx/proto/onnx-descriptor.ts';

describe('the generated onnx.proto descriptor', () => {
  const parsed = protobuf.loadSync(path.resolve('src/onnx/proto/onnx.proto'));

  it('equals what protobufjs parses from src/onnx/proto/onnx.proto', () => {
    expect(ONNX_DESCRIPTOR).toEqual(parsed.toJSON());
  });

  it('gives the codec the same fields, numbers and packing as the parsed .proto (proto2: repeated scalars unpacked unless declared)', () => {
    parsed.resolveAll();
    for (const name of ['onnx.ModelProto', 'onnx.GraphProto', 'onnx.NodeProto', 'onnx.TensorProto', 'onnx.AttributeProto']) {
      const want = parsed.lookupType(name).fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated, f.packed]);
      const got = onnxSchema().lookupType(name).fieldsArray.map((f) => [f.name, f.id, f.type, f.repeated, f.packed]);
      expect(got, name).toEqual(want);
    }
    expect(onnxSchema().lookupType('onnx.TensorProto').fields.dims?.packed).toBe(false);
  });
});
