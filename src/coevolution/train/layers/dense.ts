import { gemmNN, gemmNT, gemmTN } from '../gemm.ts';
import type { Rng } from '../prng.ts';
import { makeParam, type Layer, type Param } from './layer.ts';

/**
 * A fully connected layer, y = x W^T + b with W stored [out, in]: the layout of ONNX
 * Gemm with transB=1 (and of PyTorch's Linear), so export copies W unchanged.
 */
export class Dense implements Layer {
  readonly kind = 'dense';
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly weight: Param;
  readonly bias: Param;
  readonly params: readonly Param[];
  private readonly out: Float32Array;
  private readonly dx: Float32Array;
  private readonly scratch: Float32Array;
  private input: Float32Array = new Float32Array(0);

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    maxBatch: number,
    rng: Rng,
    private readonly needInputGrad = true,
  ) {
    this.inputShape = [inFeatures];
    this.outputShape = [outFeatures];
    this.weight = makeParam('weight', [outFeatures, inFeatures], true);
    this.bias = makeParam('bias', [outFeatures], false);
    this.params = [this.weight, this.bias];
    // He initialisation keeps activations' variance steady through ReLU layers.
    const std = Math.sqrt(2 / inFeatures);
    for (let i = 0; i < this.weight.value.length; i++) this.weight.value[i] = rng.normal() * std;
    this.out = new Float32Array(maxBatch * outFeatures);
    this.dx = new Float32Array(needInputGrad ? maxBatch * inFeatures : 0);
    this.scratch = new Float32Array(Math.max(maxBatch * (inFeatures + outFeatures), inFeatures * outFeatures));
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const { inFeatures: nIn, outFeatures: nOut } = this;
    this.input = x;
    const y = this.out.subarray(0, batch * nOut);
    gemmNT(batch, nOut, nIn, x, this.weight.value, y, false);
    const b = this.bias.value;
    for (let s = 0; s < batch; s++) {
      const row = s * nOut;
      for (let o = 0; o < nOut; o++) y[row + o] = y[row + o]! + b[o]!;
    }
    return y;
  }

  backward(dy: Float32Array, batch: number): Float32Array {
    const { inFeatures: nIn, outFeatures: nOut } = this;
    // dW[out,in] = dy^T[out,N] x[N,in]
    gemmTN(nOut, nIn, batch, dy, this.input, this.weight.grad, false, this.scratch);
    const db = this.bias.grad;
    db.fill(0);
    for (let s = 0; s < batch; s++) {
      const row = s * nOut;
      for (let o = 0; o < nOut; o++) db[o] = db[o]! + dy[row + o]!;
    }
    if (!this.needInputGrad) return this.dx;
    // dx[N,in] = dy[N,out] W[out,in]
    const dx = this.dx.subarray(0, batch * nIn);
    gemmNN(batch, nIn, nOut, dy, this.weight.value, dx, false, this.scratch);
    return dx;
  }
}
