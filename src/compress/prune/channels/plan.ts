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

export interface PlanOptions {
  readonly ratio: number;
  readonly criterion: 'l1' | 'l2';
  /** 'group': producers' output weights and consumers' input weights; 'producers': output weights only. */
  readonly importance: 'group' | 'producers';
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

/** Per-index sums of |w| (l1) or w² (l2) along `axis`. */
function axisSums(data: Float32Array, dims: readonly number[], axis: number, criterion: 'l1' | 'l2'): Float64Array {
  const size = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const sums = new Float64Array(size);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % size;
    const v = data[i]!;
    sums[c]! += criterion === 'l1' ? Math.abs(v) : v * v;
  }
  return sums;
}

/** Adds `norms` to `score`, normalized by their mean so that no layer dominates by scale alone. */
function addNormalized(score: Float64Array, norms: Float64Array): void {
  let mean = 0;
  for (const v of norms) mean += v;
  mean = mean / Math.max(1, norms.length) || 1;
  for (let c = 0; c < norms.length; c++) score[c]! += norms[c]! / mean;
}

const CONSUMERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * Importance of every group's channels: the norms of each producer's output-channel
 * weights and (`group` importance, as DepGraph aggregates) of each consumer's
 * input-channel weights, each normalized by its mean, summed over the group.
 */
function importance(graph: GraphProto, analysis: Analysis, options: PlanOptions): Map<number, Float64Array> {
  const { atoms } = analysis;
  const inits = initializerMap(graph);
  const scores = new Map<number, Float64Array>();
  const scoreOf = (atom: number): Float64Array => {
    const root = atoms.find(atom);
    let score = scores.get(root);
    if (score === undefined) scores.set(root, (score = new Float64Array(atoms.atoms[root]!.length)));
    return score;
  };
  const finish = (sums: Float64Array): Float64Array => (options.criterion === 'l2' ? sums.map(Math.sqrt) : sums);
  for (const e of analysis.edits) {
    if (e.kind === 'source' && e.slot === 1) {
      const t = inits.get(e.node.input?.[1] ?? '');
      if (t !== undefined) addNormalized(scoreOf(e.atom), finish(axisSums(tensorToFloat32(t), tensorDims(t), e.axis, options.criterion)));
    } else if (options.importance === 'group' && e.kind === 'layout' && e.slot === 1 && CONSUMERS.has(e.node.opType ?? '')) {
      const t = inits.get(e.node.input?.[1] ?? '');
      if (t === undefined) continue;
      const features = axisSums(tensorToFloat32(t), tensorDims(t), e.axis, options.criterion);
      const spread = Math.max(1, e.layout.spread);
      let offset = 0;
      for (const seg of e.layout.segments) {
        const sums = new Float64Array(seg.length);
        for (let k = 0; k < seg.length; k++) for (let j = 0; j < spread; j++) sums[k]! += features[offset + k * spread + j]!;
        addNormalized(scoreOf(seg.atom), finish(sums));
        offset += seg.length * spread;
      }
    }
  }
  return scores;
}

export function planGroups(graph: GraphProto, analysis: Analysis, options: PlanOptions): GroupPlan[] {
  const { atoms } = analysis;
  const scores = importance(graph, analysis, options);
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
    if (reasons.length === 0 && keep >= channels) {
      const rounding = options.channelMultiple > 1 ? ` once kept channels are rounded up to a multiple of ${options.channelMultiple}` : '';
      reasons.push(`ratio ${ratio} removes no channel of ${channels}${rounding}`);
    }
    if (reasons.length > 0) {
      plans.push({ root, atoms: members, channels, sources, reasons, kept: allChannels(channels) });
      continue;
    }
    const score = scores.get(root) ?? new Float64Array(channels);
    const order = allChannels(channels).sort((a, b) => score[b]! - score[a]! || a - b);
    const kept = order.slice(0, keep).sort();
    plans.push({ root, atoms: members, channels, sources, reasons: [], kept });
  }
  return plans;
}
