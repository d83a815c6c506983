import {
  DataType,
  attr,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../../onnx/index.ts';
import { BatchNorm2d } from './layers/batchnorm2d.ts';
import { Conv2d } from './layers/conv2d.ts';
import { Dense } from './layers/dense.ts';
import type { Layer } from './layers/layer.ts';
import { MaxPool2d } from './layers/maxpool2d.ts';
import type { Sequential } from './network.ts';
import { EdgevolveError } from '../../errors/index.ts';

/** Opset 17 and the IR version that introduced it (ONNX 1.12): what every onnxruntime since 1.12 runs. */
export const EXPORT_OPSET = 17;
export const EXPORT_IR_VERSION = 8;

export interface ExportOptions {
  readonly graphName: string;
  /** Graph input name; its shape is [batch, ...network.inputShape]. */
  readonly inputName?: string;
  readonly outputName?: string;
  /** Name of the symbolic batch dimension, so that any batch size runs. */
  readonly batchDim?: string;
  readonly docString?: string;
  /** Stored as model metadata_props (training seed, accuracy, ...). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The network in inference form as an ONNX model: Flatten, Gemm (transB=1), Relu, Conv,
 * BatchNormalization (with the running statistics, inference mode), MaxPool. Node and
 * initializer names follow the layer order (`conv1`, `conv1.weight`, `bn1.running_mean`...).
 */
export function exportToOnnx(network: Sequential, options: ExportOptions): ModelProto {
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'logits';
  const batchDim = options.batchDim ?? 'N';
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const counters = new Map<string, number>();
  let current = inputName;
  network.layers.forEach((layer, index) => {
    const prefix = nodePrefix(layer);
    const ordinal = (counters.get(prefix) ?? 0) + 1;
    counters.set(prefix, ordinal);
    const name = `${prefix}${ordinal}`;
    const output = index === network.layers.length - 1 ? outputName : `${name}.out`;
    const tensor = (role: string, dims: readonly number[], data: Float32Array): string => {
      initializers.push(makeTensor(`${name}.${role}`, DataType.FLOAT, dims, data));
      return `${name}.${role}`;
    };
    nodes.push(layerNode(layer, name, current, output, tensor));
    current = output;
  });
  const model = makeModel({
    graph: makeGraph({
      name: options.graphName,
      nodes,
      inputs: [makeValueInfo(inputName, DataType.FLOAT, [batchDim, ...network.inputShape])],
      outputs: [makeValueInfo(outputName, DataType.FLOAT, [batchDim, network.outputSize])],
      initializers,
    }),
    opsets: [{ domain: '', version: EXPORT_OPSET }],
    irVersion: EXPORT_IR_VERSION,
    producerName: 'edgevolve-train',
  });
  if (options.docString !== undefined) model.docString = options.docString;
  if (options.metadata !== undefined) {
    model.metadataProps = Object.entries(options.metadata).map(([key, value]) => ({ key, value }));
  }
  return model;
}

function nodePrefix(layer: Layer): string {
  switch (layer.kind) {
    case 'dense': return 'fc';
    case 'relu': return 'relu';
    case 'conv2d': return 'conv';
    case 'batchnorm2d': return 'bn';
    case 'maxpool2d': return 'pool';
    case 'flatten': return 'flatten';
  }
}

function layerNode(
  layer: Layer, name: string, input: string, output: string,
  tensor: (role: string, dims: readonly number[], data: Float32Array) => string,
): NodeProto {
  const opts = { name };
  if (layer instanceof Dense) {
    const w = tensor('weight', layer.weight.shape, layer.weight.value);
    const b = tensor('bias', layer.bias.shape, layer.bias.value);
    return makeNode('Gemm', [input, w, b], [output], { alpha: attr.float(1), beta: attr.float(1), transB: 1 }, opts);
  }
  if (layer instanceof Conv2d) {
    const w = tensor('weight', layer.weight.shape, layer.weight.value);
    const b = tensor('bias', layer.bias.shape, layer.bias.value);
    const { kernel, pad } = layer;
    return makeNode('Conv', [input, w, b], [output], {
      kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad], strides: [1, 1], dilations: [1, 1], group: 1,
    }, opts);
  }
  if (layer instanceof BatchNorm2d) {
    const c = [layer.channels];
    const inputs = [
      input,
      tensor('scale', c, layer.scale.value),
      tensor('bias', c, layer.shift.value),
      tensor('running_mean', c, layer.runningMean),
      tensor('running_var', c, layer.runningVar),
    ];
    // ONNX momentum weighs the old estimate: PyTorch's 0.1 is ONNX's 0.9 (unused at inference).
    return makeNode('BatchNormalization', inputs, [output], {
      epsilon: attr.float(layer.epsilon), momentum: attr.float(1 - layer.momentum),
    }, opts);
  }
  if (layer instanceof MaxPool2d) {
    return makeNode('MaxPool', [input], [output], { kernel_shape: [layer.size, layer.size], strides: [layer.size, layer.size] }, opts);
  }
  switch (layer.kind) {
    case 'relu': return makeNode('Relu', [input], [output], {}, opts);
    case 'flatten': return makeNode('Flatten', [input], [output], { axis: 1 }, opts);
    case 'dense':
    case 'conv2d':
    case 'batchnorm2d':
    case 'maxpool2d':
      throw new EdgevolveError('E_INTERNAL', `layer ${name} says it is ${layer.kind} but is not that class`);
  }
}
