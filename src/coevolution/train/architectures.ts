import { BatchNorm2d } from './layers/batchnorm2d.ts';
import { Conv2d } from './layers/conv2d.ts';
import { Dense } from './layers/dense.ts';
import { Flatten } from './layers/flatten.ts';
import type { Layer } from './layers/layer.ts';
import { MaxPool2d } from './layers/maxpool2d.ts';
import { Relu } from './layers/relu.ts';
import { Sequential } from './network.ts';
import { Rng } from './prng.ts';

export interface BuildOptions {
  /** Seeds weight initialisation. */
  readonly seed: number;
  /** Largest batch the network will see (buffers are sized for it). */
  readonly maxBatch: number;
}

/**
 * Flatten, then Dense+Relu per hidden width, then a Dense to `classes` logits.
 * Images go in as [C,H,W] so that every model of a family reads the same data set.
 */
export function buildMlp(
  inputShape: readonly number[], hidden: readonly number[], classes: number, options: BuildOptions,
): Sequential {
  const rng = new Rng(options.seed);
  const flatten = new Flatten(inputShape);
  const layers: Layer[] = [flatten];
  let width = flatten.outputShape[0]!;
  hidden.forEach((units, index) => {
    // The first Dense needs no input gradient: nothing trainable sits before it.
    layers.push(new Dense(width, units, options.maxBatch, rng, index > 0));
    layers.push(new Relu([units], options.maxBatch));
    width = units;
  });
  layers.push(new Dense(width, classes, options.maxBatch, rng, hidden.length > 0));
  return new Sequential(layers, options.maxBatch);
}

/** One Conv-BatchNormalization-Relu-MaxPool stage. */
export interface ConvStage {
  readonly channels: number;
  readonly kernel: number;
  readonly pool: number;
}

/**
 * Conv(same padding)-BatchNormalization-Relu-MaxPool per stage, then Flatten, optional
 * hidden Dense+Relu layers, and a Dense to `classes` logits.
 */
export function buildCnn(
  inputShape: readonly [number, number, number],
  stages: readonly ConvStage[],
  hidden: readonly number[],
  classes: number,
  options: BuildOptions,
): Sequential {
  const rng = new Rng(options.seed);
  const { maxBatch } = options;
  const layers: Layer[] = [];
  let [channels, height, width] = inputShape;
  stages.forEach((stage, index) => {
    const conv = new Conv2d(channels, stage.channels, height, width, stage.kernel, (stage.kernel - 1) / 2, maxBatch, rng, index > 0);
    layers.push(conv);
    layers.push(new BatchNorm2d(stage.channels, height, width, maxBatch));
    layers.push(new Relu(conv.outputShape, maxBatch));
    const pool = new MaxPool2d(stage.channels, height, width, stage.pool, maxBatch);
    layers.push(pool);
    [channels, height, width] = pool.outputShape as [number, number, number];
  });
  const flatten = new Flatten([channels, height, width]);
  layers.push(flatten);
  let features = flatten.outputShape[0]!;
  for (const units of hidden) {
    layers.push(new Dense(features, units, maxBatch, rng));
    layers.push(new Relu([units], maxBatch));
    features = units;
  }
  layers.push(new Dense(features, classes, maxBatch, rng));
  return new Sequential(layers, maxBatch);
}
