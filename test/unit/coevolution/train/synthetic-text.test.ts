import { describe, expect, it } from 'vitest';
import { FONT_CHARACTERS, glyphMask } from '../../../../src/coevolution/train/bitmap-font.ts';
import { ctcGreedyDecode, paddleOcrAlphabet } from '../../../../src/coevolution/train/ctc.ts';
import { Rng } from '../../../../src/coevolution/train/prng.ts';
import { makeClsInputs, makeDetInputs, makeRecInputs, randomText } from '../../../../src/coevolution/train/synthetic-text.ts';

describe('synthetic OCR inputs', () => {
  it('the same seed renders the same pixels and texts; another seed different ones', () => {
    const a = makeRecInputs(1, 3, 96);
    const b = makeRecInputs(1, 3, 96);
    expect(a.texts).toEqual(b.texts);
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(b.data.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(makeRecInputs(2, 3, 96).data.buffer))).not.toBe(0);
  });

  it('recogniser inputs are [N,3,48,W] in [-1,1] with the unused right part padded with 0', () => {
    const rec = makeRecInputs(3, 4, 200);
    expect(rec.shape).toEqual([4, 3, 48, 200]);
    expect(rec.data.every((v) => v >= -1 && v <= 1)).toBe(true);
    // Short lines leave the right edge as padding: the last column of every sample is 0.
    for (let s = 0; s < 4; s++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 48; y++) expect(rec.data[((s * 3 + c) * 48 + y) * 200 + 199]).toBe(0);
      }
    }
  });

  it('detector inputs carry ImageNet normalisation and at least one text box per image', () => {
    const det = makeDetInputs(4, 2, 64, 96);
    expect(det.shape).toEqual([2, 3, 64, 96]);
    // (0 - 0.485) / 0.229 and (1 - 0.406) / 0.225 bound the normalised values.
    expect(det.data.every((v) => v >= -2.12 && v <= 2.65)).toBe(true);
    expect(det.boxes.every((boxes) => boxes.length > 0)).toBe(true);

  });

  it('classifier inputs alternate upright (0) and turned (1) labels', () => {
    const cls = makeClsInputs(5, 4);
    expect(cls.shape).toEqual([4, 3, 48, 192]);
    expect([...cls.labels]).toEqual([0, 1, 0, 1]);
  });

  it('random text uses only characters the font has and respects the length limit', () => {
    const rng = new Rng(6);
    for (let i = 0; i < 100; i++) {
      const text = randomText(rng, 10);
      expect(text.length).toBeGreaterThan(0);
      expect(text.length).toBeLessThanOrEqual(10);
      for (const ch of text) expect(FONT_CHARACTERS).toContain(ch);
    }
    expect(() => glyphMask('é')).toThrow(/the bitmap font has no glyph for "é"/);
  });

  it('greedy CTC decoding merges repeats and drops blanks', () => {
    const alphabet = paddleOcrAlphabet('A\nB\n');
    expect(alphabet).toEqual(['blank', 'A', 'B', ' ']);
    // Steps: A A blank A B B -> "AAB"
    const best = [1, 1, 0, 1, 2, 2];
    const scores = new Float32Array(best.length * 4);
    best.forEach((c, t) => (scores[t * 4 + c] = 1));
    expect(ctcGreedyDecode(scores, [1, best.length, 4], alphabet)).toEqual(['AAB']);
  });
});
