/**
 * The Pareto plot as hand-written SVG: p95 latency across, accuracy up, the file size
 * as the marker's area; the front joined and filled, the choice ringed, the budgets
 * as dashed lines. Every point carries data-* attributes with its numbers, so the
 * plot can be checked (and scraped) as XML.
 */
import type { OptimizeResult } from './search.ts';

const W = 720;
const H = 480;
const M = { left: 70, right: 30, top: 40, bottom: 60 };

interface Point {
  readonly id: string;
  readonly p95: number;
  readonly score: number;
  readonly size: number;
  readonly front: boolean;
  readonly chosen: boolean;
}

export function paretoSvg(r: OptimizeResult, title: string): string {
  const front = new Set(r.pareto);
  const points: Point[] = r.candidates
    .filter((c) => c.bench !== null && c.accuracy !== null)
    .map((c) => ({ id: c.id, p95: c.bench!.p95Ms, score: c.accuracy!.score, size: c.sizeBytes ?? 0, front: front.has(c.id), chosen: r.chosen?.id === c.id }));
  const latencyBudget = r.budgets.latencyP95Ms;
  const scoreFloor = r.budgets.maxAccuracyDrop === undefined ? undefined : r.baseline.score - r.budgets.maxAccuracyDrop;
  const xs = [...points.map((p) => p.p95), ...(latencyBudget === undefined ? [] : [latencyBudget])];
  const ys = [...points.map((p) => p.score), ...(scoreFloor === undefined ? [] : [scoreFloor])];
  const [x0, x1] = padded(Math.min(0, ...xs), Math.max(...xs, 1e-6));
  const [y0, y1] = padded(Math.min(...ys, r.baseline.score), Math.max(...ys, r.baseline.score));
  const px = (x: number): number => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number): number => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const maxSize = Math.max(1, ...points.map((p) => p.size));
  const radius = (size: number): number => 4 + 10 * Math.sqrt(size / maxSize);

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<title>${esc(title)}</title>`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  // Axes with five ticks each.
  parts.push(`<g class="axes" stroke="black">`);
  parts.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}"/>`);
  parts.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}"/>`);
  parts.push(`</g>`);
  for (let i = 0; i <= 5; i++) {
    const x = x0 + ((x1 - x0) * i) / 5;
    const y = y0 + ((y1 - y0) * i) / 5;
    parts.push(`<text x="${f(px(x))}" y="${H - M.bottom + 16}" text-anchor="middle">${tick(x)}</text>`);
    parts.push(`<text x="${M.left - 6}" y="${f(py(y) + 4)}" text-anchor="end">${tick(y)}</text>`);
  }
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 18}" text-anchor="middle">p95 latency (ms, isolated benchmark)</text>`);
  parts.push(`<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(r.metric.kind === 'top1-labels' ? 'top-1 accuracy (%)' : r.metric.kind === 'top1-agreement' ? 'top-1 agreement with fp32 (%)' : 'cosine to fp32 × 100')}</text>`);
  // Budgets.
  if (latencyBudget !== undefined) {
    parts.push(`<line class="budget" data-budget="latency-p95" data-value="${latencyBudget}" x1="${f(px(latencyBudget))}" y1="${M.top}" x2="${f(px(latencyBudget))}" y2="${H - M.bottom}" stroke="#c00" stroke-dasharray="5 4"/>`);
    parts.push(`<text x="${f(px(latencyBudget) + 4)}" y="${M.top + 12}" fill="#c00">p95 budget ${latencyBudget} ms</text>`);
  }
  if (scoreFloor !== undefined) {
    parts.push(`<line class="budget" data-budget="accuracy-drop" data-value="${scoreFloor}" x1="${M.left}" y1="${f(py(scoreFloor))}" x2="${W - M.right}" y2="${f(py(scoreFloor))}" stroke="#c00" stroke-dasharray="5 4"/>`);
    parts.push(`<text x="${W - M.right - 4}" y="${f(py(scoreFloor) - 4)}" text-anchor="end" fill="#c00">accuracy floor ${scoreFloor.toFixed(2)}</text>`);
  }
  // The front, joined in order of latency.
  const frontPoints = points.filter((p) => p.front).sort((a, b) => a.p95 - b.p95);
  if (frontPoints.length > 1) {
    parts.push(`<polyline class="front" fill="none" stroke="#1565c0" stroke-width="1.5" points="${frontPoints.map((p) => `${f(px(p.p95))},${f(py(p.score))}`).join(' ')}"/>`);
  }
  for (const p of points) {
    const cls = p.chosen ? 'point front chosen' : p.front ? 'point front' : 'point';
    const fill = p.front ? '#1565c0' : '#9e9e9e';
    parts.push(
      `<circle class="${cls}" data-id="${esc(p.id)}" data-p95="${p.p95}" data-score="${p.score}" data-size="${p.size}" cx="${f(px(p.p95))}" cy="${f(py(p.score))}" r="${f(radius(p.size))}" fill="${fill}" fill-opacity="0.6" stroke="${p.chosen ? '#e65100' : fill}" stroke-width="${p.chosen ? 3 : 1}"/>`,
    );
    parts.push(`<text class="label" x="${f(px(p.p95) + radius(p.size) + 3)}" y="${f(py(p.score) + 4)}">${esc(p.id)}${p.chosen ? ' (chosen)' : ''}</text>`);
  }
  parts.push(`<text x="${W - M.right}" y="${H - 4}" text-anchor="end" fill="#555">marker area = file size; blue = Pareto front</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function padded(lo: number, hi: number): [number, number] {
  const span = hi - lo || Math.abs(hi) || 1;
  return [lo - span * 0.08, hi + span * 0.08];
}

function f(n: number): string {
  return n.toFixed(1);
}

function tick(n: number): string {
  const a = Math.abs(n);
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toFixed(3);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
