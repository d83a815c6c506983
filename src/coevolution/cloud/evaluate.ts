import { accuracyOf, argmax, type Predictor } from '../predictor.ts';

/** A labelled evaluation set (labels: ground truth for held-out data, the teachers' top-1 for hard samples). */
export interface EvaluationSet {
  readonly inputs: Float32Array;
  readonly labels: ArrayLike<number>;
  readonly count: number;
}

export interface StudentScore {
  readonly heldOut: number;
  readonly hardSamples: number;
}

export interface Comparison {
  readonly previous: StudentScore;
  readonly candidate: StudentScore;
  /** Publish only when true: better on held-out data by minGain and no worse on the hard samples. */
  readonly better: boolean;
  readonly reason: string;
}

export async function scoreStudent(model: Predictor, heldOut: EvaluationSet, hard: EvaluationSet): Promise<StudentScore> {
  const top1 = async (set: EvaluationSet): Promise<number> =>
    set.count === 0 ? 0 : accuracyOf(argmax(await model.logits(set.inputs, set.count), set.count, model.classes), set.labels);
  return { heldOut: await top1(heldOut), hardSamples: await top1(hard) };
}

/** The publish gate: the candidate must beat the previous student, not just differ from it. */
export async function compareStudents(previous: Predictor, candidate: Predictor, heldOut: EvaluationSet, hard: EvaluationSet, minGain: number): Promise<Comparison> {
  const before = await scoreStudent(previous, heldOut, hard);
  const after = await scoreStudent(candidate, heldOut, hard);
  const gain = after.heldOut - before.heldOut;
  const better = gain >= minGain && after.hardSamples >= before.hardSamples;
  const reason = better
    ? `held-out top-1 ${pct(before.heldOut)} -> ${pct(after.heldOut)}, hard samples ${pct(before.hardSamples)} -> ${pct(after.hardSamples)}`
    : gain < minGain
      ? `held-out gain ${pct(gain)} is below the required ${pct(minGain)}`
      : `worse on the hard samples (${pct(before.hardSamples)} -> ${pct(after.hardSamples)})`;
  return { previous: before, candidate: after, better, reason };
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
