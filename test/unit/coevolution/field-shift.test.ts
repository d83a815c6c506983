import { describe, expect, it } from 'vitest';
import { applyFieldShift } from '../../../src/coevolution/index.ts';
import { codeOf } from '../../helpers/error-code.ts';

const IDENTITY = { seed: 1, maxRotationDeg: 0, maxTranslate: 0, minScale: 1, maxScale: 1, noiseStd: 0 };

function square(): Float32Array {
  const img = new Float32Array(8 * 8);
  for (let y = 2; y < 5; y++) for (let x = 2; x < 5; x++) img[y * 8 + x] = 1;
  return img;
}

describe('applyFieldShift', () => {
  it('is the identity with no rotation, translation, scaling or noise', () => {
    const img = square();
    expect(Array.from(applyFieldShift({ pixels: img, count: 1, height: 8, width: 8 }, IDENTITY))).toEqual(Array.from(img));
  });

  it('gives the same bytes for the same seed and different ones for another seed', () => {
    const batch = { pixels: new Float32Array([...square(), ...square()]), count: 2, height: 8, width: 8 };
    const shift = { seed: 5, maxRotationDeg: 20, maxTranslate: 2, minScale: 0.9, maxScale: 1.1, noiseStd: 0.1 };
    const a = applyFieldShift(batch, shift);
    expect(Array.from(applyFieldShift(batch, shift))).toEqual(Array.from(a));
    expect(Array.from(applyFieldShift(batch, { ...shift, seed: 6 }))).not.toEqual(Array.from(a));
    for (const v of a) expect(v >= 0 && v <= 1).toBe(true);
  });

  it('translates the image and keeps its mass while it stays inside the frame', () => {
    const out = applyFieldShift({ pixels: square(), count: 1, height: 8, width: 8 }, { ...IDENTITY, maxTranslate: 1 });
    const mass = out.reduce((a, b) => a + b, 0);
    expect(mass).toBeCloseTo(9, 3);
    expect(Array.from(out)).not.toEqual(Array.from(square()));
  });

  it('rejects pixels that are not count x height x width with E_COEVO_INVALID', () => {
    expect(codeOf(() => applyFieldShift({ pixels: new Float32Array(10), count: 1, height: 8, width: 8 }, IDENTITY))).toBe('E_COEVO_INVALID');
  });
});
