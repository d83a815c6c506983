/**
 * compress/: passes that make a model smaller or faster, and the methods that chain
 * them. `compressModel` is the one entry point the CLI and the planner use: it
 * validates the method's options, runs it, and reports per pass plus the encoded
 * sizes before and after. Pure apart from calibration, which runs the model through
 * the session opener the caller injects.
 */
import { encodeModel, type ModelProto } from '../onnx/index.ts';
import type { PassReport } from './pass.ts';
import { getMethod, parseMethodOptions, type MethodContext } from './methods.ts';
import { sizeBreakdown, type SizeBreakdown } from './size-breakdown.ts';

export { METHODS, getMethod, methodNames, parseMethodOptions, resolveReduceRange, kebab, VALIDATE, type CompressMethod, type MethodContext, type MethodName } from './methods.ts';
export { runPass, sequential, fixpoint, unchanged, type Pass, type PassReport, type PassResult, type Change } from './pass.ts';
export { cloneModel } from './clone.ts';
export { calibrate, type CalibrationFeeds, type CalibrationMethod, type OpenCalibrationSession, type CalibrationSession } from './quantize/calibrate.ts';
export { calibrationFeeds } from './quantize/feeds.ts';
export { materializeWeightOnly, type MaterializeResult } from './quantize/materialize.ts';
export { quantizeDynamic, int8DynamicPass, type DynamicQuantOptions } from './quantize/dynamic.ts';
export { quantizeStatic, int8StaticPass, planStatic, prepareStatic, DEFAULT_STATIC_OP_TYPES, type StaticQuantOptions, type TensorRanges } from './quantize/static-qdq.ts';
export { convertToFp16, fp16Pass, DEFAULT_FP16_OP_BLOCK_LIST, type Fp16Options } from './quantize/fp16.ts';
export { applyMixed, mixedPass, parsePrecisionPlan, resolvePlan, type PrecisionPlan, type Precision } from './quantize/mixed.ts';
export { nodeKey } from './quantize/common.ts';
export { sizeBreakdown, type SizeBreakdown } from './size-breakdown.ts';

export interface CompressResult {
  readonly model: ModelProto;
  /** The encoded output (what to write). */
  readonly bytes: Uint8Array;
  readonly report: CompressReport;
}

export interface CompressReport {
  readonly method: string;
  /** The options after defaults were applied (the plan document is omitted). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly passes: readonly PassReport[];
  readonly sizeBefore: number;
  readonly sizeAfter: number;
  /** sizeAfter / sizeBefore. */
  readonly sizeRatio: number;
  /** Where the bytes go, in the input model (as re-encoded) and in the output. */
  readonly sizeBreakdown: { readonly before: SizeBreakdown; readonly after: SizeBreakdown };
}

/**
 * Runs a method on a model. `rawOptions` are validated against the method's schema
 * (E_COMPRESS_METHOD names a bad or foreign option); `sizeBefore` is the input file's
 * size when known (else the model is encoded to measure it).
 */
export async function compressModel(
  model: ModelProto,
  methodName: string,
  rawOptions: Record<string, unknown>,
  ctx: MethodContext,
  sizeBefore?: number,
): Promise<CompressResult> {
  const method = getMethod(methodName);
  const options = parseMethodOptions(method, rawOptions);
  const results = await method.run(model, options, ctx);
  const out = results.length > 0 ? results[results.length - 1]!.model : model;
  const bytes = encodeModel(out);
  const before = sizeBefore ?? encodeModel(model).length;
  const shown: Record<string, unknown> = { ...(options as object) };
  if ('plan' in shown) shown.plan = '(plan file)';
  return {
    model: out,
    bytes,
    report: {
      method: method.name,
      options: shown,
      passes: results.map((r) => r.report),
      sizeBefore: before,
      sizeAfter: bytes.length,
      sizeRatio: before > 0 ? bytes.length / before : 1,
      sizeBreakdown: { before: sizeBreakdown(model), after: sizeBreakdown(out) },
    },
  };
}
