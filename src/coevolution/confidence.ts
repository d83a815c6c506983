import { EdgevolveError } from '../errors/index.ts';

/**
 * How sure a classifier is of one answer, from its logits: the three criteria issue 9
 * names. All are in [0, 1]; low maxProbability, low margin or high normalizedEntropy
 * mean "unsure".
 */
export interface ConfidenceScores {
  /** The largest softmax probability. */
  readonly maxProbability: number;
  /** Largest minus second-largest probability. */
  readonly margin: number;
  /** Shannon entropy of the softmax divided by log(classes). */
  readonly normalizedEntropy: number;
}

/** Thresholds per model; an answer is hard when ANY configured criterion says so. */
export interface HardnessCriteria {
  readonly maxProbabilityBelow?: number | undefined;
  readonly marginBelow?: number | undefined;
  readonly normalizedEntropyAbove?: number | undefined;
}

/** Scores of row `row` of `logits` [rows, classes]; no allocation beyond the result. */
export function scoreLogits(logits: ArrayLike<number>, row: number, classes: number): ConfidenceScores {
  if (classes < 2) throw new EdgevolveError('E_COEVO_INVALID', `confidence needs at least 2 classes, got ${classes}`);
  const base = row * classes;
  if (base + classes > logits.length) throw new EdgevolveError('E_COEVO_INVALID', `row ${row} of ${classes} classes is past the ${logits.length} logits`);
  let max = -Infinity;
  for (let k = 0; k < classes; k++) max = Math.max(max, logits[base + k]!);
  let sum = 0;
  for (let k = 0; k < classes; k++) sum += Math.exp(logits[base + k]! - max);
  const logSum = Math.log(sum);
  let first = 0;
  let second = 0;
  let entropy = 0;
  for (let k = 0; k < classes; k++) {
    const logP = logits[base + k]! - max - logSum;
    const p = Math.exp(logP);
    if (p > first) {
      second = first;
      first = p;
    } else if (p > second) {
      second = p;
    }
    if (p > 0) entropy -= p * logP;
  }
  return { maxProbability: first, margin: first - second, normalizedEntropy: Math.min(1, entropy / Math.log(classes)) };
}

/** True when any configured criterion marks the answer as hard. */
export function isHard(scores: ConfidenceScores, criteria: HardnessCriteria): boolean {
  return (
    (criteria.maxProbabilityBelow !== undefined && scores.maxProbability < criteria.maxProbabilityBelow) ||
    (criteria.marginBelow !== undefined && scores.margin < criteria.marginBelow) ||
    (criteria.normalizedEntropyAbove !== undefined && scores.normalizedEntropy > criteria.normalizedEntropyAbove)
  );
}

/**
 * For detection-style outputs (one score per candidate box): the share of boxes the
 * model kept (score >= keepThreshold) whose score is still below confidentThreshold.
 * A frame full of borderline boxes is a hard frame. 0 when no box was kept.
 */
export function lowConfidenceBoxShare(boxScores: ArrayLike<number>, keepThreshold: number, confidentThreshold: number): number {
  let kept = 0;
  let unsure = 0;
  for (let i = 0; i < boxScores.length; i++) {
    const score = boxScores[i]!;
    if (score < keepThreshold) continue;
    kept++;
    if (score < confidentThreshold) unsure++;
  }
  return kept === 0 ? 0 : unsure / kept;
}
