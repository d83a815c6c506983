import { describe, expect, it } from 'vitest';
import { detectorImages } from './quantize-ocr-images.ts';

describe('text-like pages for the PaddleOCR benchmarks', () => {
  it('are the same pixels for the same seed, and different for another seed', () => {
    const a = detectorImages(2, 64, 96, 7);
    const b = detectorImages(2, 64, 96, 7);
    const c = detectorImages(2, 64, 96, 8);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
});
