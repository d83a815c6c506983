import { createSession, type Session, type SessionOptions } from '../runtime/index.ts';
import { DataType } from '../onnx/index.ts';
import { EdgevolveError } from '../errors/index.ts';

/**
 * A classifier as the co-evolution loop needs it: logits for samples stored back to back.
 * The cloud teachers, the evaluated students and the simulated devices all are one.
 */
export interface Predictor {
  readonly sampleShape: readonly number[];
  readonly classes: number;
  /** Logits [count, classes] for `count` samples stored back to back in `inputs`. */
  logits(inputs: Float32Array, count: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** A Predictor over an onnxruntime session of a model with one float input and one [N, classes] output. */
export async function openPredictor(model: Uint8Array | string, options: SessionOptions & { readonly maxBatch?: number } = {}): Promise<Predictor> {
  const session = await createSession(model, options);
  const input = session.inputs[0];
  const output = session.outputs[0];
  if (input === undefined || output === undefined || session.inputs.length !== 1) {
    await session.release();
    throw new EdgevolveError('E_COEVO_INVALID', 'a co-evolution model needs exactly one input and at least one output');
  }
  const sampleShape = input.shape.slice(1).map((d) => (typeof d === 'number' ? d : -1));
  const classes = typeof output.shape[1] === 'number' ? output.shape[1] : -1;
  if (sampleShape.some((d) => d <= 0) || classes <= 1) {
    await session.release();
    throw new EdgevolveError('E_COEVO_INVALID', `model input [${input.shape.join(',')}] / output [${output.shape.join(',')}] need fixed non-batch dimensions`);
  }
  return new SessionPredictor(session, input.name, output.name, sampleShape, classes, options.maxBatch ?? 500);
}

class SessionPredictor implements Predictor {
  private readonly sampleSize: number;
  constructor(
    private readonly session: Session,
    private readonly inputName: string,
    private readonly outputName: string,
    readonly sampleShape: readonly number[],
    readonly classes: number,
    private readonly maxBatch: number,
  ) {
    this.sampleSize = sampleShape.reduce((a, b) => a * b, 1);
  }

  async logits(inputs: Float32Array, count: number): Promise<Float32Array> {
    if (inputs.length !== count * this.sampleSize) {
      throw new EdgevolveError('E_COEVO_INVALID', `${inputs.length} values are not ${count} samples of [${this.sampleShape.join(',')}]`);
    }
    const out = new Float32Array(count * this.classes);
    for (let start = 0; start < count; start += this.maxBatch) {
      const batch = Math.min(this.maxBatch, count - start);
      const data = inputs.subarray(start * this.sampleSize, (start + batch) * this.sampleSize);
      const result = await this.session.run({ [this.inputName]: { dataType: DataType.FLOAT, dims: [batch, ...this.sampleShape], data } }, [this.outputName]);
      out.set(result[this.outputName]!.data as Float32Array, start * this.classes);
    }
    return out;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Index of the largest logit per row. */
export function argmax(logits: Float32Array, rows: number, classes: number): Int32Array {
  const out = new Int32Array(rows);
  for (let s = 0; s < rows; s++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[s * classes + k]! > logits[s * classes + best]!) best = k;
    out[s] = best;
  }
  return out;
}

/** Fraction of `predictions` equal to `labels` (0 for none). */
export function accuracyOf(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) correct++;
  return predictions.length === 0 ? 0 : correct / predictions.length;
}
