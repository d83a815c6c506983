import { shiftImage } from './augment.ts';
import { sizeOf } from './layers/layer.ts';
import { distillationLoss } from './distill-loss.ts';
import { argmaxRows, softmaxCrossEntropy } from './loss.ts';
import type { Sequential } from './network.ts';
import { Adam } from './optim.ts';
import { Rng } from './prng.ts';
import { EdgevolveError } from '../../errors/index.ts';

/** Labelled samples stored back to back: `inputs` holds `count` samples of `sampleShape`. */
export interface LabelledSet {
  readonly inputs: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly sampleShape: readonly number[];
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Peak learning rate; it decays along a half cosine to zero by the last step. */
  readonly learningRate: number;
  readonly weightDecay?: number;
  /** Seeds shuffling and augmentation (weights are seeded where the network is built). */
  readonly seed: number;
  /** Random translation of up to this many pixels per axis, for [C,H,W] samples; 0 for none. */
  readonly maxShift?: number;
  readonly onEpoch?: (report: EpochReport) => void;
  /** Knowledge distillation: the loss becomes `distillationLoss` against these soft labels. */
  readonly distillation?: DistillationTargets;
}

/** A teacher's soft labels for every sample of the training set, and the loss's weights. */
export interface DistillationTargets {
  /** [count, classes] row-major: softmax(teacher logits / temperature) per sample. */
  readonly teacherProbabilities: Float32Array;
  readonly temperature: number;
  /** Weight of the soft (KL) term; 1 - alpha weighs cross-entropy with the labels. */
  readonly alpha: number;
}

export interface EpochReport {
  readonly epoch: number;
  readonly meanLoss: number;
  /** Accuracy on the training batches as they were seen (augmented, in training mode). */
  readonly trainAccuracy: number;
  readonly seconds: number;
}

/** Trains `network` in place with Adam on softmax cross-entropy; returns the per-epoch reports. */
export function train(network: Sequential, data: LabelledSet, options: TrainOptions): EpochReport[] {
  const { batchSize, epochs } = options;
  if (batchSize > network.maxBatch) throw new EdgevolveError('E_TRAIN_INVALID', `batch size ${batchSize} exceeds the network's maxBatch ${network.maxBatch}`);
  const sampleSize = sizeOf(data.sampleShape);
  if (sampleSize !== network.inputSize) throw new EdgevolveError('E_TRAIN_INVALID', `samples have ${sampleSize} values, the network takes ${network.inputSize}`);
  const maxShift = options.maxShift ?? 0;
  const [channels = 1, height = 1, width = 1] = data.sampleShape.length === 3 ? data.sampleShape : [];
  if (maxShift > 0 && data.sampleShape.length !== 3) throw new EdgevolveError('E_TRAIN_INVALID', `shift augmentation needs [C,H,W] samples, got [${data.sampleShape.join(',')}]`);

  const rng = new Rng(options.seed);
  const optimizer = new Adam(network.params, { weightDecay: options.weightDecay ?? 0 });
  const batchInputs = new Float32Array(batchSize * sampleSize);
  const batchLabels = new Uint8Array(batchSize);
  const dLogits = new Float32Array(batchSize * network.outputSize);
  const predicted = new Int32Array(batchSize);
  const distillation = options.distillation;
  const classes = network.outputSize;
  if (distillation !== undefined && distillation.teacherProbabilities.length !== data.count * classes) {
    throw new EdgevolveError('E_TRAIN_INVALID', `soft labels hold ${distillation.teacherProbabilities.length} values, ${data.count} samples x ${classes} classes need ${data.count * classes}`);
  }
  const batchSoft = new Float32Array(distillation === undefined ? 0 : batchSize * classes);
  const stepsPerEpoch = Math.ceil(data.count / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const reports: EpochReport[] = [];
  let step = 0;

  for (let epoch = 1; epoch <= epochs; epoch++) {
    const started = performance.now();
    const order = rng.permutation(data.count);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < data.count; start += batchSize) {
      const batch = Math.min(batchSize, data.count - start);
      for (let s = 0; s < batch; s++) {
        const index = order[start + s]!;
        const sample = data.inputs.subarray(index * sampleSize, (index + 1) * sampleSize);
        const target = batchInputs.subarray(s * sampleSize, (s + 1) * sampleSize);
        if (maxShift > 0) {
          const dy = rng.int(2 * maxShift + 1) - maxShift;
          const dx = rng.int(2 * maxShift + 1) - maxShift;
          shiftImage(sample, target, channels, height, width, dy, dx);
        } else {
          target.set(sample);
        }
        batchLabels[s] = data.labels[index]!;
        if (distillation !== undefined) batchSoft.set(distillation.teacherProbabilities.subarray(index * classes, (index + 1) * classes), s * classes);
      }
      const x = batchInputs.subarray(0, batch * sampleSize);
      const labels = batchLabels.subarray(0, batch);
      const logits = network.forward(x, batch, true);
      const grad = dLogits.subarray(0, batch * network.outputSize);
      lossSum += (distillation === undefined
        ? softmaxCrossEntropy(logits, labels, batch, classes, grad)
        : distillationLoss(logits, batchSoft, labels, batch, classes, distillation.temperature, distillation.alpha, grad)) * batch;
      argmaxRows(logits, batch, network.outputSize, predicted);
      for (let s = 0; s < batch; s++) if (predicted[s] === labels[s]) correct++;
      network.backward(grad, batch);
      optimizer.step(options.learningRate * 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps)));
      step++;
    }
    const report: EpochReport = {
      epoch,
      meanLoss: lossSum / data.count,
      trainAccuracy: correct / data.count,
      seconds: (performance.now() - started) / 1000,
    };
    reports.push(report);
    options.onEpoch?.(report);
  }
  return reports;
}
