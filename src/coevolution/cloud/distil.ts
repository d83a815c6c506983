import { encodeModel } from '../../onnx/index.ts';
import { exportToOnnx, importMlpFromOnnx, train, type EpochReport } from '../train/index.ts';
import type { Predictor } from '../predictor.ts';
import { labelWithTeachers } from './label.ts';
import { EdgevolveError } from '../../errors/index.ts';

/** Samples back to back, without labels: what the devices uploaded, or replayed training data. */
export interface UnlabelledSet {
  readonly inputs: Float32Array;
  readonly count: number;
  readonly sampleShape: readonly number[];
}

export interface DistilOptions {
  readonly temperature: number;
  /** Weight of the KL term against the teachers' soft labels; 1 - alpha weighs CE with their top-1. */
  readonly alpha: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly weightDecay: number;
  /** Random translation in pixels during training (0 for none). */
  readonly maxShift: number;
  readonly seed: number;
}

/** Measured on the demo's field shift (README, "Edge–cloud co-evolution"). */
export const DEFAULT_DISTIL_OPTIONS: DistilOptions = {
  temperature: 4, alpha: 0.7, epochs: 10, batchSize: 32, learningRate: 1e-3, weightDecay: 1e-4, maxShift: 1, seed: 5,
};

export interface DistilResult {
  /** The distilled student as ONNX bytes (same inputs and outputs as the one it started from). */
  readonly model: Uint8Array;
  readonly epochs: readonly EpochReport[];
  readonly trainedOn: number;
  readonly seconds: number;
}

/**
 * Distils the student from the teachers, starting from the student's current weights:
 * the hard samples plus `replay` (samples of the original training distribution, so the
 * student adapts without forgetting), all labelled by the teachers.
 */
export async function distilStudent(
  student: Uint8Array,
  teachers: readonly Predictor[],
  hardSamples: UnlabelledSet,
  replay: UnlabelledSet | undefined,
  options: DistilOptions,
  metadata: Readonly<Record<string, string>> = {},
): Promise<DistilResult> {
  const started = performance.now();
  const network = importMlpFromOnnx(student, Math.max(options.batchSize, 1));
  const sampleSize = network.inputSize;
  const count = hardSamples.count + (replay?.count ?? 0);
  if (hardSamples.count === 0) throw new EdgevolveError('E_COEVO_INVALID', 'no hard samples to distil on');
  for (const set of [hardSamples, replay]) {
    if (set !== undefined && set.inputs.length !== set.count * sampleSize) {
      throw new EdgevolveError('E_COEVO_INVALID', `${set.inputs.length} values are not ${set.count} samples of ${sampleSize}`);
    }
  }
  const inputs = new Float32Array(count * sampleSize);
  inputs.set(hardSamples.inputs);
  if (replay !== undefined) inputs.set(replay.inputs, hardSamples.count * sampleSize);
  const soft = await labelWithTeachers(teachers, inputs, count, options.temperature);
  const epochs = train(network, { inputs, labels: soft.labels, count, sampleShape: network.inputShape }, {
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    weightDecay: options.weightDecay,
    seed: options.seed,
    maxShift: options.maxShift,
    distillation: { teacherProbabilities: soft.probabilities, temperature: options.temperature, alpha: options.alpha },
  });
  const model = encodeModel(exportToOnnx(network, {
    graphName: 'student',
    docString: 'distilled by edgevolve cloud (issue 9)',
    metadata: { ...metadata, distilledOn: String(count), temperature: String(options.temperature), alpha: String(options.alpha) },
  }));
  return { model, epochs, trainedOn: count, seconds: (performance.now() - started) / 1000 };
}
