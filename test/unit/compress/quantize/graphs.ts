/**
 * Small hand-built graphs exercising each op pattern the quantizers handle, with
 * deterministic weights (a seeded generator), and helpers to run them in onnxruntime.
 */
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto, type NodeProto, type TensorProto, type TensorValue } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { uniform01 } from '../../../../src/data/prng.ts';

/** mulberry32: deterministic values in [-1, 1). */
export function seeded(seed: number): () => number {
  const next = uniform01(seed);
  return () => next() * 2 - 1;
}

export function randomTensor(name: string, dims: number[], seed: number, scale = 1): TensorProto {
  const rand = seeded(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rand() * scale;
  return makeTensor(name, DataType.FLOAT, dims, data);
}

export function randomInput(dims: number[], seed: number, scale = 1): TensorValue {
  const rand = seeded(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rand() * scale;
  return { dataType: DataType.FLOAT, dims, data };
}

function model(nodes: NodeProto[], inputs: [string, number[]][], outputs: [string, (number | string)[]][], inits: TensorProto[], opset = 13): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes,
      inputs: inputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s)),
      outputs: outputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s)),
      initializers: inits,
    }),
    opsets: [{ domain: '', version: opset }],
  });
}

/** Gemm(transB=1) → Relu → MatMul (3-D input via Reshape) sharing no weights; plus a weight used by two MatMuls. */
export function mlpGraph(): ModelProto {
  return model(
    [
      makeNode('Gemm', ['x', 'w1', 'b1'], ['h1'], { transB: 1 }, { name: 'fc1' }),
      makeNode('Relu', ['h1'], ['r1'], {}, { name: 'relu1' }),
      makeNode('MatMul', ['r1', 'w2'], ['h2'], {}, { name: 'fc2' }),
      makeNode('MatMul', ['r1', 'w2'], ['h2b'], {}, { name: 'fc2_shared' }),
      makeNode('Add', ['h2', 'h2b'], ['y'], {}, { name: 'residual' }),
    ],
    [['x', [4, 16]]],
    [['y', [4, 8]]],
    [randomTensor('w1', [32, 16], 1, 0.5), randomTensor('b1', [32], 2, 0.1), randomTensor('w2', [32, 8], 3, 0.5)],
  );
}

/** MatMul with a 3-D activation [2, 5, 16] × [16, 12]. */
export function matmul3dGraph(): ModelProto {
  return model([makeNode('MatMul', ['x', 'w'], ['y'], {}, { name: 'mm3d' })], [['x', [2, 5, 16]]], [['y', [2, 5, 12]]], [randomTensor('w', [16, 12], 7, 0.3)]);
}

/** Conv with bias → Relu → grouped Conv (no bias) → depthwise Conv → Add (residual) → Concat → Gemm head. */
export function convGraph(): ModelProto {
  return model(
    [
      makeNode('Conv', ['x', 'c1w', 'c1b'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv_bias' }),
      makeNode('Relu', ['c1'], ['r1'], {}, { name: 'relu' }),
      makeNode('Conv', ['r1', 'c2w'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 }, { name: 'conv_grouped' }),
      makeNode('Conv', ['c2', 'c3w', 'c3b'], ['c3'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }, { name: 'conv_depthwise' }),
      makeNode('Add', ['c3', 'r1'], ['sum'], {}, { name: 'residual' }),
      makeNode('Concat', ['sum', 'c2'], ['cat'], { axis: 1 }, { name: 'concat' }),
      makeNode('GlobalAveragePool', ['cat'], ['gap'], {}, { name: 'gap' }),
      makeNode('Flatten', ['gap'], ['flat'], { axis: 1 }, { name: 'flatten' }),
      makeNode('Gemm', ['flat', 'fcw', 'fcb'], ['y'], { transB: 1 }, { name: 'head' }),
    ],
    [['x', [1, 3, 12, 12]]],
    [['y', [1, 10]]],
    [
      randomTensor('c1w', [8, 3, 3, 3], 11, 0.4),
      randomTensor('c1b', [8], 12, 0.1),
      randomTensor('c2w', [8, 4, 3, 3], 13, 0.3),
      randomTensor('c3w', [8, 1, 3, 3], 14, 0.5),
      randomTensor('c3b', [8], 15, 0.1),
      randomTensor('fcw', [10, 16], 16, 0.5),
      randomTensor('fcb', [10], 17, 0.1),
    ],
  );
}

/** Runs a model on one feed and returns its outputs. */
export async function runModel(m: ModelProto, feeds: Record<string, TensorValue>, level: 'disabled' | 'all' = 'all'): Promise<Record<string, TensorValue>> {
  const session = await createSession(encodeModel(m), { graphOptimizationLevel: level, threads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export { cosineSimilarity as cosine } from '../../../../src/planner/metrics.ts';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The op types onnxruntime actually runs after its graph optimizations (it writes the optimized model for us). */
export async function optimizedOpTypes(m: ModelProto): Promise<string[]> {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const ort = await import('onnxruntime-node');
  const { decodeModel } = await import('../../../../src/onnx/index.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-opt-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(encodeModel(m), { graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 });
    await session.release();
    return (decodeModel(readFileSync(file)).graph?.node ?? []).map((n) => n.opType ?? '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Calibration feeds from a synchronous list maker (restartable, as calibrate() needs). */
export function feedsOf(make: () => Iterable<Record<string, TensorValue>>): () => AsyncIterable<Record<string, TensorValue>> {
  return () => ({
    [Symbol.asyncIterator]: () => {
      const it = make()[Symbol.iterator]();
      return { next: () => Promise.resolve(it.next()) };
    },
  });
}
