import type { Command } from 'commander';
import { inspectFile, type InspectDim, type InspectReport, type InspectValue } from '../../onnx/inspect.ts';
import { EXIT_FAILURE, printJson, runAction, usageError } from '../output.ts';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('Show a model: opsets, inputs/outputs, op histogram, parameters, validation findings. Exit 1 when the file is not a readable model or has validation errors.')
    .argument('<model>', 'path to an .onnx file')
    .option('--json', 'print one JSON document')
    .option('--top <n>', 'how many of the largest parameter tensors to list', '10')
    .action(async (model: string, opts: { json?: boolean; top: string }) => {
      await runAction(Boolean(opts.json), async () => {
        const largest = Number(opts.top);
        if (!Number.isSafeInteger(largest) || largest < 0) throw usageError(`--top must be a non-negative integer, got '${opts.top}'`);
        const report = await inspectFile(model, { largest });
        if (opts.json) printJson(report);
        else process.stdout.write(renderReport(report));
        // The report is printed either way; error findings make the exit code say the model is bad.
        const errors = report.findings.filter((f) => f.severity === 'error');
        if (errors.length > 0) {
          console.error(`edgevolve: E_ONNX_INVALID: ${model}: ${errors.length} validation error(s), first: ${errors[0]!.message}`);
          process.exitCode = EXIT_FAILURE;
        }
      });
    });
}

/** The human form: a header block, then one aligned table per section. */
export function renderReport(r: InspectReport): string {
  const out: string[] = [];
  out.push(
    table([
      ['file', r.file.path],
      ['size', `${formatBytes(r.file.bytes)} (${r.file.bytes} bytes)`],
      ['ir version', String(r.irVersion)],
      ['producer', `${r.producer.name} ${r.producer.version}`.trim() || '-'],
      ['opsets', r.opsetImports.map((o) => `${o.domain} ${o.version}`).join(', ') || '-'],
      ['graph', r.graph.name || '-'],
      ['nodes', `${r.graph.nodes} (${r.graph.nodesIncludingSubgraphs} with ${r.graph.subgraphs} subgraphs)`],
      ['initializers', String(r.graph.initializers)],
      ['parameters', `${r.parameters.elements} in ${r.parameters.tensors} tensors, ${formatBytes(r.parameters.bytes)}` +
        (r.parameters.externalTensors > 0 ? ` (${formatBytes(r.parameters.externalBytes)} external in ${r.parameters.externalTensors})` : '')],
    ]),
  );
  section(out, 'inputs', ['name', 'type', 'shape'], r.inputs.map(valueRow));
  section(out, 'outputs', ['name', 'type', 'shape'], r.outputs.map(valueRow));
  section(out, 'operators', ['op', 'count'], r.ops.map((o) => [o.op, String(o.count)]));
  section(out, 'parameters by element type', ['type', 'tensors', 'elements', 'bytes'],
    r.parameters.byElementType.map((e) => [e.elementType, String(e.tensors), String(e.elements), formatBytes(e.bytes)]));
  section(out, 'largest parameter tensors', ['name', 'source', 'type', 'shape', 'elements', 'bytes'],
    r.largestTensors.map((t) => [t.name, t.source + (t.external ? ' (external)' : ''), t.elementType, `[${t.shape.join(', ')}]`, String(t.elements), formatBytes(t.bytes)]));
  if (r.functions.length > 0) section(out, 'functions', ['domain', 'name', 'nodes'], r.functions.map((f) => [f.domain, f.name, String(f.nodes)]));
  const metadata = Object.entries(r.metadata);
  if (metadata.length > 0) section(out, 'metadata', ['key', 'value'], metadata.map(([k, v]) => [k, oneLine(v)]));
  if (r.findings.length === 0) out.push('validation: no findings');
  else {
    section(out, `validation: ${r.findings.length} finding(s)`, ['severity', 'code', 'where', 'message'],
      r.findings.map((f) => [f.severity, f.code, [f.graph, f.node ?? f.value].filter(Boolean).join(' / ') || '-', oneLine(f.message)]));
  }
  return `${out.join('\n\n')}\n`;
}

function valueRow(v: InspectValue): string[] {
  const type = v.kind === 'tensor' ? (v.elementType ?? '?') : `${v.kind}${v.elementType ? ` of ${v.elementType}` : ''}`;
  return [v.name, type, v.shape === null ? '?' : `[${v.shape.map(formatDim).join(', ')}]`];
}

function formatDim(d: InspectDim): string {
  return d === null ? '?' : String(d);
}

function section(out: string[], title: string, header: string[], rows: string[][]): void {
  out.push(`${title}:\n${rows.length === 0 ? '  (none)' : table([header, ...rows], '  ')}`);
}

/** Left-aligned columns, two spaces apart; numeric-looking columns are not special-cased. */
function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ');
}
