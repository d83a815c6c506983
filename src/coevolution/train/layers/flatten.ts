import { sizeOf, type Layer, type Param } from './layer.ts';

/** [C,H,W] per sample to [C*H*W]: row-major data is already in that order, so a no-op on the values. */
export class Flatten implements Layer {
  readonly kind = 'flatten';
  readonly outputShape: readonly number[];
  readonly params: readonly Param[] = [];

  constructor(readonly inputShape: readonly number[]) {
    this.outputShape = [sizeOf(inputShape)];
  }

  forward(x: Float32Array): Float32Array {
    return x;
  }

  backward(dy: Float32Array): Float32Array {
    return dy;
  }
}
