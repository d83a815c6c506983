/**
 * The micro-benchmark models, built with the IR builders: fp32 and int8 versions of
 * the two kernels that dominate edge models (GEMM and 3x3 Conv), and a large
 * element-wise Add for memory bandwidth. The int8 graphs are the patterns
 * onnxruntime's own quantizer emits: dynamic (DynamicQuantizeLinear → MatMulInteger)
 * for GEMM and static QDQ (QuantizeLinear → QLinearConv → DequantizeLinear) for Conv,
 * so the ratio predicts what our int8 candidates will gain on this device.
 */
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type GraphSpec, type TensorValue } from '../onnx/index.ts';

export interface MicroModel {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly feeds: Record<string, TensorValue>;
  /** Arithmetic operations per run (multiply-add = 2), or bytes moved for the bandwidth model. */
  readonly work: number;
}

/** Deterministic data: benchmarks must not depend on Math.random, and values stay in int8-friendly range. */
function filled(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

function int8Weights(length: number, seed: number): Int8Array {
  const out = new Int8Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s >>> 24) - 128;
  }
  return out;
}

const modelOf = (name: string, nodes: Omit<GraphSpec, 'name'>): Uint8Array =>
  encodeModel(makeModel({ graph: makeGraph({ ...nodes, name }), opsets: [{ domain: '', version: 21 }] }));

export interface GemmShape {
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

export function gemmFp32(shape: GemmShape): MicroModel {
  const { m, k, n } = shape;
  return {
    name: 'gemm-fp32',
    bytes: modelOf('gemm_fp32', {
      nodes: [makeNode('MatMul', ['a', 'b'], ['y'])],
      inputs: [makeValueInfo('a', DataType.FLOAT, [m, k])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [m, n])],
      initializers: [makeTensor('b', DataType.FLOAT, [k, n], filled(k * n, 2))],
    }),
    feeds: { a: { dataType: DataType.FLOAT, dims: [m, k], data: filled(m * k, 1) } },
    work: 2 * m * k * n,
  };
}

/** Dynamic int8 GEMM: activations quantized per run (uint8), weights int8, rescaled to fp32. */
export function gemmInt8(shape: GemmShape): MicroModel {
  const { m, k, n } = shape;
  return {
    name: 'gemm-int8',
    bytes: modelOf('gemm_int8', {
      nodes: [
        makeNode('DynamicQuantizeLinear', ['a'], ['a_q', 'a_scale', 'a_zp']),
        makeNode('MatMulInteger', ['a_q', 'b_q', 'a_zp', 'b_zp'], ['y_i32']),
        makeNode('Cast', ['y_i32'], ['y_f32'], { to: DataType.FLOAT }),
        makeNode('Mul', ['a_scale', 'b_scale'], ['y_scale']),
        makeNode('Mul', ['y_f32', 'y_scale'], ['y']),
      ],
      inputs: [makeValueInfo('a', DataType.FLOAT, [m, k])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [m, n])],
      initializers: [
        makeTensor('b_q', DataType.INT8, [k, n], int8Weights(k * n, 2)),
        makeTensor('b_zp', DataType.INT8, [], new Int8Array(1)),
        makeTensor('b_scale', DataType.FLOAT, [], new Float32Array([0.01])),
      ],
    }),
    feeds: { a: { dataType: DataType.FLOAT, dims: [m, k], data: filled(m * k, 1) } },
    work: 2 * m * k * n,
  };
}

export interface ConvShape {
  readonly channelsIn: number;
  readonly channelsOut: number;
  readonly size: number;
}

const convWork = (s: ConvShape): number => 2 * s.channelsOut * s.channelsIn * 9 * s.size * s.size;

export function convFp32(shape: ConvShape): MicroModel {
  const { channelsIn: ci, channelsOut: co, size } = shape;
  return {
    name: 'conv-fp32',
    bytes: modelOf('conv_fp32', {
      nodes: [makeNode('Conv', ['x', 'w'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, ci, size, size])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, co, size, size])],
      initializers: [makeTensor('w', DataType.FLOAT, [co, ci, 3, 3], filled(co * ci * 9, 4))],
    }),
    feeds: { x: { dataType: DataType.FLOAT, dims: [1, ci, size, size], data: filled(ci * size * size, 3) } },
    work: convWork(shape),
  };
}

/** Static QDQ int8 Conv (uint8 activations, int8 weights), what a calibrated model runs. */
export function convInt8(shape: ConvShape): MicroModel {
  const { channelsIn: ci, channelsOut: co, size } = shape;
  const scalar = (name: string, dataType: number, value: number): ReturnType<typeof makeTensor> =>
    makeTensor(name, dataType, [], dataType === DataType.FLOAT ? new Float32Array([value]) : dataType === DataType.INT8 ? new Int8Array([value]) : new Uint8Array([value]));
  return {
    name: 'conv-int8',
    bytes: modelOf('conv_int8', {
      nodes: [
        makeNode('QuantizeLinear', ['x', 'x_scale', 'x_zp'], ['x_q']),
        makeNode('QLinearConv', ['x_q', 'x_scale', 'x_zp', 'w_q', 'w_scale', 'w_zp', 'y_scale', 'y_zp'], ['y_q'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('DequantizeLinear', ['y_q', 'y_scale', 'y_zp'], ['y']),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, ci, size, size])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, co, size, size])],
      initializers: [
        scalar('x_scale', DataType.FLOAT, 1 / 255),
        scalar('x_zp', DataType.UINT8, 128),
        makeTensor('w_q', DataType.INT8, [co, ci, 3, 3], int8Weights(co * ci * 9, 4)),
        scalar('w_scale', DataType.FLOAT, 0.01),
        scalar('w_zp', DataType.INT8, 0),
        scalar('y_scale', DataType.FLOAT, 0.05),
        scalar('y_zp', DataType.UINT8, 128),
      ],
    }),
    feeds: { x: { dataType: DataType.FLOAT, dims: [1, ci, size, size], data: filled(ci * size * size, 3) } },
    work: convWork(shape),
  };
}

/**
 * Streams two inputs of `elements` floats through Add into an intermediate onnxruntime
 * keeps in its own arena, reduced to a scalar: four passes over memory per run and no
 * copy of a large output back into JavaScript, which would measure V8's allocator.
 */
export function memoryAdd(elements: number): MicroModel {
  return {
    name: 'memory-add',
    bytes: modelOf('memory_add', {
      nodes: [makeNode('Add', ['a', 'b'], ['sum']), makeNode('ReduceMax', ['sum'], ['y'], { keepdims: 0 })],
      inputs: [makeValueInfo('a', DataType.FLOAT, [elements]), makeValueInfo('b', DataType.FLOAT, [elements])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [])],
    }),
    feeds: {
      a: { dataType: DataType.FLOAT, dims: [elements], data: filled(elements, 5) },
      b: { dataType: DataType.FLOAT, dims: [elements], data: filled(elements, 6) },
    },
    work: 4 * 4 * elements,
  };
}

/** One Identity node: the cheapest model that proves an execution provider can load and run. */
export function identityModel(): MicroModel {
  return {
    name: 'identity',
    bytes: modelOf('identity', {
      nodes: [makeNode('Identity', ['x'], ['y'])],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 4])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 4])],
    }),
    feeds: { x: { dataType: DataType.FLOAT, dims: [1, 4], data: new Float32Array(4) } },
    work: 0,
  };
}
