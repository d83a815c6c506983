/**
 * Accuracy and fidelity metrics: pure functions over Float32Arrays, plus meters
 * that accumulate them batch by batch so that an evaluation never holds every
 * output in memory. Rows are addressed by offset and length, not subarrays, so
 * the per-sample loops allocate nothing.
 *
 * Ties follow NumPy's argmax: the first index wins. NaN never wins a comparison.
 */
import { EdgevolveError } from '../errors/index.ts';

/** Index of the largest of values[offset, offset + length); the first on ties; 0 when all are NaN. */
export function argmax(values: Float32Array, offset = 0, length = values.length - offset): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  let seen = false;
  for (let i = 0; i < length; i++) {
    const v = values[offset + i] as number;
    if (v > bestValue || (!seen && v === bestValue)) {
      best = i;
      bestValue = v;
      seen = true;
    }
  }
  return best;
}

/**
 * True when `label` is among the k best of the row, ranking as argmax does (ties
 * broken by the lower index), so that top-1 agrees with argmax. A NaN score never counts.
 */
export function inTopK(values: Float32Array, offset: number, length: number, label: number, k: number): boolean {
  const score = values[offset + label] as number;
  if (Number.isNaN(score)) return false;
  let better = 0;
  for (let i = 0; i < length; i++) {
    const v = values[offset + i] as number;
    if (v > score || (v === score && i < label)) {
      better++;
      if (better >= k) return false;
    }
  }
  return true;
}

/** Cosine similarity of two rows; 1 when both are all zero, 0 when only one is. */
export function cosineSimilarity(a: Float32Array, b: Float32Array, offset = 0, length = a.length - offset): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = offset, end = offset + length; i < end; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 && nb === 0) return 1;
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

/** ‖actual − reference‖₂ / ‖reference‖₂; 0 for equal arrays, Infinity when only the reference is zero. */
export function relativeL2(actual: Float32Array, reference: Float32Array): number {
  const { diff2, ref2 } = squaredNorms(actual, reference, 0, actual.length);
  return relativeFromNorms(diff2, ref2);
}

/** max |actual − reference|; NaN when one has NaN where the other has a number (both NaN counts as equal). */
export function maxAbsError(actual: Float32Array, reference: Float32Array): number {
  return maxAbsDiff(actual, reference, 0, actual.length);
}

function squaredNorms(actual: Float32Array, reference: Float32Array, offset: number, length: number): { diff2: number; ref2: number } {
  let diff2 = 0;
  let ref2 = 0;
  for (let i = offset, end = offset + length; i < end; i++) {
    const r = reference[i] as number;
    const d = (actual[i] as number) - r;
    diff2 += d * d;
    ref2 += r * r;
  }
  return { diff2, ref2 };
}

function relativeFromNorms(diff2: number, ref2: number): number {
  if (diff2 === 0) return 0;
  return ref2 === 0 ? Number.POSITIVE_INFINITY : Math.sqrt(diff2 / ref2);
}

function maxAbsDiff(actual: Float32Array, reference: Float32Array, offset: number, length: number): number {
  let max = 0;
  for (let i = offset, end = offset + length; i < end; i++) {
    const a = actual[i] as number;
    const r = reference[i] as number;
    const d = Math.abs(a - r);
    if (d > max) max = d;
    else if (Number.isNaN(d) && !(Number.isNaN(a) && Number.isNaN(r)) && a !== r) return Number.NaN;
  }
  return max;
}

/** Top-1 / top-5 accuracy against labels; top5 is null when there are 5 classes or fewer (it would be trivially 1). */
export interface AccuracyResult {
  readonly samples: number;
  readonly classes: number;
  readonly top1: number;
  readonly top5: number | null;
}

/**
 * Accumulates top-1 and top-5 accuracy. Scores are rows of `classes` values per
 * sample; a row of 1 value is taken as the predicted class id itself (models that
 * end in ArgMax).
 */
export class AccuracyMeter {
  private samples = 0;
  private top1 = 0;
  private top5 = 0;
  private classes: number | undefined;

  add(scores: Float32Array, labels: Int32Array): void {
    const n = labels.length;
    if (n === 0) return;
    if (scores.length % n !== 0) {
      throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `${scores.length} scores cannot be split into rows for ${n} labels`, {
        context: { scores: scores.length, labels: n },
      });
    }
    const classes = scores.length / n;
    if (this.classes !== undefined && classes !== this.classes) {
      throw new EdgevolveError('E_EVAL_OUTPUT_SHAPE', `rows changed from ${this.classes} to ${classes} classes between batches`);
    }
    this.classes = classes;
    for (let s = 0; s < n; s++) {
      const label = labels[s] as number;
      const offset = s * classes;
      if (classes === 1) {
        if (Math.round(scores[offset] as number) === label) this.top1++;
        continue;
      }
      if (label >= classes) {
        throw new EdgevolveError('E_EVAL_LABEL_RANGE', `label ${label} is not a class of an output with ${classes} classes`, { context: { label, classes } });
      }
      if (inTopK(scores, offset, classes, label, 1)) this.top1++;
      if (inTopK(scores, offset, classes, label, 5)) this.top5++;
    }
    this.samples += n;
  }

  result(): AccuracyResult {
    const classes = this.classes ?? 0;
    const n = this.samples;
    return {
      samples: n,
      classes,
      top1: n === 0 ? 0 : this.top1 / n,
      top5: classes <= 5 || n === 0 ? null : this.top5 / n,
    };
  }
}

/** How closely one output follows the reference's. */
export interface FidelityResult {
  readonly samples: number;
  /** Elements per sample. */
  readonly rowLength: number;
  /** Length of the last axis, along which top-1 agreement is taken (classes; the vocabulary of a sequence output). */
  readonly classes: number;
  /**
   * Share of positions whose argmax along the last axis agrees: one position per
   * sample for [N, classes] outputs, one per time step for [N, T, classes]; null
   * when the last axis has a single element.
   */
  readonly top1Agreement: number | null;
  /** Mean over samples of the cosine similarity of the rows. */
  readonly meanCosine: number;
  /** ‖actual − reference‖₂ / ‖reference‖₂ over every element seen. */
  readonly relativeL2: number;
  readonly maxAbsError: number;
}

/** Accumulates fidelity of one output against the reference, batch by batch. */
export class FidelityMeter {
  private samples = 0;
  private positions = 0;
  private agree = 0;
  private cosineSum = 0;
  private diff2 = 0;
  private ref2 = 0;
  private maxAbs = 0;
  private rowLength: number | undefined;
  private classes: number | undefined;

  /**
   * Adds `rows` samples: `actual` and `reference` hold rows × rowLength elements each.
   * `classes` is the length of the last axis (default: the whole row).
   */
  add(actual: Float32Array, reference: Float32Array, rows: number, classes?: number): void {
    if (actual.length !== reference.length) {
      throw new EdgevolveError('E_EVAL_REFERENCE_MISMATCH', `the output has ${actual.length} elements, the reference ${reference.length}`, {
        context: { actual: actual.length, reference: reference.length },
      });
    }
    if (rows === 0) return;
    const rowLength = actual.length / rows;
    if (!Number.isInteger(rowLength)) throw new EdgevolveError('E_INTERNAL', `${actual.length} elements do not split into ${rows} rows`);
    const axis = classes === undefined || classes < 1 || rowLength % classes !== 0 ? rowLength : classes;
    this.rowLength ??= rowLength;
    this.classes ??= axis;
    for (let s = 0; s < rows; s++) this.cosineSum += cosineSimilarity(actual, reference, s * rowLength, rowLength);
    for (let offset = 0; axis > 0 && offset < actual.length; offset += axis) {
      if (argmax(actual, offset, axis) === argmax(reference, offset, axis)) this.agree++;
      this.positions++;
    }
    const { diff2, ref2 } = squaredNorms(actual, reference, 0, actual.length);
    this.diff2 += diff2;
    this.ref2 += ref2;
    const maxAbs = maxAbsDiff(actual, reference, 0, actual.length);
    // NaN is sticky: once an output diverges into NaN, the maximum error is undefined.
    this.maxAbs = Number.isNaN(maxAbs) || Number.isNaN(this.maxAbs) ? Number.NaN : Math.max(this.maxAbs, maxAbs);
    this.samples += rows;
  }

  result(): FidelityResult {
    const n = this.samples;
    const classes = this.classes ?? 0;
    return {
      samples: n,
      rowLength: this.rowLength ?? 0,
      classes,
      top1Agreement: classes < 2 || this.positions === 0 ? null : this.agree / this.positions,
      meanCosine: n === 0 ? 1 : this.cosineSum / n,
      relativeL2: relativeFromNorms(this.diff2, this.ref2),
      maxAbsError: this.maxAbs,
    };
  }
}
