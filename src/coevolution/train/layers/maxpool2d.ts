import type { Layer, Param } from './layer.ts';

/** Max pooling over non-overlapping size x size windows (ONNX MaxPool, strides = kernel, no padding). */
export class MaxPool2d implements Layer {
  readonly kind = 'maxpool2d';
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly params: readonly Param[] = [];
  private readonly outHeight: number;
  private readonly outWidth: number;
  private readonly out: Float32Array;
  /** For each output element, the index of the winning input element within the batch. */
  private readonly argmax: Int32Array;
  private readonly dx: Float32Array;

  constructor(
    readonly channels: number,
    readonly height: number,
    readonly width: number,
    readonly size: number,
    maxBatch: number,
  ) {
    this.outHeight = Math.floor(height / size);
    this.outWidth = Math.floor(width / size);
    this.inputShape = [channels, height, width];
    this.outputShape = [channels, this.outHeight, this.outWidth];
    const outCount = maxBatch * channels * this.outHeight * this.outWidth;
    this.out = new Float32Array(outCount);
    this.argmax = new Int32Array(outCount);
    this.dx = new Float32Array(maxBatch * channels * height * width);
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const { height, width, size, outHeight, outWidth } = this;
    const planes = batch * this.channels;
    let o = 0;
    for (let plane = 0; plane < planes; plane++) {
      const base = plane * height * width;
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          let best = -Infinity;
          let bestIndex = 0;
          for (let ky = 0; ky < size; ky++) {
            const row = base + (oy * size + ky) * width + ox * size;
            for (let kx = 0; kx < size; kx++) {
              const v = x[row + kx]!;
              // Strictly greater: ties go to the first element, as in onnxruntime.
              if (v > best) {
                best = v;
                bestIndex = row + kx;
              }
            }
          }
          this.out[o] = best;
          this.argmax[o] = bestIndex;
          o++;
        }
      }
    }
    return this.out.subarray(0, o);
  }

  backward(dy: Float32Array, batch: number): Float32Array {
    const dx = this.dx.subarray(0, batch * this.channels * this.height * this.width);
    dx.fill(0);
    const outCount = batch * this.channels * this.outHeight * this.outWidth;
    for (let o = 0; o < outCount; o++) {
      const from = this.argmax[o]!;
      dx[from] = dx[from]! + dy[o]!;
    }
    return dx;
  }
}
