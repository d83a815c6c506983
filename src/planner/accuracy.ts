/**
 * What "accuracy" means for a model and a data set: top-1 against labels.npy when
 * the data set has labels; else fidelity to the fp32 model — top-1 agreement when
 * the first output is a class-score row, cosine similarity otherwise. Every metric
 * is a score in points (0..100) so that one --max-accuracy-drop applies to all.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { EvaluationReport } from './evaluate.ts';

export type AccuracyMetricKind = 'top1-labels' | 'top1-agreement' | 'cosine';

export interface AccuracyMetric {
  readonly kind: AccuracyMetricKind;
  /** The output scored (the model's first). */
  readonly output: string;
}

/** One evaluation boiled down: the score, the drop against fp32, and what the subset noise allows. */
export interface AccuracyScore {
  readonly samples: number;
  /** Points: top-1 %, agreement % or mean cosine × 100. */
  readonly score: number;
  /** fp32 score − score. */
  readonly drop: number;
  /** Share of samples whose top-1 differs from fp32 (null for the cosine metric). */
  readonly disagreement: number | null;
}

export function describeMetric(metric: AccuracyMetric): string {
  switch (metric.kind) {
    case 'top1-labels':
      return `top-1 accuracy against labels.npy (output '${metric.output}')`;
    case 'top1-agreement':
      return `top-1 agreement with the fp32 model (output '${metric.output}', no labels.npy)`;
    case 'cosine':
      return `mean cosine similarity to the fp32 model × 100 (output '${metric.output}', no labels.npy, not a classifier)`;
  }
}

/**
 * Chooses the metric from the fp32 model's own evaluation against itself: labels win;
 * a classifier (top-1 agreement defined) gets agreement; anything else cosine.
 */
export function chooseMetric(selfReport: EvaluationReport, firstOutput: string, outputRank: number): AccuracyMetric {
  if (selfReport.accuracy !== null) return { kind: 'top1-labels', output: selfReport.accuracy.output };
  const fidelity = selfReport.fidelity?.outputs.find((o) => o.output === firstOutput);
  if (fidelity === undefined) {
    throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `output '${firstOutput}' could not be compared with the fp32 model, so no accuracy can be measured`, { context: { output: firstOutput } });
  }
  // Class scores are [N, classes] or a sequence of them [N, T, classes]; a map ([N, C, H, W]: a detector's
  // probability map) has no class axis, and an argmax along its width would mean nothing.
  const classifier = fidelity.top1Agreement !== null && outputRank >= 1 && outputRank <= 3;
  return { kind: classifier ? 'top1-agreement' : 'cosine', output: firstOutput };
}

/** The score of one evaluation under the metric; `baseline` is fp32's score (100 for fidelity metrics). */
export function scoreOf(report: EvaluationReport, metric: AccuracyMetric, baseline: number): AccuracyScore {
  const fidelity = report.fidelity?.outputs.find((o) => o.output === metric.output);
  const disagreement = fidelity?.top1Agreement == null ? null : 1 - fidelity.top1Agreement;
  let score: number;
  switch (metric.kind) {
    case 'top1-labels':
      if (report.accuracy === null) throw new EdgevolveError('E_INTERNAL', 'labels metric without an accuracy in the evaluation');
      score = report.accuracy.top1 * 100;
      break;
    case 'top1-agreement':
      if (fidelity?.top1Agreement == null) throw new EdgevolveError('E_INTERNAL', 'agreement metric without a top-1 agreement in the evaluation');
      score = fidelity.top1Agreement * 100;
      break;
    case 'cosine':
      if (fidelity === undefined) throw new EdgevolveError('E_INTERNAL', 'cosine metric without a fidelity in the evaluation');
      score = fidelity.meanCosine * 100;
      break;
  }
  // Rounded to 1e-9 pt: scores are fractions × 100 in floating point, and 97.15 − 97.10 must equal a 0.05 budget, not exceed it.
  return { samples: report.samples, score, drop: Math.round((baseline - score) * 1e9) / 1e9, disagreement };
}

/**
 * How much a subset's drop may exceed the true drop by chance: two standard errors of
 * a paired difference, whose variance is at most (flipped samples) / n². The cosine
 * mean moves little between subsets; it gets a tenth of a point.
 */
export function subsetNoiseMargin(score: AccuracyScore): number {
  if (score.disagreement === null) return 0.1;
  const flipped = Math.max(1, score.disagreement * score.samples);
  return (200 * Math.sqrt(flipped)) / score.samples;
}
