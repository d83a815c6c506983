/** A trainable tensor: its values, the gradient the last backward pass left, and its shape. */
export interface Param {
  /** Role inside its layer (`weight`, `bias`, `scale`...), used to name ONNX initializers. */
  readonly role: string;
  readonly shape: readonly number[];
  readonly value: Float32Array;
  readonly grad: Float32Array;
  /** Whether weight decay applies (weights yes; biases and normalisation parameters no). */
  readonly decay: boolean;
}

/**
 * One layer of a sequential network, on batches laid out row-major with the batch first.
 * Buffers are allocated once for `maxBatch` samples at construction; forward and backward
 * return views into them, valid until the layer runs again. `backward` must follow the
 * `forward` of the same batch, overwrites each param's `grad`, and returns the gradient
 * with respect to the input (an empty array when the layer was built not to need it).
 */
export interface Layer {
  readonly kind: LayerKind;
  /** Per-sample shapes, without the batch axis. */
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly params: readonly Param[];
  forward(x: Float32Array, batch: number, training: boolean): Float32Array;
  backward(dy: Float32Array, batch: number): Float32Array;
}

export type LayerKind = 'dense' | 'relu' | 'conv2d' | 'batchnorm2d' | 'maxpool2d' | 'flatten';

export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

export function makeParam(role: string, shape: readonly number[], decay: boolean): Param {
  const size = sizeOf(shape);
  return { role, shape: [...shape], value: new Float32Array(size), grad: new Float32Array(size), decay };
}
