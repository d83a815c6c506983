/**
 * Candidates as data (STYLE.md principle 5): each is a list of steps that the
 * builder (build.ts) carries out with src/compress. Adding a step kind without a
 * case in the builder fails to compile.
 */

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export type CandidateStep =
  /** The pre-passes alone: the fp32 baseline every other candidate starts from. */
  | { readonly kind: 'fold' }
  | { readonly kind: 'fp16' }
  | { readonly kind: 'int8-dynamic'; readonly perChannel: boolean }
  | { readonly kind: 'int8-static'; readonly calibration: CalibrationMethod; readonly perChannel: boolean }
  | { readonly kind: 'prune-channels'; readonly ratio: number }
  /**
   * A per-node precision plan: every node of `int8Nodes` int8 (dynamic MatMul/Gemm, or
   * static QDQ with the family's calibrated ranges), the rest fp32.
   */
  | { readonly kind: 'mixed'; readonly family: MixedFamily; readonly int8Nodes: readonly string[]; readonly fp32Kept: readonly string[] };

export type MixedFamily = { readonly kind: 'dynamic'; readonly perChannel: boolean } | { readonly kind: 'static'; readonly calibration: CalibrationMethod };

export interface CandidateSpec {
  /** Short stable id: "int8-static:entropy:pc", "prune0.3+int8-dynamic". */
  readonly id: string;
  readonly steps: readonly CandidateStep[];
}

export function describeStep(step: CandidateStep): string {
  switch (step.kind) {
    case 'fold':
      return 'fp32 (folded)';
    case 'fp16':
      return 'fp16';
    case 'int8-dynamic':
      return `int8-dynamic${step.perChannel ? ' per-channel' : ''}`;
    case 'int8-static':
      return `int8-static ${step.calibration} ${step.perChannel ? 'per-channel' : 'per-tensor'}`;
    case 'prune-channels':
      return `prune-channels ${step.ratio}`;
    case 'mixed':
      return `mixed ${step.family.kind === 'dynamic' ? `int8-dynamic${step.family.perChannel ? ' per-channel' : ''}` : `int8-static ${step.family.calibration}`}: ${step.int8Nodes.length} int8, ${step.fp32Kept.length} kept fp32${step.fp32Kept.length > 0 ? ` (${step.fp32Kept.slice(0, 4).join(', ')}${step.fp32Kept.length > 4 ? ', ...' : ''})` : ''}`;
  }
}

export function describeCandidate(spec: CandidateSpec): string {
  return spec.steps.map(describeStep).join(' → ');
}

/** Options for the uniform list; the defaults are what `edgevolve optimize` tries. */
export interface UniformOptions {
  readonly pruneRatios: readonly number[];
  /** Ratios also tried as prune-then-quantize. */
  readonly pruneThenQuantizeRatios: readonly number[];
  /** False when the model has nothing int8-static could quantize, or no calibration data. */
  readonly static: boolean;
}

export const DEFAULT_PRUNE_RATIOS: readonly number[] = [0.1, 0.2, 0.3, 0.5];
export const DEFAULT_PRUNE_THEN_QUANTIZE_RATIOS: readonly number[] = [0.2];

/** fp32, fp16, int8 (dynamic and static variants), channel pruning, prune-then-quantize. */
export function uniformCandidates(options: UniformOptions): CandidateSpec[] {
  const fold: CandidateStep = { kind: 'fold' };
  const list: CandidateSpec[] = [
    { id: 'fp32', steps: [fold] },
    { id: 'fp16', steps: [fold, { kind: 'fp16' }] },
    { id: 'int8-dynamic', steps: [fold, { kind: 'int8-dynamic', perChannel: false }] },
    { id: 'int8-dynamic:pc', steps: [fold, { kind: 'int8-dynamic', perChannel: true }] },
  ];
  if (options.static) {
    list.push(
      { id: 'int8-static:minmax:pc', steps: [fold, { kind: 'int8-static', calibration: 'minmax', perChannel: true }] },
      { id: 'int8-static:minmax:pt', steps: [fold, { kind: 'int8-static', calibration: 'minmax', perChannel: false }] },
      { id: 'int8-static:percentile:pc', steps: [fold, { kind: 'int8-static', calibration: 'percentile', perChannel: true }] },
      { id: 'int8-static:entropy:pc', steps: [fold, { kind: 'int8-static', calibration: 'entropy', perChannel: true }] },
    );
  }
  for (const ratio of options.pruneRatios) list.push({ id: `prune${ratio}`, steps: [fold, { kind: 'prune-channels', ratio }] });
  for (const ratio of options.pruneThenQuantizeRatios) {
    const prune: CandidateStep = { kind: 'prune-channels', ratio };
    list.push({ id: `prune${ratio}+int8-dynamic`, steps: [fold, prune, { kind: 'int8-dynamic', perChannel: false }] });
    if (options.static) list.push({ id: `prune${ratio}+int8-static`, steps: [fold, prune, { kind: 'int8-static', calibration: 'minmax', perChannel: true }] });
  }
  return list;
}
