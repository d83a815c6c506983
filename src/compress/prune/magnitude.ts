/**
 * Unstructured magnitude pruning: the smallest-magnitude weights of Conv,
 * ConvTranspose, Gemm and MatMul are set to zero, to a target sparsity per layer or
 * globally (one threshold across all layers). The tensors stay dense: onnxruntime's
 * CPU kernels have no sparse path, so the gain is in the size after a
 * general-purpose compressor, which the report measures (deflate, as gzip uses).
 */
import { deflateRawSync } from 'node:zlib';
import { z } from 'zod';
import { parsePassOptions } from './options.ts';
import { DataType, encodeModel, makeTensor, tensorDims, tensorToFloat32 } from '../../onnx/index.ts';
import type { ModelProto, TensorProto } from '../../onnx/index.ts';
import { cloneModel } from '../clone.ts';
import { hoistConstants } from '../fold/index.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import { findWeights, type WeightUse } from './weights.ts';

export const pruneUnstructuredOptionsSchema = z
  .object({
    /** Fraction of weights to zero, 0 ≤ s < 1. */
    sparsity: z.number().min(0).lt(1),
    /** 'per-layer': every tensor gets the target; 'global': one magnitude threshold over all tensors. */
    scope: z.enum(['per-layer', 'global']).default('per-layer'),
    /** Node or tensor name → sparsity for that layer (per-layer scope; overrides `sparsity`). */
    layers: z.record(z.string(), z.number().min(0).lt(1)).default({}),
    /** Node or tensor names never pruned. */
    exclude: z.array(z.string()).default([]),
    /** Tensors with fewer elements stay dense (small layers are the most sensitive). */
    minElements: z.number().int().nonnegative().default(0),
    opTypes: z.array(z.enum(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])).default(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']),
    /** Measure the deflated size of the model before and after (costs one compression of each). */
    measureCompressed: z.boolean().default(true),
  })
  .strict();
export type PruneUnstructuredOptions = z.input<typeof pruneUnstructuredOptionsSchema>;

interface Candidate {
  readonly use: WeightUse;
  readonly data: Float32Array;
  readonly target: number;
}

function countZeros(data: Float32Array): number {
  let zeros = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
  return zeros;
}

/** The magnitude t such that zeroing all |w| < t, then |w| = t in order, zeroes exactly `k` of `sortedAbs`. */
function thresholdFor(sortedAbs: Float32Array, k: number): number {
  return k <= 0 ? -1 : sortedAbs[Math.min(k, sortedAbs.length) - 1]!;
}

/** Zeroes |w| < t and then entries equal to t until `budget` of them are zeroed; returns how many ties were zeroed. */
function applyThreshold(data: Float32Array, t: number, tiesBudget: number): number {
  let ties = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!);
    if (a < t) data[i] = 0;
    else if (a === t && ties < tiesBudget) {
      data[i] = 0;
      ties++;
    }
  }
  return ties;
}

function countBelow(sortedAbs: Float32Array, t: number): number {
  let lo = 0;
  let hi = sortedAbs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedAbs[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sortedMagnitudes(arrays: readonly Float32Array[]): Float32Array {
  const total = arrays.reduce((a, d) => a + d.length, 0);
  const abs = new Float32Array(total);
  let at = 0;
  for (const d of arrays) for (let i = 0; i < d.length; i++) abs[at++] = Math.abs(d[i]!);
  return abs.sort();
}

export function pruneUnstructured(model: ModelProto, rawOptions: PruneUnstructuredOptions): PassResult {
  const options = parsePassOptions('prune-unstructured', pruneUnstructuredOptionsSchema, rawOptions);
  const copy = cloneModel(model);
  const graph = copy.graph;
  const changes: Change[] = [];
  const warnings: string[] = [];
  if (!graph) return { model, modified: false, report: { pass: 'prune-unstructured', changes, warnings: ['model has no graph'], stats: {} } };
  changes.push(...hoistConstants(copy));
  const excluded = new Set(options.exclude);
  const candidates: Candidate[] = [];
  for (const use of findWeights(graph, new Set(options.opTypes))) {
    const nodeName = use.node.name ?? '';
    const t = graph.initializer!.find((x) => x.name === use.tensor)!;
    const elements = tensorDims(t).reduce((a, b) => a * b, 1);
    if (excluded.has(use.tensor) || excluded.has(nodeName)) {
      changes.push({ target: use.tensor, action: 'kept-dense', detail: 'excluded by the user' });
      continue;
    }
    if (elements < options.minElements) {
      changes.push({ target: use.tensor, action: 'kept-dense', detail: `${elements} elements < minElements ${options.minElements}` });
      continue;
    }
    const target = options.layers[nodeName] ?? options.layers[use.tensor] ?? options.sparsity;
    candidates.push({ use, data: tensorToFloat32(t), target });
  }
  if (options.scope === 'global' && Object.keys(options.layers).length > 0) warnings.push('per-layer sparsities are ignored with scope global');

  const zerosBefore = candidates.map((c) => countZeros(c.data));
  if (options.scope === 'global') {
    const sorted = sortedMagnitudes(candidates.map((c) => c.data));
    const k = Math.floor(options.sparsity * sorted.length);
    const t = thresholdFor(sorted, k);
    let ties = k - countBelow(sorted, t);
    for (const c of candidates) ties -= applyThreshold(c.data, t, ties);
  } else {
    for (const c of candidates) {
      const sorted = sortedMagnitudes([c.data]);
      const k = Math.floor(c.target * sorted.length);
      const t = thresholdFor(sorted, k);
      applyThreshold(c.data, t, k - countBelow(sorted, t));
    }
  }

  let total = 0;
  let zeros = 0;
  const byName = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  candidates.forEach((c, i) => {
    const after = countZeros(c.data);
    total += c.data.length;
    zeros += after;
    const old = byName.get(c.use.tensor)!;
    const index = graph.initializer!.indexOf(old);
    graph.initializer![index] = makeTensor(c.use.tensor, DataType.FLOAT, tensorDims(old), c.data);
    changes.push({
      target: c.use.tensor,
      action: 'pruned',
      detail: `${c.use.node.opType ?? ''} '${c.use.node.name ?? ''}'`,
      stats: { elements: c.data.length, zerosBefore: zerosBefore[i]!, zerosAfter: after, sparsity: after / Math.max(1, c.data.length) },
    });
  });
  const stats: Record<string, number> = {
    tensorsPruned: candidates.length,
    weightElements: total,
    weightZeros: zeros,
    sparsity: total === 0 ? 0 : zeros / total,
  };
  const encodedBefore = encodeModel(model);
  const encodedAfter = encodeModel(copy);
  stats['bytesBefore'] = encodedBefore.byteLength;
  stats['bytesAfter'] = encodedAfter.byteLength;
  if (options.measureCompressed) {
    stats['deflatedBytesBefore'] = deflateRawSync(encodedBefore).byteLength;
    stats['deflatedBytesAfter'] = deflateRawSync(encodedAfter).byteLength;
  }
  if (candidates.length === 0) warnings.push('no prunable weights (float Conv/ConvTranspose/Gemm/MatMul initializers) found');
  return { model: copy, modified: candidates.length > 0, report: { pass: 'prune-unstructured', changes, warnings, stats } };
}

export const pruneUnstructuredPass: Pass<PruneUnstructuredOptions> = {
  name: 'prune-unstructured',
  run: pruneUnstructured,
};
