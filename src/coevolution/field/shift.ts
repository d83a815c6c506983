import { uniform01 } from '../../data/prng.ts';
import { EdgevolveError } from '../../errors/index.ts';

/**
 * How field data differs from what the models were trained on. Each image gets its own
 * rotation, translation and scale drawn uniformly from these ranges, then additive
 * Gaussian noise, clamped to [0, 1]: a device whose camera is mounted askew, further away
 * and in a noisier light than the training pictures.
 */
export interface FieldShift {
  readonly seed: number;
  /** Rotation in degrees, uniform in [-maxRotationDeg, maxRotationDeg]. */
  readonly maxRotationDeg: number;
  /** Translation in pixels per axis, uniform in [-maxTranslate, maxTranslate] (sub-pixel, bilinear). */
  readonly maxTranslate: number;
  /** Scale uniform in [minScale, maxScale] about the image centre. */
  readonly minScale: number;
  readonly maxScale: number;
  /** Standard deviation of the additive noise, in units of the [0, 1] pixel range. */
  readonly noiseStd: number;
}

/** Images stored back to back, `count` of [height, width] (one channel). */
export interface ImageBatch {
  readonly pixels: Float32Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
}

/**
 * The shifted copy of `images`: deterministic in `shift.seed` (src/data/prng.ts), so every
 * run, device and test sees the same field data. Pixels outside the source read as 0.
 */
export function applyFieldShift(images: ImageBatch, shift: FieldShift): Float32Array {
  const { count, height, width, pixels } = images;
  const size = height * width;
  if (pixels.length !== count * size) {
    throw new EdgevolveError('E_COEVO_INVALID', `${pixels.length} pixels are not ${count} images of ${height}x${width}`);
  }
  if (shift.minScale <= 0 || shift.maxScale < shift.minScale) {
    throw new EdgevolveError('E_COEVO_INVALID', `scale range [${shift.minScale}, ${shift.maxScale}] must be positive and ordered`);
  }
  const uniform = uniform01(shift.seed);
  const between = (lo: number, hi: number): number => lo + (hi - lo) * uniform();
  const out = new Float32Array(pixels.length);
  const cy = (height - 1) / 2;
  const cx = (width - 1) / 2;
  for (let n = 0; n < count; n++) {
    const angle = (between(-shift.maxRotationDeg, shift.maxRotationDeg) * Math.PI) / 180;
    const ty = between(-shift.maxTranslate, shift.maxTranslate);
    const tx = between(-shift.maxTranslate, shift.maxTranslate);
    const scale = between(shift.minScale, shift.maxScale);
    // Inverse mapping: for each output pixel, where it comes from in the source.
    const cos = Math.cos(angle) / scale;
    const sin = Math.sin(angle) / scale;
    const src = pixels.subarray(n * size, (n + 1) * size);
    const dst = out.subarray(n * size, (n + 1) * size);
    for (let y = 0; y < height; y++) {
      const dy = y - cy - ty;
      for (let x = 0; x < width; x++) {
        const dx = x - cx - tx;
        const sx = cos * dx + sin * dy + cx;
        const sy = -sin * dx + cos * dy + cy;
        dst[y * width + x] = bilinear(src, height, width, sy, sx);
      }
    }
    if (shift.noiseStd > 0) {
      for (let i = 0; i < size; i += 2) {
        // Box–Muller: two normal deviates per pair of uniforms.
        const radius = Math.sqrt(-2 * Math.log(1 - uniform())) * shift.noiseStd;
        const theta = 2 * Math.PI * uniform();
        dst[i] = clamp01(dst[i]! + radius * Math.cos(theta));
        if (i + 1 < size) dst[i + 1] = clamp01(dst[i + 1]! + radius * Math.sin(theta));
      }
    }
  }
  return out;
}

function bilinear(src: Float32Array, height: number, width: number, y: number, x: number): number {
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const fy = y - y0;
  const fx = x - x0;
  const at = (yy: number, xx: number): number => (yy < 0 || yy >= height || xx < 0 || xx >= width ? 0 : src[yy * width + xx]!);
  return (
    (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
    fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
  );
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
