import { describe, expect, it } from 'vitest';
import { DataType, type TensorValue } from '../../../../src/onnx/index.ts';
import { scoreAgreement } from '../../../../src/runtime/serving/index.ts';

const f32 = (dims: number[], values: number[]): TensorValue => ({ dataType: DataType.FLOAT, dims, data: Float32Array.from(values) });
const i64 = (values: bigint[]): TensorValue => ({ dataType: DataType.INT64, dims: [values.length], data: BigInt64Array.from(values) });

describe('scoreAgreement: how far a shadow answer agrees with the live one', () => {
  it('scores a classifier [N, C] by the share of rows whose top-1 class agrees, whatever the logits', () => {
    const live = { logits: f32([4, 3], [1, 0, 0, 0, 5, 1, 0, 0, 2, 3, 2, 1]) };
    // Rows 0, 1 and 3 agree (other values, same argmax); row 2 picks class 0 instead of 2.
    const shadow = { logits: f32([4, 3], [9, 1, 1, 0, 2, 1, 7, 0, 2, 8, 0, 0]) };
    expect(scoreAgreement(live, shadow)).toEqual({ score: 0.75, metric: 'top1' });
  });

  it('scores other float outputs by cosine similarity (a scaled answer agrees fully, an opposite one not at all)', () => {
    const live = { emb: f32([1, 1, 4], [1, 2, 3, 4]) };
    expect(scoreAgreement(live, { emb: f32([1, 1, 4], [2, 4, 6, 8]) }).score).toBeCloseTo(1, 6);
    expect(scoreAgreement(live, { emb: f32([1, 1, 4], [-1, -2, -3, -4]) })).toEqual({ score: 0, metric: 'cosine' });
    expect(scoreAgreement({ y: f32([2], [1, 0]) }, { y: f32([2], [1, 1]) }).score).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('scores integer outputs by equality', () => {
    expect(scoreAgreement({ label: i64([3n, 1n]) }, { label: i64([3n, 1n]) })).toEqual({ score: 1, metric: 'exact' });
    expect(scoreAgreement({ label: i64([3n, 1n]) }, { label: i64([3n, 2n]) })).toEqual({ score: 0, metric: 'exact' });
  });

  it('scores 0 for an output the candidate lacks or returns with another shape, and a request by its worst output', () => {
    const live = { logits: f32([1, 2], [0, 1]), label: i64([1n]) };
    expect(scoreAgreement(live, { logits: f32([1, 2], [0, 1]) }).score).toBe(0);
    expect(scoreAgreement(live, { logits: f32([2, 1], [0, 1]), label: i64([1n]) })).toEqual({ score: 0, metric: 'top1' });
    expect(scoreAgreement(live, { logits: f32([1, 2], [0, 1]), label: i64([1n]) }).score).toBe(1);
  });
});
