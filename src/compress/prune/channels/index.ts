/**
 * prune-channels: structured pruning that removes whole output channels of Conv,
 * ConvTranspose, Gemm and MatMul and the matching input channels of every consumer,
 * group by group, so the pruned model is smaller and faster, not just sparser.
 * Groups that cannot be pruned safely are left alone and the report says why.
 */
import { z } from 'zod';
import { parsePassOptions } from '../options.ts';
import { DataType, tensorDims } from '../../../onnx/index.ts';
import type { GraphProto, ModelProto } from '../../../onnx/index.ts';
import { cloneModel } from '../../clone.ts';
import { hoistConstants } from '../../fold/index.ts';
import type { Change, Pass, PassResult } from '../../pass.ts';
import { analyzeChannels } from './analysis.ts';
import { applyPlan } from './apply.ts';
import { planGroups } from './plan.ts';

export const pruneChannelsOptionsSchema = z
  .object({
    /** Fraction of each group's channels to remove. */
    ratio: z.number().min(0).lt(1),
    criterion: z.enum(['l1', 'l2']).default('l1'),
    /**
     * 'producers' ranks channels by the producers' output weights; 'group' adds the consumers'
     * input weights (DepGraph). On the MNIST fixtures at ratio 0.3, producers/L1 kept the most
     * accuracy (cnn 91.3 % vs 80.3 % with group; teacher 96.0 % vs 94.4 %), hence the default.
     */
    importance: z.enum(['producers', 'group']).default('producers'),
    /** Cap on any group's ratio, overrides included. */
    maxRatio: z.number().min(0).lt(1).default(0.9),
    /** Node name → ratio for the group whose channels that node produces. */
    layers: z.record(z.string(), z.number().min(0).lt(1)).default({}),
    /** Node names whose groups are never pruned. */
    neverPrune: z.array(z.string()).default([]),
    minChannels: z.number().int().positive().default(1),
    channelMultiple: z.number().int().positive().default(1),
  })
  .strict();
export type PruneChannelsOptions = z.input<typeof pruneChannelsOptionsSchema>;

/** Elements of float initializers: the parameter count. */
export function floatParameters(graph: GraphProto): number {
  let n = 0;
  for (const t of graph.initializer ?? []) if (t.dataType === DataType.FLOAT) n += tensorDims(t).reduce((a, b) => a * b, 1);
  return n;
}

export function pruneChannels(model: ModelProto, rawOptions: PruneChannelsOptions): PassResult {
  const options = parsePassOptions('prune-channels', pruneChannelsOptionsSchema, rawOptions);
  const copy = cloneModel(model);
  const graph = copy.graph;
  if (!graph) return { model, modified: false, report: { pass: 'prune-channels', changes: [], warnings: ['model has no graph'], stats: {} } };
  const changes: Change[] = hoistConstants(copy);
  const paramsBefore = floatParameters(graph);
  const analysis = analyzeChannels(copy);
  const plans = planGroups(graph, analysis, options);
  const pruned = plans.filter((p) => p.reasons.length === 0);
  const { slicedTensors } = applyPlan(graph, analysis, plans);
  // The original initializers that every reader now replaced with a slice.
  const used = new Set((graph.node ?? []).flatMap((n) => n.input ?? []));
  const inputs = new Set((graph.input ?? []).map((v) => v.name));
  graph.initializer = (graph.initializer ?? []).filter((t) => used.has(t.name ?? '') || inputs.has(t.name));
  const warnings: string[] = [];
  const reasonCounts = new Map<string, number>();
  for (const p of plans) {
    const target = p.sources.map((s) => s.name || s.output?.[0] || '').join(', ') || `atom ${p.root}`;
    if (p.reasons.length === 0) {
      changes.push({ target, action: 'pruned', detail: `${p.channels} → ${p.kept.length} channels`, stats: { channelsBefore: p.channels, channelsAfter: p.kept.length, producers: p.sources.length } });
      continue;
    }
    if (p.sources.length === 0) continue; // channels of graph inputs or opaque producers: nothing we could prune
    changes.push({ target, action: 'kept', detail: p.reasons.join('; '), stats: { channels: p.channels, producers: p.sources.length } });
    const kind = p.reasons[0]!.replace(/'[^']*'/g, "'…'").replace(/\[[^\]]*\]/g, '[…]');
    reasonCounts.set(kind, (reasonCounts.get(kind) ?? 0) + 1);
  }
  for (const [kind, count] of reasonCounts) warnings.push(`${count} group(s) not pruned: ${kind}`);
  const withProducers = plans.filter((p) => p.sources.length > 0);
  const paramsAfter = floatParameters(graph);
  const stats = {
    groups: withProducers.length,
    groupsPruned: pruned.length,
    groupsSkipped: withProducers.length - pruned.length,
    channelsBefore: pruned.reduce((a, p) => a + p.channels, 0),
    channelsAfter: pruned.reduce((a, p) => a + p.kept.length, 0),
    paramsBefore,
    paramsAfter,
    slicedTensors,
  };
  return { model: copy, modified: pruned.length > 0, report: { pass: 'prune-channels', changes, warnings, stats } };
}

export const pruneChannelsPass: Pass<PruneChannelsOptions> = {
  name: 'prune-channels',
  run: pruneChannels,
};
