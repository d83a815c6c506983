import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { AccuracyMeter, argmax, cosineSimilarity, FidelityMeter, inTopK, maxAbsError, relativeL2 } from '../../../src/planner/metrics.ts';

const f = (...values: number[]): Float32Array => Float32Array.from(values);

describe('argmax and inTopK', () => {
  it('argmax picks the first of tied maxima, as NumPy does', () => {
    expect(argmax(f(1, 3, 3, 2))).toBe(1);
  });

  it('argmax works on a row inside a larger array', () => {
    expect(argmax(f(9, 9, 0, 1, 5, 2), 2, 4)).toBe(2);
  });

  it('argmax ignores NaN and handles a row of -Infinity', () => {
    expect(argmax(f(Number.NaN, 1, 2))).toBe(2);
    expect(argmax(f(-Infinity, -Infinity))).toBe(0);
  });

  it('inTopK ranks ties by index so that top-1 agrees with argmax', () => {
    const row = f(0.1, 0.5, 0.5, 0.2);
    expect(inTopK(row, 0, 4, 1, 1)).toBe(true);
    expect(inTopK(row, 0, 4, 2, 1)).toBe(false);
    expect(inTopK(row, 0, 4, 2, 2)).toBe(true);
    expect(inTopK(row, 0, 4, 0, 3)).toBe(false);
    expect(inTopK(row, 0, 4, 0, 4)).toBe(true);
  });

  it('inTopK never counts a NaN score', () => {
    expect(inTopK(f(Number.NaN, 0), 0, 2, 0, 2)).toBe(false);
  });
});

describe('cosineSimilarity, relativeL2, maxAbsError', () => {
  it('cosine of [1,0] and [1,1] is 1/sqrt(2)', () => {
    expect(cosineSimilarity(f(1, 0), f(1, 1))).toBeCloseTo(Math.SQRT1_2, 7);
  });

  it('cosine of opposite vectors is -1, of a row with itself 1', () => {
    expect(cosineSimilarity(f(1, -2, 3), f(-1, 2, -3))).toBeCloseTo(-1, 7);
    expect(cosineSimilarity(f(0.3, 7, -2), f(0.3, 7, -2))).toBeCloseTo(1, 7);
  });

  it('cosine is 1 for two zero rows and 0 when only one is zero', () => {
    expect(cosineSimilarity(f(0, 0), f(0, 0))).toBe(1);
    expect(cosineSimilarity(f(0, 0), f(1, 0))).toBe(0);
  });

  it('relative L2 of [3,4] against [2,3] is ‖[1,1]‖ / ‖[2,3]‖', () => {
    // actual [3,4], reference [2,3]: diff [1,1], ‖diff‖ = √2, ‖ref‖ = √13.
    expect(relativeL2(f(3, 4), f(2, 3))).toBeCloseTo(Math.sqrt(2 / 13), 7);
    expect(relativeL2(f(2, 3), f(2, 3))).toBe(0);
    expect(relativeL2(f(1), f(0))).toBe(Number.POSITIVE_INFINITY);
  });

  it('max abs error is the largest |difference|; NaN against a number is NaN, NaN against NaN is equal', () => {
    expect(maxAbsError(f(1, -5, 2), f(1.5, -2, 2))).toBe(3);
    expect(maxAbsError(f(1, Number.NaN), f(1, 2))).toBeNaN();
    expect(maxAbsError(f(1, Number.NaN), f(1, Number.NaN))).toBe(0);
    expect(maxAbsError(f(Infinity), f(Infinity))).toBe(0);
  });
});

describe('AccuracyMeter', () => {
  it('scores top-1 and top-5 over batches of 6-class rows', () => {
    const meter = new AccuracyMeter();
    // Row 0: label 2 is best. Row 1: label 0 is 6th of 6 (misses top-5). Row 2: label 5 is 2nd.
    meter.add(f(0, 1, 9, 0, 0, 0, /**/ 0, 5, 4, 3, 2, 1, /**/ 0, 0, 0, 0, 9, 8), Int32Array.from([2, 0, 5]));
    // Row 3: label 3 is 5th (top-5 hit, top-1 miss).
    meter.add(f(6, 5, 4, 2, 3, 1), Int32Array.from([3]));
    expect(meter.result()).toEqual({ samples: 4, classes: 6, top1: 0.25, top5: 0.75 });
  });

  it('reports top-5 as null when there are 5 classes or fewer', () => {
    const meter = new AccuracyMeter();
    meter.add(f(0.9, 0.1, 0.2, 0.8), Int32Array.from([0, 0]));
    expect(meter.result()).toEqual({ samples: 2, classes: 2, top1: 0.5, top5: null });
  });

  it('takes a one-value row as the predicted class id', () => {
    const meter = new AccuracyMeter();
    meter.add(f(3, 7, 1), Int32Array.from([3, 2, 1]));
    expect(meter.result().top1).toBeCloseTo(2 / 3, 7);
  });

  it('rejects a label outside the classes with E_EVAL_LABEL_RANGE', () => {
    const meter = new AccuracyMeter();
    let error: unknown;
    try {
      meter.add(f(0, 1, 0, 1), Int32Array.from([0, 2]));
    } catch (err) {
      error = err;
    }
    expect(isEdgevolveError(error, 'E_EVAL_LABEL_RANGE')).toBe(true);
  });
});

describe('FidelityMeter', () => {
  it('is perfect against itself', () => {
    const meter = new FidelityMeter();
    const out = f(0.1, 0.7, 0.2, 0.5, 0.25, 0.25);
    meter.add(out, out.slice(), 2);
    expect(meter.result()).toEqual({ samples: 2, rowLength: 3, classes: 3, top1Agreement: 1, meanCosine: 1, relativeL2: 0, maxAbsError: 0 });
  });

  it('accumulates agreement, mean cosine, relative L2 and max error over batches', () => {
    const meter = new FidelityMeter();
    // Sample 0: argmax 0 vs 0, cosine([1,0],[1,0]) = 1.  Sample 1: argmax 1 vs 0, cosine([0,1],[1,1]) = 1/√2.
    meter.add(f(1, 0, 0, 1), f(1, 0, 1, 1), 2);
    // Sample 2: argmax 1 vs 1, cosine([0,2],[0,1]) = 1.
    meter.add(f(0, 2), f(0, 1), 1);
    const result = meter.result();
    expect(result.samples).toBe(3);
    expect(result.top1Agreement).toBeCloseTo(2 / 3, 7);
    expect(result.meanCosine).toBeCloseTo((1 + Math.SQRT1_2 + 1) / 3, 7);
    // diff: [0,0,-1,0,0,1] → ‖diff‖² = 2; ref: [1,0,1,1,0,1] → ‖ref‖² = 4.
    expect(result.relativeL2).toBeCloseTo(Math.sqrt(2 / 4), 7);
    expect(result.maxAbsError).toBe(1);
  });

  it('takes top-1 agreement per position along the last axis of a sequence output', () => {
    const meter = new FidelityMeter();
    // One sample of 3 time steps × 2 classes: steps 0 and 2 agree, step 1 does not.
    meter.add(f(0.9, 0.1, 0.2, 0.8, 0.3, 0.7), f(0.8, 0.2, 0.6, 0.4, 0.1, 0.9), 1, 2);
    const result = meter.result();
    expect([result.samples, result.rowLength, result.classes]).toEqual([1, 6, 2]);
    expect(result.top1Agreement).toBeCloseTo(2 / 3, 7);
  });

  it('reports top-1 agreement as null for one-element rows', () => {
    const meter = new FidelityMeter();
    meter.add(f(1, 2), f(1, 3), 2);
    expect(meter.result().top1Agreement).toBeNull();
  });

  it('keeps NaN in the max error once an output turns NaN', () => {
    const meter = new FidelityMeter();
    meter.add(f(Number.NaN), f(1), 1);
    meter.add(f(5), f(1), 1);
    expect(meter.result().maxAbsError).toBeNaN();
  });

  it('rejects outputs of different sizes with E_EVAL_REFERENCE_MISMATCH', () => {
    expect(() => new FidelityMeter().add(f(1, 2), f(1), 1)).toThrow(/2 elements, the reference 1/);
  });
});
