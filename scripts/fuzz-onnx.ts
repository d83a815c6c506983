/**
 * The long ONNX fuzz run: `npm run fuzz -- --count 10000 --seed 1`.
 * Mutates real models (see test/helpers/onnx-fuzz.ts for the mutation kinds), runs
 * each through decode, validation and tensor reads, and prints mutations by kind,
 * outcomes by error code, heap growth and the slowest case. Exits 1 on any failure:
 * an exception that is not an E_ONNX_* EdgevolveError, or a case using more than
 * --time-limit-ms of CPU time (wall time is printed too; on a loaded machine it measures the neighbours).
 */
import { parseArgs } from 'node:util';
import { loadFuzzSeeds, runFuzz, MUTATION_KINDS } from '../test/helpers/onnx-fuzz.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    'corpus-sample': { type: 'string', default: '200' },
    'time-limit-ms': { type: 'string', default: '1000' },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
if (!Number.isSafeInteger(count) || count <= 0 || !Number.isSafeInteger(seed)) {
  console.error('usage: npm run fuzz -- [--count N] [--seed S] [--corpus-sample N] [--time-limit-ms MS]');
  process.exit(2);
}

const seeds = loadFuzzSeeds({ corpusSample: Number(values['corpus-sample']), seed, includeLarge: true });
console.error(`fuzzing ${count} mutations of ${seeds.length} seed models, seed ${seed}`);
const summary = runFuzz({
  count,
  seed,
  seeds,
  timeLimitMs: Number(values['time-limit-ms']),
  onProgress: (done) => {
    if (done % 2000 === 0) console.error(`  ${done}/${count}`);
  },
});

const pad = (s: string, n: number): string => s.padEnd(n);
const num = (n: number, width = 8): string => String(Math.round(n)).padStart(width);
console.log(`\nmutations by kind${' '.repeat(9)}  count  mutate ms  exercise ms`);
for (const kind of MUTATION_KINDS) {
  console.log(`  ${pad(kind, 24)}${num(summary.byKind[kind] ?? 0, 7)}${num(summary.mutateMsByKind[kind] ?? 0, 11)}${num(summary.exerciseMsByKind[kind] ?? 0, 13)}`);
}
console.log('\noutcomes');
for (const [outcome, n] of Object.entries(summary.byOutcome).sort((a, b) => b[1] - a[1])) console.log(`  ${pad(outcome, 24)}${num(n, 7)}`);
console.log(`\nmax heap growth (after GC)   ${(summary.maxHeapGrowthBytes / 1024 / 1024).toFixed(1)} MiB`);
console.log(`slowest case, CPU time       ${summary.slowestCpu.ms.toFixed(1)} ms (${summary.slowestCpu.kind}, ${summary.slowestCpu.seedModel}, ${summary.slowestCpu.detail})`);
console.log(`slowest case, wall clock     ${summary.slowest.ms.toFixed(1)} ms (${summary.slowest.kind}, ${summary.slowest.seedModel}, ${summary.slowest.detail})`);
console.log(`total                        ${(summary.totalMs / 1000).toFixed(1)} s, ${summary.failures.length} failures`);
for (const f of summary.failures.slice(0, 20)) console.log(`  FAILURE #${f.index} ${f.kind} on ${f.seedModel} (${f.detail}): ${f.problem}`);
process.exitCode = summary.failures.length > 0 ? 1 : 0;
