import { makeParam, type Layer, type Param } from './layer.ts';

/**
 * Batch normalisation over N, H, W per channel (ONNX BatchNormalization, opset 15+).
 * Training normalises with the batch's statistics and updates running estimates
 * (exponential average, momentum 0.1, unbiased variance: PyTorch's convention); inference
 * uses the running estimates, which the ONNX export carries as `input_mean`/`input_var`.
 */
export class BatchNorm2d implements Layer {
  readonly kind = 'batchnorm2d';
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly scale: Param;
  readonly shift: Param;
  readonly params: readonly Param[];
  readonly runningMean: Float32Array;
  readonly runningVar: Float32Array;
  readonly epsilon = 1e-5;
  readonly momentum = 0.1;
  private readonly plane: number;
  private readonly out: Float32Array;
  private readonly normalized: Float32Array;
  private readonly dx: Float32Array;
  private readonly invStd: Float64Array;

  constructor(readonly channels: number, height: number, width: number, maxBatch: number) {
    this.inputShape = [channels, height, width];
    this.outputShape = this.inputShape;
    this.plane = height * width;
    this.scale = makeParam('scale', [channels], false);
    this.shift = makeParam('bias', [channels], false);
    this.scale.value.fill(1);
    this.params = [this.scale, this.shift];
    this.runningMean = new Float32Array(channels);
    this.runningVar = new Float32Array(channels).fill(1);
    const size = maxBatch * channels * this.plane;
    this.out = new Float32Array(size);
    this.normalized = new Float32Array(size);
    this.dx = new Float32Array(size);
    this.invStd = new Float64Array(channels);
  }

  forward(x: Float32Array, batch: number, training: boolean): Float32Array {
    const { channels, plane } = this;
    const y = this.out.subarray(0, batch * channels * plane);
    const count = batch * plane;
    for (let c = 0; c < channels; c++) {
      let mean: number;
      let variance: number;
      if (training) {
        let sum = 0;
        for (let s = 0; s < batch; s++) {
          const base = (s * channels + c) * plane;
          for (let p = 0; p < plane; p++) sum += x[base + p]!;
        }
        mean = sum / count;
        let squares = 0;
        for (let s = 0; s < batch; s++) {
          const base = (s * channels + c) * plane;
          for (let p = 0; p < plane; p++) {
            const d = x[base + p]! - mean;
            squares += d * d;
          }
        }
        variance = squares / count;
        const unbiased = count > 1 ? squares / (count - 1) : variance;
        this.runningMean[c] = (1 - this.momentum) * this.runningMean[c]! + this.momentum * mean;
        this.runningVar[c] = (1 - this.momentum) * this.runningVar[c]! + this.momentum * unbiased;
      } else {
        mean = this.runningMean[c]!;
        variance = this.runningVar[c]!;
      }
      const invStd = 1 / Math.sqrt(variance + this.epsilon);
      this.invStd[c] = invStd;
      const gamma = this.scale.value[c]!;
      const beta = this.shift.value[c]!;
      for (let s = 0; s < batch; s++) {
        const base = (s * channels + c) * plane;
        for (let p = 0; p < plane; p++) {
          const xhat = (x[base + p]! - mean) * invStd;
          this.normalized[base + p] = xhat;
          y[base + p] = gamma * xhat + beta;
        }
      }
    }
    return y;
  }

  /** Gradient of the training-mode forward (batch statistics depend on the input too). */
  backward(dy: Float32Array, batch: number): Float32Array {
    const { channels, plane } = this;
    const dx = this.dx.subarray(0, batch * channels * plane);
    const count = batch * plane;
    for (let c = 0; c < channels; c++) {
      let sumDy = 0;
      let sumDyXhat = 0;
      for (let s = 0; s < batch; s++) {
        const base = (s * channels + c) * plane;
        for (let p = 0; p < plane; p++) {
          const g = dy[base + p]!;
          sumDy += g;
          sumDyXhat += g * this.normalized[base + p]!;
        }
      }
      this.shift.grad[c] = sumDy;
      this.scale.grad[c] = sumDyXhat;
      const k = (this.scale.value[c]! * this.invStd[c]!) / count;
      for (let s = 0; s < batch; s++) {
        const base = (s * channels + c) * plane;
        for (let p = 0; p < plane; p++) {
          dx[base + p] = k * (count * dy[base + p]! - sumDy - this.normalized[base + p]! * sumDyXhat);
        }
      }
    }
    return dx;
  }
}
