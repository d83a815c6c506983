import { softmaxRows } from '../train/index.ts';
import { argmax, type Predictor } from '../predictor.ts';
import { EdgevolveError } from '../../errors/index.ts';

/** A teacher's view of a set of samples. */
export interface SoftLabels {
  /** [count, classes]: the teachers' softmax at `temperature`, averaged over teachers. */
  readonly probabilities: Float32Array;
  /** The averaged teachers' top-1 per sample: the label the CE term uses (field data has no ground truth). */
  readonly labels: Uint8Array;
  readonly temperature: number;
}

/**
 * Labels `count` samples with one or more teachers: soft labels at temperature T (Hinton
 * et al. 2015), averaged over teachers so that an ensemble teaches as one.
 */
export async function labelWithTeachers(teachers: readonly Predictor[], inputs: Float32Array, count: number, temperature: number): Promise<SoftLabels> {
  const first = teachers[0];
  if (first === undefined) throw new EdgevolveError('E_COEVO_INVALID', 'labelling needs at least one teacher');
  if (!(temperature > 0)) throw new EdgevolveError('E_COEVO_INVALID', `temperature must be > 0, got ${temperature}`);
  const classes = first.classes;
  const sum = new Float32Array(count * classes);
  const probabilities = new Float32Array(count * classes);
  for (const teacher of teachers) {
    if (teacher.classes !== classes) throw new EdgevolveError('E_COEVO_INVALID', `teachers disagree on the class count (${classes} vs ${teacher.classes})`);
    softmaxRows(await teacher.logits(inputs, count), count, classes, temperature, probabilities);
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + probabilities[i]!;
  }
  for (let i = 0; i < sum.length; i++) probabilities[i] = sum[i]! / teachers.length;
  return { probabilities, labels: Uint8Array.from(argmax(probabilities, count, classes)), temperature };
}
