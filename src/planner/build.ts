/**
 * Carries out a candidate's steps with src/compress: the uniform methods through the
 * method registry (compressModel), mixed plans through the mixed pass with
 * activation ranges calibrated once per calibration method — a sensitivity sweep
 * builds dozens of plans, and calibrating each would cost more than the sweep.
 */
import {
  DEFAULT_STATIC_OP_TYPES,
  VALIDATE,
  calibrate,
  compressModel,
  mixedPass,
  prepareStatic,
  resolveReduceRange,
  runPass,
  type MethodContext,
  type PassReport,
  type TensorRanges,
} from '../compress/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import { encodeModel, type ModelProto } from '../onnx/index.ts';
import type { CalibrationMethod, CandidateSpec, CandidateStep } from './candidates.ts';

export interface BuildContext {
  readonly cpu?: MethodContext['cpu'];
  /** Calibration feeds and session opener; without them static candidates are not built. */
  readonly calibration?: MethodContext['calibration'];
}

export interface BuiltCandidate {
  readonly bytes: Uint8Array;
  /** Nodes (by their fp32 names) that run in int8. */
  readonly int8Nodes: ReadonlySet<string>;
  /** The float model before any precision change: MACs are counted on it (pruning changes them). */
  readonly floatModel: ModelProto;
  readonly warnings: readonly string[];
}

export class CandidateBuilder {
  private readonly staticBases = new Map<CalibrationMethod, Promise<{ model: ModelProto; ranges: TensorRanges }>>();

  constructor(private readonly ctx: BuildContext) {}

  get canCalibrate(): boolean {
    return this.ctx.calibration !== undefined;
  }

  async build(source: ModelProto, spec: CandidateSpec): Promise<BuiltCandidate> {
    let model = source;
    let floatModel = source;
    const int8 = new Set<string>();
    const warnings: string[] = [];
    const take = (passes: readonly PassReport[]): void => {
      for (const p of passes) {
        warnings.push(...p.warnings);
        for (const c of p.changes) if (c.action === 'quantized') int8.add(c.target);
      }
    };
    for (const step of spec.steps) {
      const result = await this.runStep(model, step);
      model = result.model;
      take(result.passes);
      if (step.kind === 'fold' || step.kind === 'prune-channels') floatModel = model;
    }
    return { bytes: encodeModel(model), int8Nodes: int8, floatModel, warnings };
  }

  private async runStep(model: ModelProto, step: CandidateStep): Promise<{ model: ModelProto; passes: readonly PassReport[] }> {
    const ctx: MethodContext = { cpu: this.ctx.cpu, calibration: this.ctx.calibration };
    const viaMethod = async (method: string, options: Record<string, unknown>): Promise<{ model: ModelProto; passes: readonly PassReport[] }> => {
      const r = await compressModel(model, method, options, ctx, 0);
      return { model: r.model, passes: r.report.passes };
    };
    switch (step.kind) {
      case 'fold':
        return viaMethod('fold', {});
      case 'fp16':
        return viaMethod('fp16', { fold: false });
      case 'int8-dynamic':
        // minFanOut 0: every heavy layer is quantized here, as in int8-static; which layers stay fp32 is the
        // mixed-precision search's measured decision, not the one-shot CLI's fan-out rule.
        return viaMethod('int8-dynamic', { fold: false, perChannel: step.perChannel, minFanOut: 0 });
      case 'int8-static':
        return viaMethod('int8-static', { fold: false, perChannel: step.perChannel, calibration: step.calibration });
      case 'prune-channels':
        return viaMethod('prune-channels', { fold: false, ratio: step.ratio });
      case 'mixed': {
        const plan = { nodes: Object.fromEntries(step.int8Nodes.map((n) => [n, 'int8' as const])), default: 'fp32' as const };
        const common = { plan, reduceRange: resolveReduceRange('auto', this.ctx.cpu), activationType: 'uint8' as const, keepIoTypes: true };
        if (step.family.kind === 'dynamic') {
          const r = runPass(mixedPass, model, { ...common, perChannel: step.family.perChannel }, VALIDATE);
          return { model: r.model, passes: [r.report] };
        }
        const base = await this.staticBase(model, step.family.calibration);
        const r = runPass(mixedPass, base.model, { ...common, perChannel: true, ranges: base.ranges }, VALIDATE);
        return { model: r.model, passes: [r.report] };
      }
    }
  }

  /**
   * The model prepared for QDQ over every op type (opset raised if needed) and the
   * ranges of every tensor any plan can quantize, calibrated once per method.
   * Keyed by method only: mixed plans are always built on the folded fp32 model.
   */
  private staticBase(model: ModelProto, method: CalibrationMethod): Promise<{ model: ModelProto; ranges: TensorRanges }> {
    let base = this.staticBases.get(method);
    if (base === undefined) {
      const cal = this.ctx.calibration;
      if (cal === undefined) throw new EdgevolveError('E_COMPRESS_CALIBRATION', 'a static mixed plan needs calibration data');
      const prepared = prepareStatic(model, { opTypes: DEFAULT_STATIC_OP_TYPES, exclude: [], perChannel: true });
      base = calibrate(prepared.model, prepared.plan.tensorsToCalibrate, cal.feeds, cal.open, { method, percentile: 99.999 }).then((r) => ({ model: prepared.model, ranges: r.ranges }));
      this.staticBases.set(method, base);
    }
    return base;
  }
}
