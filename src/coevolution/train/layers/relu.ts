import { sizeOf, type Layer, type Param } from './layer.ts';

/** y = max(0, x), elementwise. */
export class Relu implements Layer {
  readonly kind = 'relu';
  readonly outputShape: readonly number[];
  readonly params: readonly Param[] = [];
  private readonly size: number;
  private readonly out: Float32Array;
  private readonly dx: Float32Array;

  constructor(readonly inputShape: readonly number[], maxBatch: number) {
    this.outputShape = inputShape;
    this.size = sizeOf(inputShape);
    this.out = new Float32Array(maxBatch * this.size);
    this.dx = new Float32Array(maxBatch * this.size);
  }

  forward(x: Float32Array, batch: number): Float32Array {
    const y = this.out.subarray(0, batch * this.size);
    for (let i = 0; i < y.length; i++) {
      const v = x[i]!;
      y[i] = v > 0 ? v : 0;
    }
    return y;
  }

  backward(dy: Float32Array, batch: number): Float32Array {
    const y = this.out;
    const dx = this.dx.subarray(0, batch * this.size);
    for (let i = 0; i < dx.length; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
    return dx;
  }
}
