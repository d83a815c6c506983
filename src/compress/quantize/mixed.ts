/**
 * Mixed precision: a per-node plan (node name → fp32 | fp16 | int8), as the planner
 * produces it, made into a valid model. int8 nodes are quantized first (static QDQ
 * when calibrated ranges are given, dynamic MatMul/Gemm/Conv otherwise), then fp16
 * nodes are converted with Casts wherever a value crosses into or out of a
 * half-precision region, so any assignment of precisions to nodes runs.
 */
import { z } from 'zod';
import { EdgevolveError } from '../../errors/index.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import type { ModelProto } from '../../onnx/types.ts';
import { graphOf, nodeKey } from './common.ts';
import { quantizeDynamic } from './dynamic.ts';
import { convertToFp16 } from './fp16.ts';
import { DEFAULT_STATIC_OP_TYPES, quantizeStatic, type TensorRanges } from './static-qdq.ts';
import type { QuantType } from './quant-math.ts';

export const precisionSchema = z.enum(['fp32', 'fp16', 'int8']);
export type Precision = z.infer<typeof precisionSchema>;

const nodesSchema = z.record(z.string(), precisionSchema);
/** The plan file: `{ "nodes": { "<node>": "fp16", ... }, "default": "fp32" }`, or the bare map of nodes. */
const planFileSchema = z.object({ nodes: nodesSchema, default: precisionSchema.optional() }).strict();

export interface PrecisionPlan {
  readonly nodes: Readonly<Record<string, Precision>>;
  /** Precision of nodes the plan does not name (fp32 unless given). */
  readonly default: Precision;
}

/** Parses a plan document (already JSON-decoded); throws E_COMPRESS_PLAN_INVALID with the offending paths. */
export function parsePrecisionPlan(doc: unknown, source = 'plan'): PrecisionPlan {
  const wrapped = typeof doc === 'object' && doc !== null && !Array.isArray(doc) && typeof (doc as Record<string, unknown>).nodes === 'object';
  const parsed = wrapped ? planFileSchema.safeParse(doc) : nodesSchema.safeParse(doc);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new EdgevolveError('E_COMPRESS_PLAN_INVALID', `${source} is not a precision plan ({"nodes": {"<node name>": "fp32" | "fp16" | "int8"}}): ${problems.join('; ')}`, {
      context: { source },
    });
  }
  if (wrapped) {
    const v = parsed.data as z.infer<typeof planFileSchema>;
    return { nodes: v.nodes, default: v.default ?? 'fp32' };
  }
  return { nodes: parsed.data as Record<string, Precision>, default: 'fp32' };
}

export interface MixedOptions {
  readonly plan: PrecisionPlan;
  /** Calibrated ranges for static int8; without them int8 nodes are quantized dynamically. */
  readonly ranges?: TensorRanges;
  readonly perChannel: boolean;
  readonly reduceRange: boolean;
  readonly activationType: QuantType;
  readonly keepIoTypes: boolean;
}

/** Node names of the model per precision, after checking that the plan names only existing nodes. */
export function resolvePlan(model: ModelProto, plan: PrecisionPlan): Record<Precision, string[]> {
  const graph = graphOf(model, 'mixed');
  const keys = (graph.node ?? []).map(nodeKey);
  const known = new Set(keys);
  const unknown = Object.keys(plan.nodes).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new EdgevolveError(
      'E_COMPRESS_PLAN_INVALID',
      `the precision plan names ${unknown.length} node(s) the model does not have: ${unknown.slice(0, 10).map((n) => `'${n}'`).join(', ')}${unknown.length > 10 ? ', ...' : ''}`,
      { context: { unknown: unknown.slice(0, 50) } },
    );
  }
  const out: Record<Precision, string[]> = { fp32: [], fp16: [], int8: [] };
  for (const k of keys) out[plan.nodes[k] ?? plan.default].push(k);
  return out;
}

export const mixedPass: Pass<MixedOptions> = {
  name: 'mixed',
  run: (model, options) => applyMixed(model, options),
};

export function applyMixed(model: ModelProto, options: MixedOptions): PassResult {
  const groups = resolvePlan(model, options.plan);
  const changes: Change[] = [];
  const warnings: string[] = [];
  const stats: Record<string, number> = { fp32Nodes: groups.fp32.length, fp16Nodes: groups.fp16.length, int8Nodes: groups.int8.length };
  let current = model;
  let modified = false;
  if (groups.int8.length > 0) {
    const int8 = new Set(groups.int8);
    const exclude = (graphOf(model, 'mixed').node ?? []).map(nodeKey).filter((k) => !int8.has(k));
    const result =
      options.ranges !== undefined
        ? quantizeStatic(current, { opTypes: DEFAULT_STATIC_OP_TYPES, exclude, perChannel: options.perChannel, activationType: options.activationType, reduceRange: options.reduceRange, ranges: options.ranges })
        : quantizeDynamic(current, { opTypes: ['MatMul', 'Gemm', 'Conv'], exclude, perChannel: options.perChannel, reduceRange: options.reduceRange });
    current = result.model;
    modified ||= result.modified;
    // Only report on what the plan asked for.
    changes.push(...result.report.changes.filter((c) => int8.has(c.target) || c.action !== 'kept-float'));
    const notQuantized = groups.int8.filter((k) => !result.report.changes.some((c) => c.target === k && (c.action === 'quantized' || c.action === 'removed')));
    if (notQuantized.length > 0) {
      warnings.push(`${notQuantized.length} node(s) planned int8 have no int8 form here and stayed float: ${notQuantized.slice(0, 10).join(', ')}${notQuantized.length > 10 ? ', ...' : ''}`);
    }
    for (const [k, v] of Object.entries(result.report.stats)) stats[`int8.${k}`] = v;
  }
  if (groups.fp16.length > 0) {
    const result = convertToFp16(current, { keepIoTypes: options.keepIoTypes, onlyNodes: groups.fp16 });
    current = result.model;
    modified ||= result.modified;
    changes.push(...result.report.changes);
    warnings.push(...result.report.warnings);
    for (const [k, v] of Object.entries(result.report.stats)) stats[`fp16.${k}`] = v;
  }
  return { model: current, modified, report: { pass: 'mixed', changes, warnings, stats } };
}
