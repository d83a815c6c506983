import { InvalidArgumentError, type Command } from 'commander';
import { openDataset } from '../../data/index.ts';
import { evaluateModel, type EvaluationReport } from '../../planner/index.ts';
import { printJson, runAction } from '../output.ts';

interface EvalOptions {
  data: string;
  reference?: string;
  batch?: number;
  threads?: number;
  limit?: number;
  output?: string;
  json?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('Run a model over a data set: top-1/top-5 accuracy against labels.npy, fidelity against a reference model (or the expected outputs of the ONNX test layout).')
    .argument('<model>', 'path to an .onnx file')
    .requiredOption('--data <dir>', 'data set: one <input>.npy per model input (+ labels.npy), or test_data_set_N/ directories')
    .option('--reference <model>', 'reference .onnx (e.g. the uncompressed model) for fidelity')
    .option('--batch <n>', 'samples per run when the model\'s batch axis is free (default 32)', positiveInt)
    .option('--threads <n>', 'onnxruntime intra-op threads', positiveInt)
    .option('--limit <n>', 'evaluate only the first N samples', positiveInt)
    .option('--output <name>', 'the output scored against labels (default: the first)')
    .option('--json', 'print one JSON document')
    .action(async (model: string, opts: EvalOptions) => {
      await runAction(Boolean(opts.json), async () => {
        const dataset = await openDataset(opts.data);
        try {
          const report = await evaluateModel(model, dataset, {
            ...(opts.reference === undefined ? {} : { reference: opts.reference }),
            ...(opts.batch === undefined ? {} : { batchSize: opts.batch }),
            ...(opts.threads === undefined ? {} : { threads: opts.threads }),
            ...(opts.limit === undefined ? {} : { limit: opts.limit }),
            ...(opts.output === undefined ? {} : { labelsOutput: opts.output }),
          });
          const header = { model, data: opts.data, reference: opts.reference ?? null };
          if (opts.json) printJson({ ok: true, ...header, ...report });
          else process.stdout.write(renderEval(header, report));
        } finally {
          await dataset.close();
        }
      });
    });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** The human form: aligned key/value lines, then a fidelity table per output. */
export function renderEval(header: { model: string; data: string; reference: string | null }, r: EvaluationReport): string {
  const lines: [string, string][] = [
    ['model', header.model],
    ['data', `${header.data} (${r.layout === 'npy' ? '.npy files' : 'ONNX test layout'}, ${r.samples} samples)`],
    ['feeding', r.mode === 'whole' ? 'each test data set as it is' : `${r.mode === 'single' ? 'one sample' : `${r.batchSize} samples`} per run`],
  ];
  if (r.accuracy === null) lines.push(['accuracy', 'no labels.npy in the data set']);
  else {
    const a = r.accuracy;
    lines.push(['accuracy', `top-1 ${percent(a.top1)}${a.top5 === null ? '' : `   top-5 ${percent(a.top5)}`}   (output '${a.output}', ${a.classes} classes)`]);
  }
  if (r.fidelity !== null) {
    lines.push(['fidelity', r.fidelity.against === 'reference-model' ? `against ${header.reference ?? 'the reference'}` : 'against the expected outputs of the data set']);
  }
  const perSecond = r.timing.samplesPerSecond.toFixed(r.timing.samplesPerSecond >= 100 ? 0 : 1);
  lines.push(['time', `${r.timing.runMs.toFixed(1)} ms in the model (${perSecond} samples/s)` + (r.timing.referenceRunMs === null ? '' : `, ${r.timing.referenceRunMs.toFixed(1)} ms in the reference`)]);
  const width = Math.max(...lines.map(([k]) => k.length)) + 2;
  let out = lines.map(([k, v]) => k.padEnd(width) + v).join('\n') + '\n';
  if (r.fidelity !== null && r.fidelity.outputs.length > 0) {
    const rows = [
      ['output', 'top-1 agree', 'mean cosine', 'rel L2', 'max abs err'],
      ...r.fidelity.outputs.map((o) => [o.output, o.top1Agreement === null ? '-' : percent(o.top1Agreement), o.meanCosine.toFixed(6), number(o.relativeL2), number(o.maxAbsError)]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    out += '\n' + rows.map((row) => '  ' + row.map((cell, c) => cell.padEnd(widths[c]! + 3)).join('').trimEnd()).join('\n') + '\n';
  }
  return out;
}

function percent(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

function number(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toPrecision(4) : x.toExponential(3);
}
