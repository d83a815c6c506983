/**
 * The `bench` overhead target (issue 5): the isolated measurement of a ~1 ms model
 * must agree with an in-process loop within 10%. Both sides run the same code
 * (runtime/bench/run.ts) on the same model with the same inputs; the only difference
 * is the forked child. Rounds alternate in-process and isolated so that load changes
 * on the machine hit both alike; the verdict compares the medians over all rounds.
 *
 * One intra-op thread by default: with a thread pool, a busy machine preempts one
 * worker and the whole run waits for it, which is scheduler noise, not isolation cost.
 *
 *   npx tsx scripts/bench-bench.ts [--iterations 400] [--rounds 3] [--threads 1 (0: onnxruntime's default)] [--m 32]
 */
import { parseArgs } from 'node:util';
import { selfProcessMemory } from '../src/host/process-memory.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../src/onnx/index.ts';
import { runIsolatedBenchmark } from '../src/runtime/bench/parent.ts';
import type { BenchRequest } from '../src/runtime/bench/protocol.ts';
import { runBenchmark } from '../src/runtime/bench/run.ts';
import { summarizeLatencies } from '../src/runtime/bench/stats.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '400' }, rounds: { type: 'string', default: '3' }, m: { type: 'string', default: '32' }, threads: { type: 'string', default: '1' } } });
const iterations = Number(values.iterations);
const rounds = Number(values.rounds);
const m = Number(values.m);
const threads = Number(values.threads);
const TOLERANCE = 0.1;

/** Two MatMul+Relu layers, [m,512]·[512,512]: about 1 ms on one core of a 2020s x86 or a Pi 5. */
function model(): Uint8Array {
  const w = (seed: number): Float32Array => new Float32Array(512 * 512).map((_, i) => (((i + seed) * 2654435761) % 1000) / 1000 - 0.5);
  return encodeModel(
    makeModel({
      graph: makeGraph({
        name: 'one_ms',
        nodes: [makeNode('MatMul', ['x', 'w1'], ['h1']), makeNode('Relu', ['h1'], ['a1']), makeNode('MatMul', ['a1', 'w2'], ['h2']), makeNode('Relu', ['h2'], ['y'])],
        inputs: [makeValueInfo('x', DataType.FLOAT, [m, 512])],
        outputs: [makeValueInfo('y', DataType.FLOAT, [m, 512])],
        initializers: [makeTensor('w1', DataType.FLOAT, [512, 512], w(1)), makeTensor('w2', DataType.FLOAT, [512, 512], w(2))],
      }),
    }),
  );
}

const request: BenchRequest = { model: model(), warmup: 50, iterations, shapes: {}, seed: 1, ...(threads > 0 ? { threads } : {}) };
const inProcess: Float64Array[] = [];
const isolated: Float64Array[] = [];
const rows: string[][] = [];
const pct = (a: number, b: number): string => `${(((b - a) / a) * 100).toFixed(1)}%`;

for (let round = 1; round <= rounds; round++) {
  const local = await runBenchmark(request, selfProcessMemory);
  const child = await runIsolatedBenchmark({ request, timeoutMs: 300_000 });
  if (!child.ok) {
    console.error(`isolated run failed: ${child.failure.error.message}\n${child.failure.stderrTail}`);
    process.exit(1);
  }
  inProcess.push(local.samplesMs);
  isolated.push(child.result.samplesMs);
  const a = local.latency;
  const b = child.result.latency;
  rows.push([String(round), a.p50Ms.toFixed(3), b.p50Ms.toFixed(3), pct(a.p50Ms, b.p50Ms), a.meanMs.toFixed(3), b.meanMs.toFixed(3), pct(a.meanMs, b.meanMs), `${child.child.wallMs.toFixed(0)} ms`]);
}

const concat = (parts: Float64Array[]): Float64Array => {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
};
const all = { a: summarizeLatencies(concat(inProcess)), b: summarizeLatencies(concat(isolated)) };
rows.push(['all', all.a.p50Ms.toFixed(3), all.b.p50Ms.toFixed(3), pct(all.a.p50Ms, all.b.p50Ms), all.a.meanMs.toFixed(3), all.b.meanMs.toFixed(3), pct(all.a.meanMs, all.b.meanMs), '']);

const header = ['round', 'in-process p50 ms', 'isolated p50 ms', 'diff', 'in-process mean ms', 'isolated mean ms', 'diff', 'child wall'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
const p50Gap = Math.abs(all.b.p50Ms - all.a.p50Ms) / all.a.p50Ms;
console.log(`bench overhead: isolated child vs in-process loop, MatMul+Relu x2 [${m}x512]·[512x512], ${iterations} runs x ${rounds} rounds, ${threads > 0 ? `${threads} thread(s)` : 'default threads'}, same code (runtime/bench/run.ts)`);
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log(`target: isolated p50 within ${TOLERANCE * 100}% of in-process p50: ${(p50Gap * 100).toFixed(1)}% -> ${p50Gap <= TOLERANCE ? 'PASS' : 'FAIL'}`);
process.exitCode = p50Gap <= TOLERANCE ? 0 : 1;
