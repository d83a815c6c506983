/**
 * Copies one image [C,H,W] into `out`, translated by (dy, dx) whole pixels with zero
 * fill: the cheap augmentation that stops MLPs memorising where strokes sit, which is what
 * limits them on a training set of a few thousand digits.
 */
export function shiftImage(
  input: Float32Array, out: Float32Array,
  channels: number, height: number, width: number,
  dy: number, dx: number,
): void {
  out.fill(0);
  const y0 = Math.max(0, dy);
  const y1 = Math.min(height, height + dy);
  const x0 = Math.max(0, dx);
  const x1 = Math.min(width, width + dx);
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    for (let y = y0; y < y1; y++) {
      const to = plane + y * width;
      const from = plane + (y - dy) * width - dx;
      for (let x = x0; x < x1; x++) out[to + x] = input[from + x]!;
    }
  }
}

