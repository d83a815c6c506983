import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, parse } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { openDataset } from '../../data/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import { MicroBenchCache, hardwareFingerprint, onnxruntimeVersion, collectHardware, readCpuIsa, runMicroBenchmarks, type MicroBenchmarks } from '../../hardware/index.ts';
import { systemCommands } from '../../host/commands.ts';
import { nodeFiles } from '../../host/files.ts';
import { systemHost } from '../../host/index.ts';
import { systemInfo } from '../../host/system-info.ts';
import { readModelFile, writeFileAtomic } from '../../onnx/index.ts';
import { OBJECTIVES, isolatedBench, optimize, paretoSvg, renderReport, reportDocument, validateBudgets, type Objective } from '../../planner/index.ts';
import { openStateDatabase } from '../../store/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface OptimizeFlags {
  data: string;
  output: string;
  latencyP95?: number;
  memory?: number;
  size?: number;
  maxAccuracyDrop?: number;
  objective?: string;
  timeLimit?: number;
  threads?: number;
  batch?: number;
  subset?: number;
  evalSamples?: number;
  report?: string;
  plot?: string;
  json?: boolean;
  mixed: boolean;
  candidates?: string[];
  profile: boolean;
  config?: string;
  stateDir?: string;
}

export function registerOptimize(program: Command): void {
  program
    .command('optimize')
    .description('Find the variant of a model that meets this device\'s budgets: fp32, fp16, int8 (dynamic, static), pruned, combined and mixed-precision candidates, measured here.')
    .argument('<model>', 'input .onnx file')
    .requiredOption('--data <dir>', 'data set: one <input>.npy per model input (+ labels.npy for accuracy; else fidelity to fp32)')
    .requiredOption('-o, --output <file>', 'where the chosen model is written (atomically)')
    .option('--latency-p95 <ms>', 'p95 latency budget of one run at --batch, ms', number)
    .option('--batch <n>', 'samples per run in every latency measurement (default planner.batch, 1; the model needs a free batch axis)', number)
    .option('--memory <MB>', 'peak memory budget of the benchmark process above its baseline, MiB', number)
    .option('--size <MB>', 'model file size budget, MiB', number)
    .option('--max-accuracy-drop <pt>', 'points of top-1 (or agreement, or cosine x 100) the result may lose against fp32', number)
    .option('--objective <o>', `what to optimize among the feasible: ${OBJECTIVES.join(' | ')}`)
    .option('--time-limit <s>', 'wall-time limit of the search, seconds', number)
    .option('--threads <n>', 'onnxruntime intra-op threads for every measurement', number)
    .option('--subset <n>', 'samples of the accuracy pre-check', number)
    .option('--eval-samples <n>', 'evaluate at most N samples in the full accuracy check', number)
    .option('--report <file>', 'write the JSON report here (the Pareto plot goes beside it as <name>.svg)')
    .option('--plot <file>', 'write the Pareto plot (SVG) here')
    .option('--candidates <ids>', 'try only these candidates, comma-separated (fp32, fp16, int8-dynamic, int8-dynamic:pc, int8-static:minmax:pc, ..., prune0.3, prune0.2+int8-dynamic)', (v: string) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''))
    .option('--no-mixed', 'do not search mixed-precision plans')
    .option('--no-profile', 'do not read or measure the device profile (predictions then assume int8 = fp32 speed)')
    .option('--config <file>', 'configuration file (planner defaults, stateDir)')
    .option('--state-dir <dir>', 'state directory where the profile measurements are cached')
    .option('--json', 'print one JSON document')
    .action(async (input: string, flags: OptimizeFlags) => {
      await runAction(Boolean(flags.json), async () => {
        const config = loadConfig({ ...(flags.config === undefined ? {} : { file: flags.config }), env: process.env });
        const defaults = config.planner;
        const objective = (flags.objective ?? defaults.objective) as Objective;
        if (!OBJECTIVES.includes(objective)) throw usageError(`--objective ${flags.objective}: expected one of ${OBJECTIVES.join(', ')}`);
        const batch = flags.batch ?? defaults.batch;
        if (!Number.isInteger(batch) || batch < 1) throw usageError(`--batch ${flags.batch}: expected a whole number of samples, at least 1`);
        const budgets = validateBudgets({
          ...optional('latencyP95Ms', flags.latencyP95 ?? defaults.latencyP95Ms),
          ...optional('memoryMB', flags.memory ?? defaults.memoryMB),
          ...optional('sizeMB', flags.size ?? defaults.sizeMB),
          ...optional('maxAccuracyDrop', flags.maxAccuracyDrop ?? defaults.maxAccuracyDrop),
        });
        // Progress goes to stderr in both modes: stdout holds the table or the one JSON document.
        const progress = (line: string): void => void process.stderr.write(`optimize: ${line}\n`);
        const loaded = await readModelFile(input);
        const cpu = await readCpuIsa(nodeFiles(), os.arch());
        const measured = flags.profile ? await cachedMeasurements(flags.stateDir ?? config.stateDir, progress) : null;
        const dataset = await openDataset(flags.data);
        const threads = flags.threads ?? defaults.threads;
        try {
          const result = await optimize(
            loaded.model,
            dataset,
            {
              budgets,
              objective,
              timeLimitS: flags.timeLimit ?? defaults.timeLimitS,
              threads,
              batch,
              subsetSamples: flags.subset ?? defaults.subsetSamples,
              sensitivitySamples: defaults.sensitivitySamples,
              calibrationSamples: defaults.calibrationSamples,
              evalSamples: flags.evalSamples,
              quickMs: 400,
              maxFullCandidates: defaults.maxFullCandidates,
              mixed: flags.mixed,
              only: flags.candidates,
              maxSensitivityLayers: 64,
            },
            { bench: isolatedBench(threads, defaults.benchMs), now: () => performance.now(), progress, measured, cpu },
          );
          const plotFile = flags.plot ?? (flags.report === undefined ? null : join(dirname(flags.report), `${parse(flags.report).name}.svg`));
          const header = { input, output: result.chosen === null ? null : flags.output, data: flags.data, plot: plotFile };
          if (result.chosenBytes !== null) await writeFileAtomic(flags.output, result.chosenBytes);
          const doc = reportDocument(header, result);
          if (flags.report !== undefined) await writeFileAtomic(flags.report, Buffer.from(`${JSON.stringify(doc, null, 2)}\n`));
          if (plotFile !== null) await writeFileAtomic(plotFile, Buffer.from(paretoSvg(result, `${parse(input).base}: accuracy vs p95 latency vs size`)));
          if (flags.json) printJson(doc);
          else process.stdout.write(renderReport(header, result));
          if (result.failure !== null) {
            // The report is out (stdout and --report); the exit status and the one-line reason say it failed.
            const error = new EdgevolveError('E_PLAN_NO_FEASIBLE', result.failure.summary, { context: { closest: result.failure.closest } });
            if (!flags.json) console.error(`edgevolve: ${error.code}: ${error.message}`);
            process.exitCode = 1;
          }
        } finally {
          await dataset.close();
        }
      });
    });
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/**
 * The profile's int8/fp32 measurements from the state database's cache, measured
 * (about 5 s) when this hardware has none yet; null when the state directory is unusable.
 */
async function cachedMeasurements(stateDir: string, progress: (line: string) => void): Promise<MicroBenchmarks | null> {
  let db;
  try {
    mkdirSync(stateDir, { recursive: true });
    db = openStateDatabase(join(stateDir, 'state.db'));
  } catch (err) {
    progress(`no device profile (state directory ${stateDir}: ${(err as Error).message}); predictions assume int8 = fp32 speed`);
    return null;
  }
  try {
    const host = { ...systemHost(), ...nodeFiles(), ...systemCommands, ...systemInfo };
    const facts = await collectHardware(host, { stateDir, arch: process.arch });
    const fingerprint = hardwareFingerprint({ cpu: facts.cpu, memoryTotalBytes: facts.memory.totalBytes, board: facts.board, ortVersion: onnxruntimeVersion() });
    const cache = new MicroBenchCache(db);
    const cached = cache.get(fingerprint);
    if (cached !== null && cached !== undefined) return cached;
    progress('measuring int8/fp32 throughput for the device profile (cached afterwards)');
    const m = await runMicroBenchmarks({}, host);
    cache.put(fingerprint, m, host.now());
    return m;
  } finally {
    db.close();
  }
}

function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}
