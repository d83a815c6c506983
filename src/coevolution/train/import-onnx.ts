import { decodeModel, tensorDims, tensorToFloat32, type ModelProto, type TensorProto } from '../../onnx/index.ts';
import { Dense } from './layers/dense.ts';
import { Flatten } from './layers/flatten.ts';
import type { Layer } from './layers/layer.ts';
import { Relu } from './layers/relu.ts';
import { Sequential } from './network.ts';
import { Rng } from './prng.ts';
import { EdgevolveError } from '../../errors/index.ts';

/**
 * Rebuilds a trainable MLP from an ONNX model of the form `exportToOnnx` writes for one
 * (Flatten, then Gemm(transB=1) and Relu in a chain), copying the weights: distillation
 * starts from the deployed student, not from a fresh initialisation. Other graphs are
 * refused with E_TRAIN_INVALID naming the first node that does not fit.
 */
export function importMlpFromOnnx(model: Uint8Array | ModelProto, maxBatch: number): Sequential {
  const proto = model instanceof Uint8Array ? decodeModel(model) : model;
  const graph = proto.graph;
  if (graph === undefined || graph === null) throw new EdgevolveError('E_TRAIN_INVALID', 'the model has no graph');
  const input = graph.input?.[0];
  const dims = input?.type?.tensorType?.shape?.dim?.slice(1).map((d) => Number(d.dimValue ?? 0)) ?? [];
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new EdgevolveError('E_TRAIN_INVALID', `the graph input needs fixed non-batch dimensions, got [${dims.join(',')}]`);
  }
  const initializers = new Map<string, TensorProto>();
  for (const tensor of graph.initializer ?? []) initializers.set(tensor.name ?? '', tensor);
  const layers: Layer[] = [];
  let width = dims.reduce((a, b) => a * b, 1);
  const rng = new Rng(0); // overwritten below; Dense needs one for its initialisation
  for (const node of graph.node ?? []) {
    const where = `node ${node.name ?? '?'} (${node.opType ?? '?'})`;
    switch (node.opType) {
      case 'Flatten':
        if (layers.length !== 0) throw new EdgevolveError('E_TRAIN_INVALID', `${where}: Flatten only as the first node`);
        layers.push(new Flatten(dims));
        break;
      case 'Relu':
        layers.push(new Relu([width], maxBatch));
        break;
      case 'Gemm': {
        const transB = node.attribute?.find((a) => a.name === 'transB')?.i;
        const weight = initializers.get(node.input?.[1] ?? '');
        const bias = initializers.get(node.input?.[2] ?? '');
        if (Number(transB ?? 0) !== 1 || weight === undefined || bias === undefined) {
          throw new EdgevolveError('E_TRAIN_INVALID', `${where}: only Gemm with transB=1 and constant weight and bias is importable`);
        }
        const [outFeatures = 0, inFeatures = 0] = tensorDims(weight);
        if (inFeatures !== width) throw new EdgevolveError('E_TRAIN_INVALID', `${where}: takes ${inFeatures} values, the previous layer gives ${width}`);
        if (layers.length === 0) layers.push(new Flatten(dims));
        // The first Dense reads raw inputs and needs no input gradient (see Dense).
        const dense = new Dense(inFeatures, outFeatures, maxBatch, rng, layers.some((l) => l.kind === 'dense'));
        dense.weight.value.set(tensorToFloat32(weight));
        dense.bias.value.set(tensorToFloat32(bias));
        layers.push(dense);
        width = outFeatures;
        break;
      }
      case undefined:
      default:
        throw new EdgevolveError('E_TRAIN_INVALID', `${where}: not an MLP operator (Flatten, Gemm, Relu)`);
    }
  }
  return new Sequential(layers, maxBatch);
}
