/**
 * `edgevolve eval` as a user runs it: a child process, human and JSON output, and
 * exit 1 with a one-line reason when the data set does not fit the model.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgevolve } from '../../helpers/cli.ts';
import { writeNpy } from '../../../src/data/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../../src/onnx/index.ts';



describe('edgevolve eval', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'edgevolve-eval-cli-'));
  const model = path.join(root, 'identity-scores.onnx');
  const data = path.join(root, 'data');
  const wrong = path.join(root, 'wrong');

  beforeAll(async () => {
    // scores = x · I: the "prediction" of sample s is argmax of its own row.
    const graph = makeGraph({
      name: 'scores',
      nodes: [makeNode('MatMul', ['x', 'I'], ['scores'])],
      inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 7])],
      outputs: [makeValueInfo('scores', DataType.FLOAT, ['N', 7])],
      initializers: [makeTensor('I', DataType.FLOAT, [7, 7], Float32Array.from({ length: 49 }, (_, i) => (i % 8 === 0 ? 1 : 0)))],
    });
    writeFileSync(model, encodeModel(makeModel({ graph })));
    // Sample s puts its largest score on class s % 7 and its second on (s + 1) % 7; labels: 3 of 10 point at the second.
    mkdirSync(data);
    const x = new Float32Array(10 * 7);
    const labels = new Int32Array(10);
    for (let s = 0; s < 10; s++) {
      x[s * 7 + (s % 7)] = 2;
      x[s * 7 + ((s + 1) % 7)] = 1;
      labels[s] = s < 3 ? (s + 1) % 7 : s % 7;
    }
    await writeNpy(path.join(data, 'x.npy'), { dtype: 'float32', shape: [10, 7], data: x });
    await writeNpy(path.join(data, 'labels.npy'), { dtype: 'int32', shape: [10], data: labels });
    mkdirSync(wrong);
    await writeNpy(path.join(wrong, 'x.npy'), { dtype: 'float64', shape: [2, 7], data: new Float64Array(14) });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  // Each run starts Node and tsx (about a second of CPU): start them all at once.
  type Result = Awaited<ReturnType<typeof edgevolve>>;
  let human: Promise<Result>, json: Promise<Result>, mismatch: Promise<Result>, badBatch: Promise<Result>;
  beforeAll(() => {
    human = edgevolve('eval', model, '--data', data, '--batch', '4');
    json = edgevolve('eval', model, '--data', data, '--reference', model, '--limit', '5', '--json');
    mismatch = edgevolve('eval', model, '--data', wrong);
    badBatch = edgevolve('eval', model, '--data', data, '--batch', 'zero');
  });

  it('prints top-1 70% and top-5 100% for the human reader', async () => {
    const { code, stdout } = await human;
    expect(code).toBe(0);
    expect(stdout).toMatch(/accuracy\s+top-1 70\.00%\s+top-5 100\.00%\s+\(output 'scores', 7 classes\)/);
    expect(stdout).toMatch(/feeding\s+4 samples per run/);
  });

  it('prints exactly one JSON document with --json, fidelity included with --reference', async () => {
    const { code, stdout } = await json;
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { ok: boolean; samples: number; accuracy: { top1: number }; fidelity: { outputs: { top1Agreement: number; maxAbsError: number }[] } };
    expect(report.ok).toBe(true);
    expect(report.samples).toBe(5);
    expect(report.accuracy.top1).toBeCloseTo(2 / 5, 9);
    expect(report.fidelity.outputs[0]).toMatchObject({ top1Agreement: 1, maxAbsError: 0 });
  });

  it('exits 1 with a one-line reason naming the input when the data set does not match', async () => {
    const { code, stdout, stderr } = await mismatch;
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n').filter((line) => !line.startsWith('npm warn'));
    expect(lines).toEqual([`edgevolve: E_DATA_DTYPE_MISMATCH: input 'x': the model takes float32 (FLOAT), x.npy holds float64 (DOUBLE)`]);
  });

  it('exits 2 on a bad --batch value', async () => {
    expect((await badBatch).code).toBe(2);
  });
});
