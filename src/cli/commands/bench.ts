import { resolve } from 'node:path';
import type { Command } from 'commander';
import { dataTypeName } from '../../onnx/index.ts';
import { parseShapeArgument } from '../../runtime/bench/inputs.ts';
import { runIsolatedBenchmark, type BenchOutcome } from '../../runtime/bench/parent.ts';
import { ERROR_CODES, EdgevolveError, type ErrorCode } from '../../errors/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface BenchFlags {
  iterations: string;
  warmup: string;
  threads?: string;
  batch?: string;
  shape: string[];
  data?: string;
  timeout: string;
  ep?: string;
  json?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('Benchmark a model in an isolated child process: session create time, latency percentiles, throughput, peak memory.')
    .argument('<model>', 'path to an .onnx file')
    .option('--iterations <n>', 'timed runs', '100')
    .option('--warmup <n>', 'runs before timing', '10')
    .option('--threads <n>', 'intra-op threads (default: one per core)')
    .option('--batch <n>', 'first dimension of inputs where it is free')
    .option('--shape <name=DxD...>', 'shape of an input, e.g. images=1x3x224x224 (repeatable)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--data <dir>', 'feed the first batch of this data set (one .npy per input, or the ONNX test layout)')
    .option('--timeout <s>', 'kill the child after this many seconds', '300')
    .option('--ep <list>', 'execution providers in preference order, comma-separated (default: cpu)')
    .option('--json', 'print one JSON document')
    .action(async (model: string, opts: BenchFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const iterations = positiveInt(opts.iterations, '--iterations');
        const warmup = nonNegativeInt(opts.warmup, '--warmup');
        const timeoutS = Number(opts.timeout);
        if (!(timeoutS > 0)) throw usageError(`--timeout ${opts.timeout}: expected a positive number of seconds`);
        const outcome = await runIsolatedBenchmark({
          request: {
            model: resolve(model),
            iterations,
            warmup,
            ...(opts.threads === undefined ? {} : { threads: positiveInt(opts.threads, '--threads') }),
            ...(opts.batch === undefined ? {} : { batch: positiveInt(opts.batch, '--batch') }),
            ...(opts.data === undefined ? {} : { dataDir: resolve(opts.data) }),
            ...(opts.ep === undefined ? {} : { executionProviders: opts.ep.split(',').map((s) => s.trim()).filter((s) => s.length > 0) }),
            shapes: Object.fromEntries(opts.shape.map(parseShapeArgument)),
            seed: 1,
          },
          timeoutMs: timeoutS * 1000,
        });
        if (!outcome.ok) {
          const { error, ...rest } = outcome.failure;
          throw new EdgevolveError(knownCode(error.code), error.message, { context: { ...error.context, ...rest, model } });
        }
        if (opts.json) printJson(toJson(model, outcome));
        else process.stdout.write(renderBench(model, outcome));
      });
    });
}

type Success = Extract<BenchOutcome, { ok: true }>;

function toJson(model: string, outcome: Success): unknown {
  const { samplesMs, ...result } = outcome.result;
  return { ok: true, model, ...result, samplesMs: Array.from(samplesMs), child: outcome.child };
}

export function renderBench(model: string, outcome: Success): string {
  const r = outcome.result;
  const l = r.latency;
  const mib = (n: number): string => `${(n / 1024 ** 2).toFixed(1)} MiB`;
  const rows: [string, string][] = [
    ['model', model],
    ['providers', r.executionProviders.join(', ')],
    ['inputs', r.inputs.map((i) => `${i.name} ${dataTypeName(i.dataType)}[${i.dims.join('x')}] ${i.source}${i.defaulted.length > 0 ? ` (assumed ${i.defaulted.join(', ')})` : ''}`).join('; ')],
    ['session create', `${r.sessionCreateMs.toFixed(1)} ms`],
    ['warm-up', `${r.warmup.runs} runs, ${r.warmup.ms.toFixed(1)} ms`],
    ['latency', `p50 ${l.p50Ms.toFixed(3)}  p90 ${l.p90Ms.toFixed(3)}  p95 ${l.p95Ms.toFixed(3)}  p99 ${l.p99Ms.toFixed(3)} ms`],
    ['', `mean ${l.meanMs.toFixed(3)} ± ${l.stddevMs.toFixed(3)}  min ${l.minMs.toFixed(3)}  max ${l.maxMs.toFixed(3)} ms over ${l.count} runs`],
    ['throughput', `${r.throughput.inferencesPerSecond.toFixed(1)} inferences/s, ${r.throughput.samplesPerSecond.toFixed(1)} samples/s`],
    ['peak memory', `${mib(r.memory.peakDeltaBytes)} above baseline (peak ${mib(r.memory.peakBytes)}, baseline ${mib(r.memory.baselineBytes)}${r.memory.peakReset ? '' : ', peak not resettable here'})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`${flag} ${text}: expected a positive integer`);
  return n;
}

function nonNegativeInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw usageError(`${flag} ${text}: expected a non-negative integer`);
  return n;
}

/** The child's error code as one of ours (it is ours unless the child is not edgevolve's). */
function knownCode(code: string): ErrorCode {
  return code in ERROR_CODES ? (code as ErrorCode) : 'E_BENCH_CRASHED';
}
