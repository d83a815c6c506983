import { encodeNpy } from '../data/npy.ts';
import { measureCascade, type CascadeOutcome } from './cascade/measure.ts';
import { compareStudents, type Comparison } from './cloud/evaluate.ts';
import { distilStudent, type DistilOptions, type UnlabelledSet } from './cloud/distil.ts';
import { labelWithTeachers } from './cloud/label.ts';
import { isHard, scoreLogits, type HardnessCriteria } from './confidence.ts';
import type { FieldData } from './field/index.ts';
import { accuracyOf, argmax, openPredictor, type Predictor } from './predictor.ts';

export interface RoundInputs {
  /** The deployed student, ONNX bytes. */
  readonly student: Uint8Array;
  readonly teachers: readonly Predictor[];
  readonly field: FieldData;
  readonly replay: UnlabelledSet | undefined;
  /** Which answers the devices keep as hard samples. */
  readonly mining: HardnessCriteria;
  /** Which answers the cascade sends to the cloud. */
  readonly cascade: HardnessCriteria;
  readonly distil: DistilOptions;
  /** Held-out gain the new student needs before it is published. */
  readonly minGain: number;
}

export interface RoundReport {
  readonly studentBefore: number;
  readonly studentAfter: number;
  readonly teacher: number;
  readonly cleanBefore: number;
  readonly cleanAfter: number;
  /** The cascade with the student that served during the round, on the held-out field data. */
  readonly cascade: CascadeOutcome;
  readonly inferences: number;
  readonly hardSamples: number;
  /** Bytes of the mined samples as uploaded (input NPY + logits NPY). */
  readonly hardSampleBytes: number;
  readonly comparison: Comparison;
  readonly distilSeconds: number;
  /** The distilled student; publish it only when comparison.better. */
  readonly candidate: Uint8Array;
}

/**
 * One co-evolution round without the network in between (the measurable core of issue 9):
 * the student serves the field stream, hard samples are mined from its answers, the
 * teachers label them, the student is distilled from its current weights and compared
 * with its predecessor on the held-out field data. scripts/coevolution-demo.ts runs the
 * same steps across real devices, broker and registry.
 */
export async function runRound(inputs: RoundInputs): Promise<RoundReport> {
  const { field, teachers } = inputs;
  const teacher = teachers[0]!;
  const classes = teacher.classes;
  const previous = await openPredictor(inputs.student, { threads: 1 });
  let candidateModel: Predictor | undefined;
  try {
    const stream = field.stream;
    const streamLogits = await previous.logits(stream.inputs, stream.count);
    const sampleSize = stream.inputs.length / stream.count;
    const hardIndices: number[] = [];
    const bytesPerSample = sampleBytes(stream.sampleShape, sampleSize, classes);
    for (let i = 0; i < stream.count; i++) {
      if (!isHard(scoreLogits(streamLogits, i, classes), inputs.mining)) continue;
      hardIndices.push(i);
    }
    const hardInputs = new Float32Array(hardIndices.length * sampleSize);
    hardIndices.forEach((index, j) => hardInputs.set(stream.inputs.subarray(index * sampleSize, (index + 1) * sampleSize), j * sampleSize));
    const hard = { inputs: hardInputs, count: hardIndices.length, sampleShape: stream.sampleShape };

    const held = field.heldOut;
    const studentHeld = await previous.logits(held.inputs, held.count);
    const teacherHeld = await teacher.logits(held.inputs, held.count);
    const cascade = measureCascade(studentHeld, teacherHeld, held.labels, held.count, classes, inputs.cascade);

    const distilled = await distilStudent(inputs.student, teachers, hard, inputs.replay, inputs.distil, { round: '1' });
    candidateModel = await openPredictor(distilled.model, { threads: 1 });
    const hardLabels = await labelWithTeachers(teachers, hard.inputs, hard.count, 1);
    const comparison = await compareStudents(previous, candidateModel, held, { inputs: hard.inputs, labels: hardLabels.labels, count: hard.count }, inputs.minGain);
    const clean = field.cleanHeldOut;
    const top1 = async (model: Predictor, set: typeof clean): Promise<number> =>
      accuracyOf(argmax(await model.logits(set.inputs, set.count), set.count, classes), set.labels);
    return {
      studentBefore: comparison.previous.heldOut,
      studentAfter: comparison.candidate.heldOut,
      teacher: cascade.cloudAccuracy,
      cleanBefore: await top1(previous, clean),
      cleanAfter: await top1(candidateModel, clean),
      cascade,
      inferences: stream.count,
      hardSamples: hard.count,
      hardSampleBytes: hardIndices.length * bytesPerSample,
      comparison,
      distilSeconds: distilled.seconds,
      candidate: distilled.model,
    };
  } finally {
    await previous.release();
    await candidateModel?.release();
  }
}

/** Upload size of one hard sample: its input and its logits as NPY files. */
function sampleBytes(sampleShape: readonly number[], sampleSize: number, classes: number): number {
  const input = encodeNpy({ dtype: 'float32', shape: [1, ...sampleShape], data: new Float32Array(sampleSize) });
  const logits = encodeNpy({ dtype: 'float32', shape: [1, classes], data: new Float32Array(classes) });
  return input.byteLength + logits.byteLength;
}
