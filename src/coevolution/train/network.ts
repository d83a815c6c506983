import { argmaxRows } from './loss.ts';
import { sizeOf, type Layer, type Param } from './layers/layer.ts';
import { EdgevolveError } from '../../errors/index.ts';

/** A chain of layers; each layer's output shape is the next one's input shape. */
export class Sequential {
  readonly params: readonly Param[];
  readonly inputSize: number;
  readonly outputSize: number;

  constructor(readonly layers: readonly Layer[], readonly maxBatch: number) {
    const first = layers[0];
    const last = layers[layers.length - 1];
    if (first === undefined || last === undefined) throw new EdgevolveError('E_TRAIN_INVALID', 'a network needs at least one layer');
    for (let i = 1; i < layers.length; i++) {
      const from = sizeOf(layers[i - 1]!.outputShape);
      const to = sizeOf(layers[i]!.inputShape);
      if (from !== to) throw new EdgevolveError('E_TRAIN_INVALID', `layer ${i} (${layers[i]!.kind}) expects ${to} values per sample, the previous layer gives ${from}`);
    }
    this.params = layers.flatMap((layer) => layer.params);
    this.inputSize = sizeOf(first.inputShape);
    this.outputSize = sizeOf(last.outputShape);
  }

  get inputShape(): readonly number[] {
    return this.layers[0]!.inputShape;
  }

  get parameterCount(): number {
    let count = 0;
    for (const p of this.params) count += p.value.length;
    return count;
  }

  forward(x: Float32Array, batch: number, training: boolean): Float32Array {
    let activations = x;
    for (const layer of this.layers) activations = layer.forward(activations, batch, training);
    return activations;
  }

  /** Backpropagates d(loss)/d(output) of the last `forward(..., training=true)`; leaves gradients in the params. */
  backward(dy: Float32Array, batch: number): void {
    let gradient = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) gradient = this.layers[i]!.backward(gradient, batch);
  }

  /** Inference-mode predictions (argmax of the outputs) for `count` samples stored back to back in `inputs`. */
  predict(inputs: Float32Array, count: number): Int32Array {
    const predictions = new Int32Array(count);
    for (let start = 0; start < count; start += this.maxBatch) {
      const batch = Math.min(this.maxBatch, count - start);
      const x = inputs.subarray(start * this.inputSize, (start + batch) * this.inputSize);
      const logits = this.forward(x, batch, false);
      argmaxRows(logits, batch, this.outputSize, predictions.subarray(start, start + batch));
    }
    return predictions;
  }
}

/** Fraction of predictions equal to their labels. */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) correct++;
  return predictions.length === 0 ? 0 : correct / predictions.length;
}
