/**
 * Choosing what to prune: every group of coupled atoms gets a verdict (prunable or
 * why not) and, when prunable, the channel indices to keep, ranked by group
 * importance — the L1 or L2 norm of each producer's output-channel weights,
 * normalized per producer by its mean and summed over the group's producers.
 */
import { tensorDims, tensorToFloat32 } from '../../../onnx/index.ts';
import type { GraphProto, NodeProto } from '../../../onnx/index.ts';
import { initializerMap } from '../../fold/graph-util.ts';
import type { Analysis } from './analysis.ts';
import type { SourceEdit } from './layout.ts';

export interface PlanOptions {
  readonly ratio: number;
  readonly criterion: 'l1' | 'l2';
  /** Upper bound on any group's ratio (after per-layer overrides). */
  readonly maxRatio: number;
  /** Node name → ratio for the groups that node produces channels for. */
  readonly layers: Readonly<Record<string, number>>;
  /** Node names whose groups are never pruned. */
  readonly neverPrune: readonly string[];
  /** Channels every group keeps at least. */
  readonly minChannels: number;
  /** Round kept channel counts up to a multiple of this (SIMD-friendly widths). */
  readonly channelMultiple: number;
}

export interface GroupPlan {
  readonly root: number;
  readonly atoms: readonly number[];
  readonly channels: number;
  readonly sources: readonly NodeProto[];
  /** Empty when the group is pruned. */
  readonly reasons: readonly string[];
  /** Kept channel indices (ascending); all channels when not pruned. */
  readonly kept: Int32Array;
}

function allChannels(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/** Per-channel norm of a weight along `axis`. */
function channelNorms(data: Float32Array, dims: readonly number[], axis: number, criterion: 'l1' | 'l2'): Float64Array {
  const size = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const norms = new Float64Array(size);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % size;
    const v = data[i]!;
    norms[c]! += criterion === 'l1' ? Math.abs(v) : v * v;
  }
  if (criterion === 'l2') for (let c = 0; c < size; c++) norms[c] = Math.sqrt(norms[c]!);
  return norms;
}

function groupImportance(graph: GraphProto, edits: readonly SourceEdit[], channels: number, criterion: 'l1' | 'l2'): Float64Array {
  const inits = initializerMap(graph);
  const score = new Float64Array(channels);
  for (const e of edits) {
    if (e.slot !== 1) continue;
    const t = inits.get(e.node.input?.[1] ?? '');
    if (t === undefined) continue;
    const norms = channelNorms(tensorToFloat32(t), tensorDims(t), e.axis, criterion);
    let mean = 0;
    for (const v of norms) mean += v;
    mean = mean / Math.max(1, norms.length) || 1;
    for (let c = 0; c < channels; c++) score[c]! += norms[c]! / mean;
  }
  return score;
}

export function planGroups(graph: GraphProto, analysis: Analysis, options: PlanOptions): GroupPlan[] {
  const { atoms } = analysis;
  const sourceEdits = new Map<number, SourceEdit[]>();
  for (const e of analysis.edits) {
    if (e.kind !== 'source') continue;
    const root = atoms.find(e.atom);
    let list = sourceEdits.get(root);
    if (list === undefined) sourceEdits.set(root, (list = []));
    list.push(e);
  }
  const never = new Set(options.neverPrune);
  const plans: GroupPlan[] = [];
  for (const [root, members] of atoms.groups()) {
    const channels = atoms.atoms[root]!.length;
    const sources = [...new Set(members.map((m) => atoms.atoms[m]!.source).filter((s): s is NodeProto => s !== undefined))];
    const reasons = [...new Set(members.flatMap((m) => atoms.atoms[m]!.blockers))];
    const names = sources.map((s) => s.name ?? '');
    const listed = names.filter((n) => never.has(n));
    if (listed.length > 0) reasons.push(`listed in neverPrune (${listed.join(', ')})`);
    if (sources.length === 0 && reasons.length === 0) reasons.push('no producer with constant weights');
    const overrides = names.map((n) => options.layers[n]).filter((r): r is number => r !== undefined);
    const ratio = Math.min(overrides.length > 0 ? Math.min(...overrides) : options.ratio, options.maxRatio);
    let keep = Math.max(options.minChannels, channels - Math.floor(ratio * channels));
    if (options.channelMultiple > 1) keep = Math.ceil(keep / options.channelMultiple) * options.channelMultiple;
    keep = Math.min(keep, channels);
    if (reasons.length === 0 && keep >= channels) reasons.push(`ratio ${ratio} removes no channel of ${channels}`);
    if (reasons.length > 0) {
      plans.push({ root, atoms: members, channels, sources, reasons, kept: allChannels(channels) });
      continue;
    }
    const score = groupImportance(graph, sourceEdits.get(root) ?? [], channels, options.criterion);
    const order = allChannels(channels).sort((a, b) => score[b]! - score[a]! || a - b);
    const kept = order.slice(0, keep).sort();
    plans.push({ root, atoms: members, channels, sources, reasons: [], kept });
  }
  return plans;
}
