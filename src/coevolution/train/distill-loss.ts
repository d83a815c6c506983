/**
 * The knowledge-distillation loss of Hinton et al. (2015), as issue 9 states it:
 *
 *   alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE(y, p_student)
 *
 * where p^T = softmax(logits / T). The T^2 factor keeps the soft term's gradient on the
 * same scale as the hard term's when T changes (the gradient of the KL term is
 * (p_student^T - p_teacher^T) / T). `teacherProbabilities` are the teacher's soft labels,
 * already at temperature T (rows of [N, classes] summing to 1). Writes d(loss)/d(logits)
 * into `grad` and returns the mean loss over the batch.
 */
export function distillationLoss(
  logits: Float32Array,
  teacherProbabilities: Float32Array,
  labels: ArrayLike<number>,
  batch: number,
  classes: number,
  temperature: number,
  alpha: number,
  grad: Float32Array,
): number {
  let loss = 0;
  const softWeight = alpha * temperature * temperature;
  for (let s = 0; s < batch; s++) {
    const row = s * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
    // Hard term: softmax at T=1.
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(logits[row + k]! - max);
    const label = labels[s]!;
    const logSum = Math.log(sum);
    loss += (1 - alpha) * (logSum - (logits[row + label]! - max));
    // Soft term: softmax at T (the max of logits/T is max/T).
    let sumT = 0;
    for (let k = 0; k < classes; k++) sumT += Math.exp((logits[row + k]! - max) / temperature);
    const logSumT = Math.log(sumT);
    for (let k = 0; k < classes; k++) {
      const z = logits[row + k]! - max;
      const pHard = Math.exp(z - logSum);
      const logPSoft = z / temperature - logSumT;
      const pSoft = Math.exp(logPSoft);
      const q = teacherProbabilities[row + k]!;
      if (q > 0) loss += softWeight * q * (Math.log(q) - logPSoft);
      const dHard = (1 - alpha) * (pHard - (k === label ? 1 : 0));
      const dSoft = (softWeight * (pSoft - q)) / temperature;
      grad[row + k] = (dHard + dSoft) / batch;
    }
  }
  return loss / batch;
}

/** Softmax of each row of `logits` at `temperature`, into `out` (same layout). */
export function softmaxRows(logits: Float32Array, rows: number, classes: number, temperature: number, out: Float32Array): void {
  for (let s = 0; s < rows; s++) {
    const row = s * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const e = Math.exp((logits[row + k]! - max) / temperature);
      out[row + k] = e;
      sum += e;
    }
    for (let k = 0; k < classes; k++) out[row + k] = out[row + k]! / sum;
  }
}
