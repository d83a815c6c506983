/**
 * Mean softmax cross-entropy over a batch of logits [N, classes] against integer labels.
 * Writes d(loss)/d(logits) into `grad` (same layout) and returns the mean loss.
 * The max is subtracted before exponentiating so large logits cannot overflow.
 */
export function softmaxCrossEntropy(
  logits: Float32Array,
  labels: ArrayLike<number>,
  batch: number,
  classes: number,
  grad: Float32Array,
): number {
  let loss = 0;
  for (let s = 0; s < batch; s++) {
    const row = s * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const e = Math.exp(logits[row + k]! - max);
      grad[row + k] = e;
      sum += e;
    }
    const label = labels[s]!;
    loss += Math.log(sum) - (logits[row + label]! - max);
    for (let k = 0; k < classes; k++) {
      grad[row + k] = (grad[row + k]! / sum - (k === label ? 1 : 0)) / batch;
    }
  }
  return loss / batch;
}

/** Index of the largest logit of each row (the first one on ties). */
export function argmaxRows(logits: Float32Array, rows: number, classes: number, out: Int32Array): void {
  for (let s = 0; s < rows; s++) {
    const row = s * classes;
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[row + k]! > logits[row + best]!) best = k;
    out[s] = best;
  }
}
