/**
 * The plan report: one JSON document (what --report writes and --json prints) and a
 * human table with every candidate, the Pareto front, and the choice with its reason.
 */
import { MIB, describeMiss } from './budgets.ts';
import type { CandidateRecord, OptimizeResult } from './search.ts';

export interface ReportHeader {
  readonly input: string;
  readonly output: string | null;
  readonly data: string;
  readonly plot: string | null;
}

/** The JSON report: the result without the model bytes. */
export function reportDocument(header: ReportHeader, result: OptimizeResult): Record<string, unknown> {
  const { chosenBytes: _bytes, ...rest } = result;
  return { ok: result.chosen !== null, ...header, ...rest };
}

export function renderReport(header: ReportHeader, r: OptimizeResult): string {
  const out: string[] = [];
  const budgets = [
    r.budgets.latencyP95Ms === undefined ? null : `p95 <= ${r.budgets.latencyP95Ms} ms`,
    r.budgets.memoryMB === undefined ? null : `memory <= ${r.budgets.memoryMB} MiB`,
    r.budgets.sizeMB === undefined ? null : `size <= ${r.budgets.sizeMB} MiB`,
    r.budgets.maxAccuracyDrop === undefined ? null : `accuracy drop <= ${r.budgets.maxAccuracyDrop} pt`,
  ].filter((b) => b !== null);
  out.push(`model      ${header.input}`);
  out.push(`data       ${header.data}; accuracy = ${r.metric.description}`);
  out.push(`budgets    ${budgets.length === 0 ? '(none)' : budgets.join(', ')}; objective: ${r.objective}; latency at batch ${r.batch}`);
  out.push(
    `fp32       ${r.baseline.score.toFixed(2)} on ${r.baseline.samples} samples, p95 ${r.baseline.p95Ms.toFixed(3)} ms, peak ${(r.baseline.peakBytes / MIB).toFixed(1)} MiB, ${kib(r.baseline.sizeBytes)}`,
  );
  out.push(
    `device     int8 speed-up GEMM ${r.device.gemmInt8Speedup.toFixed(2)}x, Conv ${r.device.convInt8Speedup.toFixed(2)}x${r.device.measured ? ' (measured by profile)' : ' (not measured: predictions assume 1x)'}; MACs ${Object.entries(r.macsByOpType).map(([k, v]) => `${k} ${fmtCount(v)}`).join(', ') || '-'}`,
  );
  out.push('');
  const front = new Set(r.pareto);
  const rows = r.candidates.map((c) => [
    c.id + (front.has(c.id) ? ' *' : ''),
    c.status,
    c.sizeBytes === null ? '-' : kib(c.sizeBytes),
    c.predictedLatencyRatio === null ? '-' : `${c.predictedLatencyRatio.toFixed(2)}x`,
    c.quickLatencyRatio === null ? '-' : `${c.quickLatencyRatio.toFixed(2)}x`,
    c.bench === null ? '-' : c.bench.p95Ms.toFixed(3),
    c.bench === null ? '-' : (c.bench.peakBytes / MIB).toFixed(1),
    accuracyCell(c),
    c.reason,
  ]);
  out.push(table(['candidate (* = Pareto)', 'status', 'size', 'pred', 'quick', 'p95 ms', 'peak MiB', 'accuracy (drop)', 'why'], rows));
  out.push('');
  out.push('pred/quick = predicted (MACs × profile) and in-process measured latency over fp32; p95 and peak from the isolated benchmark.');
  if (r.sensitivity !== null) {
    out.push(
      `sensitivity (${r.sensitivity.family}, ${r.sensitivity.samples} samples, most sensitive first; drop with the layer alone in int8 / drop with only it reverted to fp32 / 1 − cosine alone): ${r.sensitivity.layers
        .slice(0, 8)
        .map((l) => `${l.node} ${l.drop.toFixed(2)} / ${l.revertedDrop.toFixed(2)} pt / ${l.error.toExponential(1)}`)
        .join(', ')}${r.sensitivity.layers.length > 8 ? ', ...' : ''}`,
    );
  }
  out.push(`searched   ${r.counts.candidates} candidates, ${r.counts.full} evaluated in full, ${r.counts.benched} benchmarked, in ${(r.wallMs / 1000).toFixed(1)} s${r.stoppedBy === 'done' ? '' : ` (stopped: ${r.stoppedBy})`}`);
  if (r.chosen !== null) out.push(`chosen     ${r.chosen.id}: ${r.chosen.reason}${header.output === null ? '' : ` → ${header.output}`}`);
  if (r.failure !== null) {
    out.push(`NOTHING MEETS THE BUDGETS: ${r.failure.summary}`);
    for (const c of r.failure.closest) out.push(`  ${c.id}: ${c.misses.map(describeMiss).join('; ')} → relax: ${c.relax.join(' ')}`);
  }
  if (header.plot !== null) out.push(`plot       ${header.plot}`);
  return `${out.join('\n')}\n`;
}

function accuracyCell(c: CandidateRecord): string {
  const a = c.accuracy ?? c.subset;
  if (a === null) return '-';
  return `${a.score.toFixed(2)} (${a.drop >= 0 ? '-' : '+'}${Math.abs(a.drop).toFixed(2)})${c.accuracy === null ? ` subset ${a.samples}` : ''}`;
}

function kib(bytes: number): string {
  return bytes >= MIB ? `${(bytes / MIB).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [fmt(header), ...rows.map(fmt)].join('\n');
}
