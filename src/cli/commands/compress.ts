import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { EdgevolveError } from '../../errors/index.ts';
import { calibrationFeeds, compressModel, getMethod, methodNames, type CompressReport, type MethodContext } from '../../compress/index.ts';
import { checkAgainstModel, openDataset, type Dataset } from '../../data/index.ts';
import { readCpuIsa } from '../../hardware/index.ts';
import { nodeFiles } from '../../host/files.ts';
import { readModelFile, valueType, writeFileAtomic, type ModelProto } from '../../onnx/index.ts';
import { createSession } from '../../runtime/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface CompressFlags {
  output: string;
  method: string;
  json?: boolean;
  report?: string;
  data?: string;
  calibration?: string;
  percentile?: number;
  bins?: number;
  activationType?: string;
  perChannel?: boolean;
  reduceRange?: boolean | 'auto';
  opTypes?: string[];
  exclude?: string[];
  keepIoTypes?: boolean;
  opBlockList?: string[];
  nodeBlockList?: string[];
  plan?: string;
  fold?: boolean;
  batchSize?: number;
  calibrationSamples?: number;
  set?: Record<string, unknown>;
  sparsity?: number;
  scope?: string;
  ratio?: number;
  criterion?: string;
  maxRatio?: number;
  neverPrune?: string[];
}

/** Flags that map one-to-one onto method options (camelCase keys of the method's schema). */
const OPTION_FLAGS = [
  'calibration', 'percentile', 'bins', 'activationType', 'perChannel', 'reduceRange', 'opTypes', 'exclude', 'keepIoTypes',
  'opBlockList', 'nodeBlockList', 'fold', 'batchSize', 'calibrationSamples', 'sparsity', 'scope', 'ratio', 'criterion', 'maxRatio',
  'neverPrune',
] as const;

export function registerCompress(program: Command): void {
  program
    .command('compress')
    .description(`Compress a model on this device: ${methodNames().join(', ')}. Writes the output atomically and prints what changed per node.`)
    .argument('<model>', 'input .onnx file')
    .requiredOption('-o, --output <file>', 'output .onnx file')
    .requiredOption('--method <m>', `one of ${methodNames().join(', ')}`)
    .option('--data <dir>', 'calibration data: one <input>.npy per model input (first axis = samples)')
    .option('--calibration <m>', 'int8-static: minmax | percentile | entropy (default minmax)')
    .option('--percentile <p>', 'percentile calibration: share of |x| kept, in percent (default 99.999)', number)
    .option('--bins <n>', 'histogram bins (default 2048 for percentile, 128 for entropy, as onnxruntime)', number)
    .option('--activation-type <t>', 'int8-static: uint8 | int8 activations (default uint8)')
    .option('--per-channel [bool]', 'one weight scale per output channel (int8-static default true, int8-dynamic false)', bool)
    .option('--reduce-range [bool|auto]', '7-bit weights; auto = on for x86 CPUs without VNNI (default auto)', boolOrAuto)
    .option('--op-types <list>', 'comma-separated op types to quantize', list)
    .option('--exclude <list>', 'comma-separated node names to leave in float', list)
    .option('--keep-io-types [bool]', 'fp16/mixed: graph inputs/outputs stay float32 (default true)', bool)
    .option('--op-block-list <list>', 'fp16: op types kept float32 (replaces the default list)', list)
    .option('--node-block-list <list>', 'fp16: node names kept float32', list)
    .option('--plan <file>', 'mixed: precision plan JSON {"nodes": {"<node>": "fp32" | "fp16" | "int8"}}')
    .option('--sparsity <s>', 'prune-unstructured: share of weights set to zero, 0..1 (e.g. 0.5)', number)
    .option('--scope <s>', 'prune-unstructured: per-layer | global threshold (default per-layer)')
    .option('--ratio <r>', 'prune-channels: share of output channels removed per group, 0..1 (e.g. 0.3)', number)
    .option('--criterion <c>', 'prune-channels: l1 | l2 channel importance (default l1)')
    .option('--max-ratio <r>', 'prune-channels: cap on any one group\'s pruned share (default 0.9)', number)
    .option('--never-prune <list>', 'prune-channels: comma-separated node names whose channels are kept', list)
    .option('--no-fold', 'skip the pre-passes (BatchNormalization/constant folding); Constants are still hoisted')
    .option('--batch-size <n>', 'calibration batch size when the model\'s batch axis is free (default 16)', number)
    .option('--calibration-samples <n>', 'use only the first N calibration samples', number)
    .option('--set <key=value>', 'any other option of the method (repeatable), e.g. --set minChannels=4', keyValue, {})
    .option('--report <file>', 'also write the JSON report to this file')
    .option('--json', 'print one JSON document')
    .action(async (input: string, flags: CompressFlags, command: Command) => {
      await runAction(Boolean(flags.json), async () => {
        const method = getMethod(flags.method);
        const raw: Record<string, unknown> = { ...(flags.set ?? {}) };
        for (const key of OPTION_FLAGS) {
          // commander sets `fold` to true by default (--no-fold); pass it only when the user said --no-fold.
          if (key === 'fold' && command.getOptionValueSource('fold') === 'default') continue;
          if (flags[key] !== undefined) raw[key] = flags[key];
        }
        if (flags.plan !== undefined) raw.plan = await readJson(flags.plan);
        const loaded = await readModelFile(input);
        const size = loaded.bytes.length;
        let dataset: Dataset | undefined;
        try {
          const ctx: { calibration?: MethodContext['calibration']; cpu: MethodContext['cpu'] } = { cpu: await readCpuIsa(nodeFiles(), os.arch()) };
          if (flags.data !== undefined) {
            if (method.data === 'none') throw usageError(`--data does not apply to ${method.name}`);
            dataset = await openDataset(flags.data);
            const binding = checkAgainstModel(dataset, modelInputs(loaded.model));
            ctx.calibration = {
              feeds: calibrationFeeds(binding, { batchSize: flags.batchSize ?? 16, maxSamples: flags.calibrationSamples }),
              open: async (bytes) => {
                const session = await createSession(bytes, { graphOptimizationLevel: 'disabled' });
                return { run: (feeds, outputs) => session.run(feeds, outputs), release: () => session.release() };
              },
            };
          } else if (method.data === 'required') {
            throw new EdgevolveError('E_COMPRESS_CALIBRATION', `${method.name} needs calibration data: pass --data <dir> (one .npy per model input, first axis = samples)`);
          }
          const result = await compressModel(loaded.model, method.name, raw, ctx, size);
          await writeFileAtomic(flags.output, result.bytes);
          if (flags.report !== undefined) await writeFile(flags.report, `${JSON.stringify({ input, output: flags.output, ...result.report }, null, 2)}\n`);
          if (flags.json) printJson({ ok: true, input, output: flags.output, ...result.report });
          else process.stdout.write(renderReport(input, flags.output, result.report));
        } finally {
          await dataset?.close();
        }
      });
    });
}

/** Graph inputs that are not initializers, as the data check wants them. */
function modelInputs(model: ModelProto): { name: string; dataType: number | undefined; shape: (number | string)[] }[] {
  const graph = model.graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? [])
    .filter((v) => !inits.has(v.name))
    .map((v) => {
      const t = valueType(graph, v.name ?? '');
      return { name: v.name ?? '', dataType: t?.elemType, shape: (t?.shape ?? []).map((d, i) => (d === null ? `?${i}` : d)) };
    });
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EdgevolveError('E_IO', `cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err, context: { path: file } });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new EdgevolveError('E_COMPRESS_PLAN_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err, context: { path: file } });
  }
}

export function renderReport(input: string, output: string, r: CompressReport): string {
  const lines: string[] = [];
  lines.push(`${r.method}: ${input} → ${output}`);
  lines.push(`size: ${formatBytes(r.sizeBefore)} → ${formatBytes(r.sizeAfter)} (${r.sizeRatio.toFixed(3)}x)`);
  for (const pass of r.passes) {
    lines.push('');
    const stats = Object.entries(pass.stats).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`);
    lines.push(`[${pass.pass}] ${stats.join(' ')}`);
    // Pre-pass edits (hundreds of hoisted Constants on exported models) are summarized; --json has them all.
    if (pass.pass === 'fold' && pass.changes.length > 0) {
      const byAction = new Map<string, number>();
      for (const c of pass.changes) byAction.set(c.action, (byAction.get(c.action) ?? 0) + 1);
      lines.push([...byAction].map(([a, n]) => `${n} ${a}`).join(', '));
    } else if (pass.changes.length > 0) {
      const rows = pass.changes.map((c) => [c.target, c.action, c.detail ?? '', c.stats ? Object.entries(c.stats).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : String(v)}`).join(' ') : '']);
      lines.push(table(['node', 'action', 'detail', 'numbers'], rows));
    }
    for (const w of pass.warnings) lines.push(`warning: ${w}`);
  }
  return `${lines.join('\n')}\n`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [fmt(header), ...rows.map(fmt)].join('\n');
}

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number');
  return n;
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function bool(value: string | undefined): boolean {
  if (value === undefined || value === 'true' || value === '1' || value === 'yes') return true;
  if (value === 'false' || value === '0' || value === 'no') return false;
  throw new InvalidArgumentError('expected true or false');
}

function boolOrAuto(value: string | undefined): boolean | 'auto' {
  return value === 'auto' ? 'auto' : bool(value);
}

/** `key=value`: value parsed as JSON when it is JSON (numbers, booleans, arrays), else kept as a string. */
function keyValue(value: string, previous: Record<string, unknown>): Record<string, unknown> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('expected key=value');
  const key = value.slice(0, at).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const text = value.slice(at + 1);
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text.includes(',') ? list(text) : text;
  }
  return { ...previous, [key]: parsed };
}
