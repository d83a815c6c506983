import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, readModelFile, writeModelFile, validateModel } from '../../../src/onnx/index.ts';
import { PADDLE_MODELS, concat, lengthDelimited, nestedIfModelBytes, tinyMlp, varintField } from '../../helpers/onnx-builders.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { codeOf } from '../../helpers/error-code.ts';


describe('decodeModel / encodeModel', () => {
  it('round-trips the PaddleOCR recogniser byte for byte', async () => {
    const { model, bytes } = await readModelFile(PADDLE_MODELS.rec);
    expect(Buffer.from(encodeModel(model)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('keeps a built model intact through encode and decode', () => {
    const bytes = encodeModel(tinyMlp());
    const back = decodeModel(bytes);
    expect(back.graph?.node?.map((n) => n.opType)).toEqual(['MatMul', 'Add', 'Relu']);
    expect(Buffer.from(encodeModel(back)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('reports a model cut short as E_ONNX_TRUNCATED', () => {
    const bytes = encodeModel(tinyMlp());
    expect(codeOf(() => decodeModel(bytes.subarray(0, bytes.length - 7)))).toBe('E_ONNX_TRUNCATED');
  });

  it('reports random bytes and an empty file as E_ONNX_DECODE', () => {
    expect(codeOf(() => decodeModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])))).toBe('E_ONNX_DECODE');
    expect(codeOf(() => decodeModel(new Uint8Array(0)))).toBe('E_ONNX_DECODE');
  });

  it('rejects a field whose wire type disagrees with the schema instead of misreading it', () => {
    // ModelProto.graph (field 7) sent as a varint.
    expect(codeOf(() => decodeModel(Uint8Array.from([7 << 3, 1])))).toBe('E_ONNX_DECODE');
  });

  it('refuses a packed float field whose length is not a multiple of 4', () => {
    // ModelProto.graph → GraphProto.initializer → TensorProto.float_data with 6 bytes.
    const tensor = concat(varintField(2, 1), lengthDelimited(4, [0, 0, 128, 63, 0, 0]));
    expect(codeOf(() => decodeModel(lengthDelimited(7, lengthDelimited(5, tensor))))).toBe('E_ONNX_DECODE');
  });

  it('refuses a graph given twice, which onnxruntime would merge but protobufjs would replace', () => {
    const bytes = encodeModel(tinyMlp());
    const twice = new Uint8Array(bytes.length * 2);
    twice.set(bytes, 0);
    twice.set(bytes, bytes.length); // protobuf concatenation = merge
    expect(codeOf(() => decodeModel(twice))).toBe('E_ONNX_DECODE');
  });

  it('refuses a file that would decode into millions of objects (empty nodes, 1-byte int64s) before allocating them', () => {
    // 1,300,000 empty NodeProtos: 2 bytes each on the wire, ~100+ bytes each in the heap (cap: 16 × 10,000 + 1,000,000).
    const emptyNodes = new Uint8Array(2_600_000);
    for (let i = 0; i < emptyNodes.length; i += 2) emptyNodes[i] = (1 << 3) | 2; // GraphProto.node, length 0
    const nodeBomb = concat(lengthDelimited(7, emptyNodes));
    expect(codeOf(() => decodeModel(nodeBomb, { limits: { maxNodes: 10_000 } }))).toBe('E_ONNX_TOO_LARGE');
    // One tensor whose packed int64_data holds 2,000,000 one-byte varints: one Long object each.
    const tensor = concat(varintField(2, 7), lengthDelimited(7, new Uint8Array(2_000_000)));
    const longBomb = concat(lengthDelimited(7, lengthDelimited(5, tensor)));
    expect(codeOf(() => decodeModel(longBomb, { limits: { maxNodes: 10_000 } }))).toBe('E_ONNX_TOO_LARGE');
    expect(codeOf(() => decodeModel(longBomb))).toBe('ok');
  });

  it('refuses a model larger than limits.maxModelBytes before decoding', () => {
    const bytes = encodeModel(tinyMlp());
    expect(codeOf(() => decodeModel(bytes, { limits: { maxModelBytes: 16 } }))).toBe('E_ONNX_TOO_LARGE');
  });

  it('rejects If nested 10,000 deep with E_ONNX_TOO_DEEP, quickly', () => {
    const bytes = nestedIfModelBytes(10_000);
    const started = performance.now();
    expect(codeOf(() => decodeModel(bytes))).toBe('E_ONNX_TOO_DEEP');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('accepts nesting up to limits.maxGraphDepth and validates it cleanly', () => {
    const model = decodeModel(nestedIfModelBytes(32));
    const errors = validateModel(model).filter((f) => f.severity === 'error' && f.code === 'graph-too-deep');
    expect(errors).toEqual([]);
    expect(codeOf(() => decodeModel(nestedIfModelBytes(33)))).toBe('E_ONNX_TOO_DEEP');
  });
});

describe('readModelFile / writeModelFile', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir('edgevolve-codec-'));
  });
  afterEach(async () => {
    await cleanup();
  });

  it('writes atomically and leaves no temp file behind', async () => {
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, 'old contents');
    await writeModelFile(file, tinyMlp());
    const { model, baseDir } = await readModelFile(file);
    expect(model.graph?.name).toBe('mlp');
    expect(baseDir).toBe(dir);
    expect(fs.readdirSync(dir)).toEqual(['m.onnx']);
  });

  it('reports a write it cannot finish as E_IO, keeps the old file and leaves no temp file', async () => {
    const file = path.join(dir, 'm.onnx');
    fs.writeFileSync(file, 'old contents');
    // Renaming a file over a non-empty directory fails after the temp file is written and synced.
    const blocked = path.join(dir, 'blocked.onnx');
    fs.mkdirSync(path.join(blocked, 'inside'), { recursive: true });
    await expect(writeModelFile(blocked, tinyMlp())).rejects.toMatchObject({ code: 'E_IO' });
    await expect(writeModelFile(path.join(dir, 'no', 'such', 'dir.onnx'), tinyMlp())).rejects.toMatchObject({ code: 'E_IO' });
    expect(fs.readFileSync(file, 'utf8')).toBe('old contents');
    expect(fs.readdirSync(dir).sort()).toEqual(['blocked.onnx', 'm.onnx']);
  });

  it('reports a missing file as E_IO and a truncated one with its path', async () => {
    await expect(readModelFile(path.join(dir, 'nope.onnx'))).rejects.toMatchObject({ code: 'E_IO' });
    const file = path.join(dir, 'cut.onnx');
    const bytes = encodeModel(tinyMlp());
    fs.writeFileSync(file, bytes.subarray(0, 40));
    await expect(readModelFile(file)).rejects.toMatchObject({ code: 'E_ONNX_TRUNCATED', context: { path: file } });
  });

  it('checks the size cap before reading the file', async () => {
    const file = path.join(dir, 'big.onnx');
    fs.writeFileSync(file, encodeModel(tinyMlp()));
    await expect(readModelFile(file, { limits: { maxModelBytes: 10 } })).rejects.toMatchObject({ code: 'E_ONNX_TOO_LARGE' });
  });
});
