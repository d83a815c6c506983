import { gemmNN, gemmNT, gemmTN } from '../gemm.ts';
import type { Rng } from '../prng.ts';
import { makeParam, type Layer, type Param } from './layer.ts';

/**
 * A square 2-D convolution with stride 1 and equal zero padding on each side (ONNX Conv
 * with pads [p,p,p,p]), as im2col + GEMM: each sample's input is unrolled into a patch
 * matrix P[OH*OW, C*k*k] (one row per output pixel), then y[Cout, OH*OW] = W P^T with W
 * stored [Cout, C*k*k], the ONNX weight layout [Cout, C, k, k] flattened.
 * The patch matrices of the whole batch are kept for the weight gradient.
 */
export class Conv2d implements Layer {
  readonly kind = 'conv2d';
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly weight: Param;
  readonly bias: Param;
  readonly params: readonly Param[];
  readonly outHeight: number;
  readonly outWidth: number;
  private readonly patchSize: number;
  private readonly pixels: number;
  private readonly patches: Float32Array;
  private readonly out: Float32Array;
  private readonly dx: Float32Array;
  private readonly dPatches: Float32Array;
  private readonly scratch: Float32Array;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly height: number,
    readonly width: number,
    readonly kernel: number,
    readonly pad: number,
    maxBatch: number,
    rng: Rng,
    private readonly needInputGrad = true,
  ) {
    this.outHeight = height + 2 * pad - kernel + 1;
    this.outWidth = width + 2 * pad - kernel + 1;
    this.inputShape = [inChannels, height, width];
    this.outputShape = [outChannels, this.outHeight, this.outWidth];
    this.patchSize = inChannels * kernel * kernel;
    this.pixels = this.outHeight * this.outWidth;
    this.weight = makeParam('weight', [outChannels, inChannels, kernel, kernel], true);
    this.bias = makeParam('bias', [outChannels], false);
    this.params = [this.weight, this.bias];
    const std = Math.sqrt(2 / this.patchSize);
    for (let i = 0; i < this.weight.value.length; i++) this.weight.value[i] = rng.normal() * std;
    this.patches = new Float32Array(maxBatch * this.pixels * this.patchSize);
    this.out = new Float32Array(maxBatch * outChannels * this.pixels);
    this.dx = new Float32Array(needInputGrad ? maxBatch * inChannels * height * width : 0);
    this.dPatches = new Float32Array(needInputGrad ? this.pixels * this.patchSize : 0);
    this.scratch = new Float32Array(Math.max(
      this.pixels * this.patchSize, // gemmNN: P transposed
      (this.pixels + this.patchSize) * outChannels, // gemmTN: dy and W transposed
    ));
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const { outChannels, pixels, patchSize } = this;
    const inSize = this.inChannels * this.height * this.width;
    const outSize = outChannels * pixels;
    const b = this.bias.value;
    for (let s = 0; s < batch; s++) {
      const patches = this.patches.subarray(s * pixels * patchSize, (s + 1) * pixels * patchSize);
      this.im2col(x.subarray(s * inSize, (s + 1) * inSize), patches);
      const y = this.out.subarray(s * outSize, (s + 1) * outSize);
      gemmNT(outChannels, pixels, patchSize, this.weight.value, patches, y, false);
      for (let co = 0; co < outChannels; co++) {
        const bias = b[co]!;
        const row = co * pixels;
        for (let p = 0; p < pixels; p++) y[row + p] = y[row + p]! + bias;
      }
    }
    return this.out.subarray(0, batch * outSize);
  }

  backward(dy: Float32Array, batch: number): Float32Array {
    const { outChannels, pixels, patchSize } = this;
    const inSize = this.inChannels * this.height * this.width;
    const outSize = outChannels * pixels;
    const db = this.bias.grad;
    db.fill(0);
    for (let s = 0; s < batch; s++) {
      const dys = dy.subarray(s * outSize, (s + 1) * outSize);
      const patches = this.patches.subarray(s * pixels * patchSize, (s + 1) * pixels * patchSize);
      // dW[Cout, C*k*k] += dy_s[Cout, OHW] P_s[OHW, C*k*k]
      gemmNN(outChannels, patchSize, pixels, dys, patches, this.weight.grad, s > 0, this.scratch);
      for (let co = 0; co < outChannels; co++) {
        const row = co * pixels;
        let sum = 0;
        for (let p = 0; p < pixels; p++) sum += dys[row + p]!;
        db[co] = db[co]! + sum;
      }
      if (this.needInputGrad) {
        // dP_s[OHW, C*k*k] = dy_s^T[OHW, Cout] W[Cout, C*k*k]
        gemmTN(pixels, patchSize, outChannels, dys, this.weight.value, this.dPatches, false, this.scratch);
        this.col2im(this.dPatches, this.dx.subarray(s * inSize, (s + 1) * inSize));
      }
    }
    return this.needInputGrad ? this.dx.subarray(0, batch * inSize) : this.dx;
  }

  private im2col(x: Float32Array, patches: Float32Array): void {
    const { inChannels, height, width, kernel, pad, outHeight, outWidth } = this;
    let o = 0;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let c = 0; c < inChannels; c++) {
          const plane = c * height * width;
          for (let ky = 0; ky < kernel; ky++) {
            const iy = oy + ky - pad;
            const inside = iy >= 0 && iy < height;
            const row = plane + iy * width;
            for (let kx = 0; kx < kernel; kx++) {
              const ix = ox + kx - pad;
              patches[o++] = inside && ix >= 0 && ix < width ? x[row + ix]! : 0;
            }
          }
        }
      }
    }
  }

  private col2im(dPatches: Float32Array, dx: Float32Array): void {
    const { inChannels, height, width, kernel, pad, outHeight, outWidth } = this;
    dx.fill(0);
    let o = 0;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let c = 0; c < inChannels; c++) {
          const plane = c * height * width;
          for (let ky = 0; ky < kernel; ky++) {
            const iy = oy + ky - pad;
            const inside = iy >= 0 && iy < height;
            const row = plane + iy * width;
            for (let kx = 0; kx < kernel; kx++) {
              const ix = ox + kx - pad;
              if (inside && ix >= 0 && ix < width) dx[row + ix] = dx[row + ix]! + dPatches[o]!;
              o++;
            }
          }
        }
      }
    }
  }
}
