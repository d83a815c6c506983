/**
 * `edgevolve optimize` as a user runs it: a child process, the report file, the Pareto
 * plot (parsed as XML by Python's ElementTree), the chosen model written, and exit 1
 * with the closest candidates and what to relax when nothing meets the budgets.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edgevolve } from '../../helpers/cli.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const CNN = path.resolve('test/fixtures/models/mnist-cnn.onnx');
const DATA = path.resolve('test/fixtures/data/mnist-test');


interface SvgShape {
  readonly tag: string;
  readonly attrib: Record<string, string>;
}

/** Every element of the SVG, parsed by a real XML parser. */
function parseSvg(file: string): SvgShape[] {
  const script = [
    'import sys, json, xml.etree.ElementTree as ET',
    'root = ET.parse(sys.argv[1]).getroot()',
    'print(json.dumps([{"tag": e.tag.split("}")[1], "attrib": e.attrib} for e in root.iter()]))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' })) as SvgShape[];
}

const hasPython = requireTool({ name: 'python3 (parses the SVG plot as XML)', check: () => execFileSync('python3', ['--version']).length > 0, debianPackage: 'python3' });

describe.runIf(hasPython)('edgevolve optimize', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'edgevolve-optimize-cli-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const common = ['--data', DATA, '--no-profile', '--no-mixed', '--eval-samples', '200', '--subset', '100', '--threads', '1'];

  it('--json with a size objective: one JSON document, the smallest feasible model written, the report and a plot whose points are the measured candidates', async () => {
    const out = path.join(root, 'chosen.onnx');
    const report = path.join(root, 'plan.json');
    const r = await edgevolve('optimize', CNN, ...common, '--objective', 'size', '--max-accuracy-drop', '2', '--candidates', 'int8-dynamic,int8-static:minmax:pc', '-o', out, '--report', report, '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      chosen: { id: string };
      candidates: { id: string; status: string; sizeBytes: number; bench: { p95Ms: number } | null; accuracy: { score: number } | null }[];
      pareto: string[];
    };
    expect(doc.ok).toBe(true);
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual(doc);
    const feasible = doc.candidates.filter((c) => c.status === 'feasible' || c.status === 'chosen');
    const chosen = doc.candidates.find((c) => c.id === doc.chosen.id)!;
    expect(chosen.status).toBe('chosen');
    expect(chosen.sizeBytes).toBe(Math.min(...feasible.map((c) => c.sizeBytes)));
    expect(statSync(out).size).toBe(chosen.sizeBytes);
    expect(r.stderr).toMatch(/optimize: accuracy metric: top-1 accuracy against labels\.npy/);

    const svg = parseSvg(path.join(root, 'plan.svg'));
    const circles = svg.filter((e) => e.tag === 'circle');
    const measured = doc.candidates.filter((c) => c.bench !== null && c.accuracy !== null);
    expect(circles.map((c) => c.attrib['data-id']).sort()).toEqual(measured.map((c) => c.id).sort());
    for (const c of circles) {
      const m = measured.find((x) => x.id === c.attrib['data-id'])!;
      expect(Number(c.attrib['data-p95'])).toBeCloseTo(m.bench!.p95Ms, 9);
      expect(Number(c.attrib['data-score'])).toBeCloseTo(m.accuracy!.score, 9);
      expect(c.attrib.class!.includes('front')).toBe(doc.pareto.includes(m.id));
    }
    expect(circles.filter((c) => c.attrib.class!.includes('chosen')).map((c) => c.attrib['data-id'])).toEqual([doc.chosen.id]);
    expect(svg.filter((e) => e.tag === 'line' && e.attrib['data-budget'] === 'accuracy-drop')).toHaveLength(1);
  }, 180_000);

  it('when nothing meets the budgets: exit 1, the closest candidates with the budget missed and by how much, what to relax, and no model written', async () => {
    const out = path.join(root, 'none.onnx');
    const report = path.join(root, 'none.json');
    const r = await edgevolve('optimize', CNN, ...common, '--latency-p95', '0.0001', '--candidates', 'int8-dynamic', '-o', out, '--report', report);
    expect(r.code).toBe(1);
    // fp32 and int8-dynamic both miss by their p95; which is closer depends on int8's speed here (about 1.0x fp32 on this model).
    expect(r.stderr).toMatch(/E_PLAN_NO_FEASIBLE: no candidate meets every budget; closest: .*\bfp32 \(latency-p95 [\d.]+ ms > 0\.000 ms/);
    expect(r.stdout).toMatch(/NOTHING MEETS THE BUDGETS/);
    expect(existsSync(out)).toBe(false);
    const doc = JSON.parse(readFileSync(report, 'utf8')) as { ok: boolean; chosen: null; failure: { closest: { id: string; misses: { budget: string; over: number }[]; relax: string[] }[] } };
    expect(doc.ok).toBe(false);
    expect(doc.chosen).toBeNull();
    const fp32 = doc.failure.closest.find((c) => c.id === 'fp32')!;
    expect(fp32.misses[0]!.budget).toBe('latency-p95');
    expect(fp32.misses[0]!.over).toBeGreaterThan(0);
    expect(fp32.relax[0]).toMatch(/^--latency-p95 \d+\.\d{3}$/);
    const svg = parseSvg(path.join(root, 'none.svg'));
    expect(svg.filter((e) => e.tag === 'line' && e.attrib['data-budget'] === 'latency-p95').map((e) => Number(e.attrib['data-value']))).toEqual([0.0001]);
  }, 180_000);

  it('a negative budget is bad input: exit 1 with E_PLAN_BUDGET_INVALID naming the flag, before any work', async () => {
    const r = await edgevolve('optimize', CNN, '--data', DATA, '--size', '-3', '-o', path.join(root, 'x.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_PLAN_BUDGET_INVALID: --size -3/);
  }, 60_000);

  it('--batch 0 is a usage error: exit 2 with E_USAGE naming the flag, before any work', async () => {
    const r = await edgevolve('optimize', CNN, '--data', DATA, '--batch', '0', '-o', path.join(root, 'x.onnx'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E_USAGE: --batch 0: expected a whole number of samples/);
    expect(existsSync(path.join(root, 'x.onnx'))).toBe(false);
  }, 60_000);
});
