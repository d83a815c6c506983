/**
 * The compression methods `edgevolve compress --method <m>` and the planner can run:
 * each is a name, a zod schema of its options (validated once, strict: an option of
 * another method is an error), whether it needs calibration data, and how it runs
 * (pre-passes, then its pass). Add a method by adding an entry here.
 */
import { z } from 'zod';
import { EdgevolveError } from '../errors/index.ts';
import { validateModel, type ModelProto } from '../onnx/index.ts';
import { runPass, type ConditionFailure, type Pass, type PassResult, type RunPassOptions } from './pass.ts';
import { foldOptionsSchema, foldPass, type FoldOptions } from './fold/index.ts';
import { pruneChannelsOptionsSchema, pruneChannelsPass, pruneUnstructuredOptionsSchema, pruneUnstructuredPass } from './prune/index.ts';
import { calibrate, type CalibrationFeeds, type OpenCalibrationSession } from './quantize/calibrate.ts';
import { DEFAULT_MIN_FAN_OUT, int8DynamicPass } from './quantize/dynamic.ts';
import { fp16Pass } from './quantize/fp16.ts';
import { fuseHardSwishPass } from './quantize/hardswish.ts';
import { mixedPass, parsePrecisionPlan, resolvePlan } from './quantize/mixed.ts';
import { DEFAULT_STATIC_OP_TYPES, int8StaticPass, prepareStatic, type TensorRanges } from './quantize/static-qdq.ts';
import { nodeKey } from './quantize/common.ts';

/** What a method may need from the outside world, injected by the caller (compress/ touches no files). */
export interface MethodContext {
  /** Calibration data and a session opener; required by methods with `data: 'required'`. */
  readonly calibration?: { readonly feeds: CalibrationFeeds; readonly open: OpenCalibrationSession } | undefined;
  /** The CPU this runs on, to resolve `reduceRange: 'auto'`. */
  readonly cpu?: { readonly arch: string; readonly flags: readonly string[] } | undefined;
}

export interface CompressMethod<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly summary: string;
  readonly options: S;
  readonly data: 'required' | 'optional' | 'none';
  run(model: ModelProto, options: z.infer<S>, ctx: MethodContext): Promise<PassResult[]>;
}

/** IR validation as every pass's postcondition (errors only; warnings do not fail a pass). */
export const VALIDATE: RunPassOptions = {
  validate: (model: ModelProto): readonly ConditionFailure[] =>
    validateModel(model)
      .filter((f) => f.severity === 'error')
      .map((f) => ({ message: f.message, ...(f.node !== undefined ? { target: f.node } : f.value !== undefined ? { target: f.value } : {}) })),
};

const nodeList = z.array(z.string().min(1)).default([]);
const reduceRange = z.union([z.boolean(), z.literal('auto')]).default('auto');
const quantType = z.enum(['uint8', 'int8']);

/**
 * 'auto' turns reduce-range on for x86-64 CPUs without VNNI: their u8×s8 kernels
 * (VPMADDUBSW) saturate 16-bit sums, which measured 0.91 cosine instead of 0.9999 on
 * a small conv net here (compression.md §5.2). ARM and VNNI CPUs keep full 8-bit weights.
 */
export function resolveReduceRange(setting: boolean | 'auto', cpu: MethodContext['cpu']): boolean {
  if (setting !== 'auto') return setting;
  if (cpu === undefined) return false;
  const x86 = cpu.arch === 'x64' || cpu.arch === 'ia32';
  if (!x86) return false;
  const vnni = cpu.flags.some((f) => f === 'avx512_vnni' || f === 'avx_vnni' || f === 'amx_int8');
  return !vnni;
}

function run<O>(pass: Pass<O>, model: ModelProto, options: O): PassResult {
  return runPass(pass, model, options, VALIDATE);
}

/** The pre-passes quantization runs first (the colleague's fold passes: hoist Constants, fold BN/constants, drop Identity/dead nodes). */
function prePass(model: ModelProto, fold: boolean, steps?: FoldOptions['steps']): PassResult {
  const options: FoldOptions = fold ? (steps === undefined ? {} : { steps }) : { steps: ['hoist-constants'] };
  return run(foldPass, model, options);
}

const dynamicOptions = z
  .object({
    perChannel: z.boolean().default(false),
    reduceRange,
    opTypes: z.array(z.enum(['MatMul', 'Gemm', 'Conv'])).min(1).default(['MatMul', 'Gemm']),
    exclude: nodeList,
    fold: z.boolean().default(true),
    /** MatMul/Gemm with fewer output columns than this stay float, within 1% of the weights (0: quantize all); see dynamic.ts. */
    minFanOut: z.number().int().min(0).default(DEFAULT_MIN_FAN_OUT),
  })
  .strict();

const staticOptions = z
  .object({
    calibration: z.enum(['minmax', 'percentile', 'entropy']).default('minmax'),
    percentile: z.number().gt(0).max(100).default(99.999),
    bins: z.number().int().min(128).max(1 << 16).optional(),
    activationType: quantType.default('uint8'),
    perChannel: z.boolean().default(true),
    reduceRange,
    opTypes: z.array(z.string().min(1)).min(1).default([...DEFAULT_STATIC_OP_TYPES]),
    exclude: nodeList,
    keepRemovableActivations: z.boolean().default(false),
    fold: z.boolean().default(true),
    /** x·Clip(x+3, 0, 6)/6 and x·HardSigmoid(x) → HardSwish (opset raised to 14 when found): one float op between Q/DQ instead of four. */
    fuseHardswish: z.boolean().default(true),
    /** Weighted nodes with fewer products per output than this stay float (0: quantize all); 128 on the PaddleOCR detector. */
    minFanIn: z.number().int().min(0).default(0),
    /** Nodes below minFanIn: 'float', or 'weight-only' (int8 weights dequantized to float compute: the file shrinks, the speed stays near float). */
    lowFanIn: z.enum(['float', 'weight-only']).default('float'),
    batchSize: z.number().int().positive().default(16),
    calibrationSamples: z.number().int().positive().optional(),
  })
  .strict();

const fp16Options = z
  .object({
    keepIoTypes: z.boolean().default(true),
    opBlockList: z.array(z.string().min(1)).optional(),
    nodeBlockList: nodeList,
    fold: z.boolean().default(true),
  })
  .strict();

const mixedOptions = z
  .object({
    /** The plan document (the CLI reads --plan <file> and passes its JSON). */
    plan: z.unknown(),
    keepIoTypes: z.boolean().default(true),
    perChannel: z.boolean().default(true),
    reduceRange,
    activationType: quantType.default('uint8'),
    calibration: z.enum(['minmax', 'percentile', 'entropy']).default('minmax'),
    percentile: z.number().gt(0).max(100).default(99.999),
    bins: z.number().int().min(128).max(1 << 16).optional(),
    batchSize: z.number().int().positive().default(16),
    calibrationSamples: z.number().int().positive().optional(),
  })
  .strict();

function requireCalibration(ctx: MethodContext, method: string): NonNullable<MethodContext['calibration']> {
  if (ctx.calibration === undefined) {
    throw new EdgevolveError('E_COMPRESS_CALIBRATION', `${method} needs calibration data: pass --data <dir> (one .npy per model input, first axis = samples)`);
  }
  return ctx.calibration;
}

async function calibrateFor(
  model: ModelProto,
  selection: Parameters<typeof prepareStatic>[1],
  ctx: MethodContext,
  method: string,
  o: { calibration: 'minmax' | 'percentile' | 'entropy'; percentile: number; bins?: number | undefined },
): Promise<{ model: ModelProto; ranges: TensorRanges }> {
  const cal = requireCalibration(ctx, method);
  const prepared = prepareStatic(model, selection);
  const result = await calibrate(prepared.model, prepared.plan.tensorsToCalibrate, cal.feeds, cal.open, {
    method: o.calibration,
    percentile: o.percentile,
    ...(o.bins !== undefined ? { bins: o.bins } : {}),
  });
  return { model: prepared.model, ranges: result.ranges };
}

function method<S extends z.ZodType>(m: CompressMethod<S>): CompressMethod<S> {
  return m;
}

export const METHODS = {
  'int8-dynamic': method({
    name: 'int8-dynamic',
    summary: 'int8 weights for MatMul/Gemm (and Conv on request), activations quantized at run time (DynamicQuantizeLinear + MatMulInteger)',
    options: dynamicOptions,
    data: 'none',
    run(model, o, ctx) {
      const pre = prePass(model, o.fold);
      const q = run(int8DynamicPass, pre.model, { perChannel: o.perChannel, reduceRange: resolveReduceRange(o.reduceRange, ctx.cpu), opTypes: o.opTypes, exclude: o.exclude, minFanOut: o.minFanOut });
      return Promise.resolve([pre, q]);
    },
  }),
  'int8-static': method({
    name: 'int8-static',
    summary: 'int8 QDQ with calibrated activation ranges (minmax, percentile, entropy), per-channel int8 weights, int32 biases',
    options: staticOptions,
    data: 'required',
    async run(model, o, ctx) {
      const pre = prePass(model, o.fold);
      // Reported only when it found something, so models without hard-swish keep their [fold, int8-static] report.
      const fused = o.fuseHardswish ? [run(fuseHardSwishPass, pre.model, undefined)].filter((r) => r.modified) : [];
      const base = fused[0]?.model ?? pre.model;
      const selection = { opTypes: o.opTypes, exclude: o.exclude, perChannel: o.perChannel, keepRemovableActivations: o.keepRemovableActivations, minFanIn: o.minFanIn, lowFanIn: o.lowFanIn };
      const { model: prepared, ranges } = await calibrateFor(base, selection, ctx, 'int8-static', o);
      const q = run(int8StaticPass, prepared, { ...selection, activationType: o.activationType, reduceRange: resolveReduceRange(o.reduceRange, ctx.cpu), ranges });
      return [pre, ...fused, q];
    },
  }),
  fp16: method({
    name: 'fp16',
    summary: 'float16 initializers and compute, Casts at float32 boundaries; halves the size, usually slower on the CPU execution provider',
    options: fp16Options,
    data: 'none',
    run(model, o) {
      const pre = prePass(model, o.fold);
      const f = run(fp16Pass, pre.model, { keepIoTypes: o.keepIoTypes, nodeBlockList: o.nodeBlockList, ...(o.opBlockList !== undefined ? { opBlockList: o.opBlockList } : {}) });
      return Promise.resolve([pre, f]);
    },
  }),
  mixed: method({
    name: 'mixed',
    summary: 'a per-node precision plan (--plan plan.json: node → fp32 | fp16 | int8); int8 by QDQ with --data, else dynamic',
    options: mixedOptions,
    data: 'optional',
    async run(model, o, ctx) {
      const plan = parsePrecisionPlan(o.plan);
      // Names are checked against the model as given: that is what the plan was made for.
      resolvePlan(model, plan);
      const pre = prePass(model, false);
      const kept = new Set((pre.model.graph?.node ?? []).map(nodeKey));
      const live = { ...plan, nodes: Object.fromEntries(Object.entries(plan.nodes).filter(([k]) => kept.has(k))) };
      const groups = resolvePlan(pre.model, live);
      let ranges: TensorRanges | undefined;
      let base = pre.model;
      if (groups.int8.length > 0 && ctx.calibration !== undefined) {
        const int8 = new Set(groups.int8);
        const exclude = (pre.model.graph?.node ?? []).map(nodeKey).filter((k) => !int8.has(k));
        const calibrated = await calibrateFor(pre.model, { opTypes: DEFAULT_STATIC_OP_TYPES, exclude, perChannel: o.perChannel }, ctx, 'mixed', o);
        ranges = calibrated.ranges;
        base = calibrated.model;
      }
      const m = run(mixedPass, base, {
        plan: live,
        ...(ranges !== undefined ? { ranges } : {}),
        perChannel: o.perChannel,
        reduceRange: resolveReduceRange(o.reduceRange, ctx.cpu),
        activationType: o.activationType,
        keepIoTypes: o.keepIoTypes,
      });
      return [pre, m];
    },
  }),
  // Pre-passes and pruning (src/compress/fold, src/compress/prune).
  fold: method({
    name: 'fold',
    summary: 'the pre-passes alone: Constant nodes → initializers, BatchNormalization and bias Add folded into Conv/ConvTranspose/Gemm, constants folded, Identity/Dropout and dead nodes removed',
    options: foldOptionsSchema,
    data: 'none',
    run(model, o) {
      return Promise.resolve([run(foldPass, model, o)]);
    },
  }),
  'prune-unstructured': method({
    name: 'prune-unstructured',
    summary: 'magnitude pruning to a target sparsity (--sparsity 0.5, --scope per-layer|global); zeros stay dense, so it shrinks the compressed file, not the latency',
    options: pruneUnstructuredOptionsSchema.extend({ fold: z.boolean().default(true) }),
    data: 'none',
    run(model, { fold, ...o }) {
      const pre = prePass(model, fold);
      return Promise.resolve([pre, run(pruneUnstructuredPass, pre.model, o)]);
    },
  }),
  'prune-channels': method({
    name: 'prune-channels',
    summary: 'structured pruning (--ratio 0.3): removes whole output channels of Conv/Gemm/MatMul and the matching inputs of every consumer, group by group; unsafe groups are left alone with the reason',
    options: pruneChannelsOptionsSchema.extend({ fold: z.boolean().default(true) }),
    data: 'none',
    run(model, { fold, ...o }) {
      const pre = prePass(model, fold);
      return Promise.resolve([pre, run(pruneChannelsPass, pre.model, o)]);
    },
  }),
} satisfies Record<string, CompressMethod>;

export type MethodName = keyof typeof METHODS;

export function methodNames(): string[] {
  return Object.keys(METHODS);
}

export function getMethod(name: string): CompressMethod {
  const m = (METHODS as Record<string, CompressMethod>)[name];
  if (m === undefined) throw new EdgevolveError('E_COMPRESS_METHOD', `unknown compression method '${name}' (known: ${methodNames().join(', ')})`, { context: { method: name } });
  return m;
}

/** Validates raw options for a method; unknown or ill-typed options are E_COMPRESS_METHOD naming them. */
export function parseMethodOptions(m: CompressMethod, raw: Record<string, unknown>): unknown {
  const parsed = m.options.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => {
      const where = i.path.join('.');
      if (i.code === 'unrecognized_keys') return `option(s) ${i.keys.map((k) => `--${kebab(k)}`).join(', ')} do not apply to ${m.name}`;
      return `${where ? `--${kebab(where.split('.')[0]!)}` : 'options'}: ${i.message}`;
    });
    throw new EdgevolveError('E_COMPRESS_METHOD', `${m.name}: ${problems.join('; ')}`, { context: { method: m.name } });
  }
  return parsed.data;
}

export function kebab(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

