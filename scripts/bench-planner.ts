/**
 * The planner targets (issue 5), measured on this machine and printed as a table:
 *   (a) mnist-teacher, --max-accuracy-drop 0.5 and a p95 budget of 0.6x the fp32 p95
 *       measured in this run: a model meeting both, in < 60 s wall, <= 20 full candidates;
 *   (b) mnist-cnn with only a latency objective: the measured fastest is chosen, and
 *       the measurements that decided it are printed;
 *   (c) mnist-mlp, agreement drop <= 0.1 pt and p95 <= 0.85x fp32 (lowest of 3 runs) at batch 512: a mixed plan
 *       that meets budgets neither all-int8 (accuracy) nor all-fp32
 *       (latency) meets;
 *   (d) bench overhead: scripts/bench-bench.ts (run with --overhead, else quoted).
 * Not a test: the numbers go to the README.
 *
 *   npx tsx scripts/bench-planner.ts [--only a,b,c,d] [--overhead] [--threads 1] [--json]
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openDataset } from '../src/data/index.ts';
import { readCpuIsa } from '../src/hardware/index.ts';
import { nodeFiles } from '../src/host/files.ts';
import { readModelFile } from '../src/onnx/index.ts';
import { CandidateBuilder, isolatedBench, optimize, type Budgets, type CandidateRecord, type Objective, type OptimizeOptions, type OptimizeResult } from '../src/planner/index.ts';
import { shuffledOrders } from './lib/shuffled-orders.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'a,b,c,d' },
    overhead: { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    'c-model': { type: 'string', default: 'mnist-mlp' },
    'c-drop': { type: 'string', default: '0.1' },
    'c-latency': { type: 'string', default: '0.85' },
    'c-batch': { type: 'string', default: '512' },
    'c-metric': { type: 'string', default: 'agreement' },
    json: { type: 'boolean', default: false },
  },
});
const only = new Set(values.only.split(','));
const threads = Number(values.threads);
const MODELS = path.resolve('test/fixtures/models');
const MNIST = path.resolve('test/fixtures/data/mnist-test');
const bench = isolatedBench(threads, 1500);
const cpu = await readCpuIsa(nodeFiles(), os.arch());

const defaults: OptimizeOptions = {
  budgets: {},
  objective: 'accuracy',
  timeLimitS: 600,
  threads,
  subsetSamples: 300,
  sensitivitySamples: 100,
  calibrationSamples: 256,
  quickMs: 400,
  maxFullCandidates: 20,
  maxSensitivityLayers: 64,
};

interface Row {
  readonly target: string;
  readonly setup: string;
  readonly result: string;
  readonly verdict: string;
}
const rows: Row[] = [];
const details: string[] = [];

async function search(model: string, data: string, budgets: Budgets, objective: Objective, extra: Partial<OptimizeOptions> = {}): Promise<{ r: OptimizeResult; wallMs: number }> {
  const { model: proto } = await readModelFile(model);
  const dataset = await openDataset(data);
  const started = performance.now();
  try {
    const r = await optimize(proto, dataset, { ...defaults, ...extra, budgets, objective }, {
      bench,
      now: () => performance.now(),
      progress: (l) => process.stderr.write(`  ${l}\n`),
      measured: null,
      // As the CLI does: the CPU's ISA decides reduce-range for int8 (7-bit weights on x86 without VNNI, as here).
      cpu,
    });
    return { r, wallMs: performance.now() - started };
  } finally {
    await dataset.close();
  }
}

/**
 * fp32 p95 measured by the same isolated benchmark the planner uses (folded model, batch 1 unless told), three
 * runs, because the first child of a run is often cold (a first run measured the teacher's p95 at 0.664 ms and the
 * search's own fp32 run right after at 0.281 ms): the median, or the lowest (`pick: 'min'`, the planner's own rule
 * for fp32, which keeps the lower of two runs).
 */
async function fp32P95(model: string, batch = 1, pick: 'median' | 'min' = 'median'): Promise<number> {
  const { model: proto } = await readModelFile(model);
  const built = await new CandidateBuilder({}).build(proto, { id: 'fp32', steps: [{ kind: 'fold' }] });
  const shapes = { input: [batch, 1, 28, 28] };
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) runs.push((await bench(built.bytes, shapes, 0.3 * batch)).p95Ms);
  process.stderr.write(`  fp32 p95 before the search: ${runs.map((x) => x.toFixed(3)).join(', ')} ms (${pick} taken)\n`);
  return runs.sort((x, y) => x - y)[pick === 'min' ? 0 : 1]!;
}

function candidateTable(r: OptimizeResult, filter: (c: CandidateRecord) => boolean = () => true): string {
  const lines = r.candidates.filter(filter).map((c) =>
    [
      c.id.padEnd(34),
      c.status.padEnd(14),
      (c.quickLatencyRatio === null ? '-' : `${c.quickLatencyRatio.toFixed(2)}x`).padEnd(7),
      (c.bench === null ? '-' : `${c.bench.p50Ms.toFixed(3)}/${c.bench.p95Ms.toFixed(3)}`).padEnd(14),
      (c.accuracy === null ? (c.subset === null ? '-' : `${c.subset.score.toFixed(2)} (subset)`) : `${c.accuracy.score.toFixed(2)} (-${c.accuracy.drop.toFixed(2)})`).padEnd(18),
      c.reason,
    ].join(' '),
  );
  return [`${'candidate'.padEnd(34)} ${'status'.padEnd(14)} ${'quick'.padEnd(7)} ${'p50/p95 ms'.padEnd(14)} ${'accuracy (drop)'.padEnd(18)} why`, ...lines].join('\n');
}

const teacher = path.join(MODELS, 'mnist-teacher.onnx');

if (only.has('a')) {
  process.stderr.write('(a) mnist-teacher\n');
  const base = await fp32P95(teacher);
  const budget = 0.6 * base;
  const { r, wallMs } = await search(teacher, MNIST, { maxAccuracyDrop: 0.5, latencyP95Ms: budget }, 'accuracy');
  const chosen = r.candidates.find((c) => c.id === r.chosen?.id);
  const met = chosen !== undefined && wallMs < 60_000 && r.counts.full <= 20;
  rows.push({
    target: '(a) teacher: drop <= 0.5 pt and p95 <= 0.6x fp32, < 60 s, <= 20 full',
    setup: `fp32 p95 ${base.toFixed(3)} ms (this run) -> budget ${budget.toFixed(3)} ms`,
    result:
      chosen === undefined
        ? `nothing feasible (${r.failure?.summary ?? ''}); ${(wallMs / 1000).toFixed(1)} s, ${r.counts.full} full, ${r.counts.benched} benched`
        : `${chosen.id}: p95 ${chosen.bench!.p95Ms.toFixed(3)} ms, drop ${chosen.accuracy!.drop.toFixed(2)} pt; ${(wallMs / 1000).toFixed(1)} s wall, ${r.counts.full} evaluated in full, ${r.counts.benched} benched, ${r.counts.candidates} candidates`,
    verdict: met ? 'MET' : 'NOT MET',
  });
  details.push(`(a) mnist-teacher candidates:\n${candidateTable(r)}`);
}

if (only.has('b')) {
  process.stderr.write('(b) mnist-cnn, latency objective\n');
  // The CLI's default accuracy guard (planner.maxAccuracyDrop = 1 pt) applies: "only a latency objective" from the command line.
  const { r, wallMs } = await search(path.join(MODELS, 'mnist-cnn.onnx'), MNIST, { maxAccuracyDrop: 1 }, 'latency');
  const benched = r.candidates.filter((c) => c.bench !== null);
  const fastest = [...benched].sort((x, y) => x.bench!.p95Ms - y.bench!.p95Ms)[0];
  const int8 = r.candidates.filter((c) => c.id.startsWith('int8') && c.quickLatencyRatio !== null);
  rows.push({
    target: '(b) cnn: latency objective picks the measured fastest',
    setup: '--objective latency only (default accuracy guard 1 pt)',
    result: `chosen ${r.chosen?.id ?? '-'} (p95 ${r.candidates.find((c) => c.id === r.chosen?.id)?.bench?.p95Ms.toFixed(3) ?? '-'} ms); int8 quick ratios ${int8.map((c) => `${c.id} ${c.quickLatencyRatio!.toFixed(2)}x`).join(', ')}; ${(wallMs / 1000).toFixed(1)} s`,
    verdict: r.chosen !== null && fastest !== undefined && fastest.id === r.chosen.id ? 'MET' : 'NOT MET',
  });
  details.push(`(b) mnist-cnn candidates (quick = in-process median over fp32's, taking turns; p50/p95 from the isolated bench):\n${candidateTable(r)}`);
}

if (only.has('c')) {
  // Top-1 agreement with fp32 (or, with --c-metric labels, top-1 against labels) on all 2000 test images, latency at --c-batch.
  process.stderr.write('(c) mixed precision\n');
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-planner-'));
  try {
    let data = MNIST;
    if (values['c-metric'] !== 'labels') {
      data = path.join(dir, 'unlabelled');
      mkdirSync(data);
      copyFileSync(path.join(MNIST, 'input.npy'), path.join(data, 'input.npy'));
    }
    const batch = Number(values['c-batch']);
    const cModel = path.join(MODELS, `${values['c-model']}.onnx`);
    const base = await fp32P95(cModel, batch, 'min');
    const budgets: Budgets = { maxAccuracyDrop: Number(values['c-drop']), latencyP95Ms: Number(values['c-latency']) * base };
    const { r, wallMs } = await search(cModel, data, budgets, 'latency', {
      only: ['int8-dynamic', 'int8-dynamic:pc', 'int8-static:minmax:pc', 'int8-static:entropy:pc'],
      subsetSamples: 2000,
      sensitivitySamples: 2000,
      batch,
    });
    const fp32 = r.candidates.find((c) => c.id === 'fp32')!;
    const int8 = r.candidates.filter((c) => c.id.startsWith('int8'));
    const mixed = r.candidates.filter((c) => c.id.startsWith('mixed:'));
    const chosen = r.candidates.find((c) => c.id === r.chosen?.id);
    const int8MissesAccuracy = (c: CandidateRecord): boolean => c.misses.some((m) => m.budget === 'accuracy-drop');
    const claim = chosen !== undefined && chosen.id.startsWith('mixed:') && fp32.misses.some((m) => m.budget === 'latency-p95') && int8.length > 0 && int8.every(int8MissesAccuracy);
    // After the search, fp32, all-int8 (dynamic) and the chosen plan side by side: three rounds of the same isolated
    // benchmark, so that all-int8's latency (the search rejects it on accuracy before benchmarking) is measured too. Each
    // round in a new seeded order (scripts/lib/shuffled-orders.ts): a fixed one always ran all-int8 right after fp32.
    const side: { id: string; p50: number[]; p95: number[] }[] = [];
    if (r.chosenBytes !== null) {
      const { model: proto } = await readModelFile(cModel);
      const builder = new CandidateBuilder({ cpu });
      const fp32Bytes = (await builder.build(proto, { id: 'fp32', steps: [{ kind: 'fold' }] })).bytes;
      const int8Bytes = (await builder.build(proto, { id: 'int8-dynamic', steps: [{ kind: 'fold' }, { kind: 'int8-dynamic', perChannel: false }] })).bytes;
      const models = [
        { id: 'fp32', bytes: fp32Bytes },
        { id: 'int8-dynamic (all)', bytes: int8Bytes },
        { id: r.chosen!.id, bytes: r.chosenBytes },
      ];
      for (const m of models) side.push({ id: m.id, p50: [], p95: [] });
      const nextOrder = shuffledOrders(models.length);
      for (let round = 0; round < 3; round++) {
        for (const i of nextOrder()) {
          const m = models[i]!;
          const n = await bench(m.bytes, { input: [batch, 1, 28, 28] }, 0.01 * batch);
          side[i]!.p50.push(n.p50Ms);
          side[i]!.p95.push(n.p95Ms);
        }
      }
    }
    const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const sideLine = side.map((m) => `${m.id} p50/p95 ${med(m.p50).toFixed(3)}/${med(m.p95).toFixed(3)} ms (${(med(m.p95) / med(side[0]!.p95)).toFixed(2)}x fp32 p95)`).join(', ');
    const acc = (c: CandidateRecord): string => (c.accuracy !== null ? `${c.accuracy.score.toFixed(2)}% (-${c.accuracy.drop.toFixed(2)})` : c.subset !== null ? `${c.subset.score.toFixed(2)}% (-${c.subset.drop.toFixed(2)}, subset)` : '-');
    const p95 = (c: CandidateRecord): string => (c.bench === null ? `quick ${c.quickLatencyRatio?.toFixed(2) ?? '-'}x` : `p95 ${c.bench.p95Ms.toFixed(3)} ms`);
    rows.push({
      target: '(c) a mixed plan meets what neither all-int8 (accuracy) nor all-fp32 (latency) meets',
      setup: `${values['c-model']}, ${r.metric.description}, 2000 images, batch ${batch}, drop <= ${budgets.maxAccuracyDrop} pt, p95 <= ${values['c-latency']}x fp32 (lowest of 3 runs before the search: ${budgets.latencyP95Ms!.toFixed(3)} ms)`,
      result: `fp32 ${p95(fp32)}, ${acc(fp32)}: ${fp32.reason}; ${int8.map((c) => `${c.id} ${p95(c)}, ${acc(c)}: ${c.reason}`).join('; ')}; chosen ${chosen?.id ?? '-'}${chosen?.bench ? ` ${p95(chosen)}, ${acc(chosen)}` : ''}; ${mixed.length} mixed plans tried; ${(wallMs / 1000).toFixed(1)} s. Afterwards, 3 isolated runs each, in a shuffled order per round (medians): ${sideLine}`,
      verdict: claim ? 'MET' : 'NOT MET',
    });
    details.push(
      `(c) candidates:\n${candidateTable(r)}\nsensitivity (${r.sensitivity?.family ?? '-'}): ${r.sensitivity?.layers.map((l) => `${l.node} drop ${l.drop.toFixed(2)} pt alone, ${l.revertedDrop.toFixed(2)} pt with it reverted, 1-cos ${l.error.toExponential(2)}`).join(', ') ?? '-'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (only.has('d')) {
  if (values.overhead) {
    process.stderr.write('(d) bench overhead (scripts/bench-bench.ts)\n');
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/bench-bench.ts'], { encoding: 'utf8' });
    const verdict = /-> (PASS|FAIL)/.exec(out)?.[1] ?? '?';
    const line = out.split('\n').find((l) => l.startsWith('target:')) ?? '';
    rows.push({ target: '(d) isolated bench of a 1 ms model within 10% of in-process', setup: 'scripts/bench-bench.ts, this run', result: line, verdict: verdict === 'PASS' ? 'MET' : 'NOT MET' });
  } else {
    rows.push({
      target: '(d) isolated bench of a 1 ms model within 10% of in-process',
      setup: 'quoted from README "Benchmark" (npm run bench-bench)',
      result: 'p50 gap 0.9% over 3 alternating rounds (other runs that day 8.3%, 6.0%); rerun with --overhead',
      verdict: 'MET (quoted)',
    });
  }
}

if (values.json) {
  console.log(JSON.stringify({ rows, details }, null, 2));
} else {
  for (const d of details) console.log(`${d}\n`);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['target', 'setup', 'result', 'verdict'], ...rows.map((r) => [r.target, r.setup, r.result, r.verdict])].map((r) => r[i]!.length)));
  console.log(`| ${['target', 'setup', 'result', 'verdict'].map((h, i) => h.padEnd(widths[i]!)).join(' | ')} |`);
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(`| ${[r.target, r.setup, r.result, r.verdict].map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
}
