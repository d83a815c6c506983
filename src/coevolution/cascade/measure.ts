import { isHard, scoreLogits, type HardnessCriteria } from '../confidence.ts';
import { argmax } from '../predictor.ts';

export interface CascadeOutcome {
  /** Top-1 of the answers the cascade gives: the cloud's for offloaded samples, the local one otherwise. */
  readonly accuracy: number;
  /** Share of requests that asked the cloud. */
  readonly offloadShare: number;
  readonly localAccuracy: number;
  readonly cloudAccuracy: number;
  /** (cascade - local) / (cloud - local): how much of the gap the cascade closes (NaN when there is no gap). */
  readonly recoveredGapShare: number;
}

/**
 * What the cascade would answer on a labelled set, given both models' logits: the same
 * decision (`isHard` on the local answer) as the live cascade, with an always-punctual cloud.
 */
export function measureCascade(
  localLogits: Float32Array, cloudLogits: Float32Array, labels: ArrayLike<number>, count: number, classes: number, criteria: HardnessCriteria,
): CascadeOutcome {
  const local = argmax(localLogits, count, classes);
  const cloud = argmax(cloudLogits, count, classes);
  let offloaded = 0;
  let correct = 0;
  let localCorrect = 0;
  let cloudCorrect = 0;
  for (let i = 0; i < count; i++) {
    const ask = isHard(scoreLogits(localLogits, i, classes), criteria);
    if (ask) offloaded++;
    const answer = ask ? cloud[i] : local[i];
    if (answer === labels[i]) correct++;
    if (local[i] === labels[i]) localCorrect++;
    if (cloud[i] === labels[i]) cloudCorrect++;
  }
  const accuracy = correct / count;
  const localAccuracy = localCorrect / count;
  const cloudAccuracy = cloudCorrect / count;
  const gap = cloudAccuracy - localAccuracy;
  return { accuracy, offloadShare: offloaded / count, localAccuracy, cloudAccuracy, recoveredGapShare: gap > 0 ? (accuracy - localAccuracy) / gap : Number.NaN };
}
