import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DataType, readModelFile, readTensor, validateModel, writeModelFile, makeGraph, makeModel, makeValueInfo, makeNode, type TensorProto } from '../../../src/onnx/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { codeOf } from '../../helpers/error-code.ts';

function externalTensor(location: string, extra: Record<string, string> = {}, dims = [4]): TensorProto {
  return {
    name: 'w',
    dataType: DataType.FLOAT,
    dims,
    dataLocation: 1,
    externalData: [{ key: 'location', value: location }, ...Object.entries(extra).map(([key, value]) => ({ key, value }))],
  };
}


describe('external data', () => {
  let root: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir: root, cleanup } = await makeTempDir('edgevolve-ext-'));
    dir = path.join(root, 'model');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(new Float32Array([9, 1, 2, 3, 4]).buffer));
    fs.writeFileSync(path.join(root, 'secret.bin'), Buffer.alloc(16, 7));
  });
  afterEach(async () => {
    await cleanup();
  });

  it('reads a range of a file beside the model', () => {
    const value = readTensor(externalTensor('weights.bin', { offset: '4', length: '16' }), { baseDir: dir });
    expect(Array.from(value.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('loads a model file whose initializer lives in an external file, and validates it', async () => {
    const model = makeModel({
      graph: makeGraph({
        name: 'g',
        nodes: [makeNode('Identity', ['w'], ['y'])],
        inputs: [],
        outputs: [makeValueInfo('y', DataType.FLOAT, [4])],
        initializers: [externalTensor('weights.bin', { offset: '4' })],
      }),
    });
    await writeModelFile(path.join(dir, 'm.onnx'), model);
    const loaded = await readModelFile(path.join(dir, 'm.onnx'));
    expect(validateModel(loaded.model, { baseDir: loaded.baseDir })).toEqual([]);
    expect(Array.from(readTensor(loaded.model.graph!.initializer![0]!, { baseDir: loaded.baseDir }).data as Float32Array)).toEqual([1, 2, 3, 4]);
    // Decoded from bytes, with no directory, the same model's external data is refused.
    expect(validateModel(loaded.model).map((f) => f.code)).toEqual(['external-data']);
  });

  const hostile: [string, string][] = [
    ['a parent-directory path', '../secret.bin'],
    ['a nested traversal', 'sub/../../secret.bin'],
    ['an absolute path', '/etc/passwd'],
    ['a missing file', 'nope.bin'],
    ['a directory', 'sub'],
    ['the model directory itself', '.'],
    ['an empty location', ''],
  ];
  it.each(hostile)('rejects %s with E_ONNX_EXTERNAL_DATA', (_label, location) => {
    expect(codeOf(() => readTensor(externalTensor(location), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
  });

  it('rejects a symlink that escapes the model directory but follows one that stays inside', () => {
    fs.symlinkSync(path.join(root, 'secret.bin'), path.join(dir, 'escape.bin'));
    fs.symlinkSync(path.join(dir, 'weights.bin'), path.join(dir, 'sub', 'inside.bin'));
    expect(codeOf(() => readTensor(externalTensor('escape.bin'), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
    expect(codeOf(() => readTensor(externalTensor('sub/inside.bin', { offset: '4' }), { baseDir: dir }))).toBe('ok');
  });

  it('rejects a FIFO instead of blocking on it', () => {
    const made = spawnSync('mkfifo', [path.join(dir, 'pipe.bin')]);
    if (made.status !== 0) return; // mkfifo is coreutils; absent only on exotic systems
    expect(codeOf(() => readTensor(externalTensor('pipe.bin'), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
  });

  it('rejects a range past the end of the file, malformed offsets and duplicate keys', () => {
    expect(codeOf(() => readTensor(externalTensor('weights.bin', { offset: '8', length: '16' }), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
    expect(codeOf(() => readTensor(externalTensor('weights.bin', { offset: '-4' }), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
    expect(codeOf(() => readTensor(externalTensor('weights.bin', { offset: '1e3' }), { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
    const dup = externalTensor('weights.bin');
    dup.externalData!.push({ key: 'location', value: '../secret.bin' });
    expect(codeOf(() => readTensor(dup, { baseDir: dir }))).toBe('E_ONNX_EXTERNAL_DATA');
  });

  it('rejects a range whose size disagrees with dims', () => {
    expect(codeOf(() => readTensor(externalTensor('weights.bin', { offset: '0', length: '20' }), { baseDir: dir }))).toBe('E_ONNX_TENSOR');
  });

  it('refuses external data when the model was not loaded from a file', () => {
    expect(codeOf(() => readTensor(externalTensor('weights.bin')))).toBe('E_ONNX_EXTERNAL_DATA');
  });
});
