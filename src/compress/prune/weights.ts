/**
 * Which initializers are prunable weights, and tensor slicing along axes by kept
 * indices (the one copy loop structured pruning needs).
 */
import { DataType } from '../../onnx/index.ts';
import type { GraphProto, NodeProto } from '../../onnx/index.ts';
import { initializerMap } from '../fold/graph-util.ts';

/** Ops whose weight input the pruners consider, and which input slot(s) hold it. */
export const WEIGHT_SLOTS: Readonly<Record<string, readonly number[]>> = {
  Conv: [1],
  ConvTranspose: [1],
  Gemm: [1],
  MatMul: [0, 1],
};

export interface WeightUse {
  readonly tensor: string;
  readonly node: NodeProto;
  readonly slot: number;
}

/** Float constant weights of Conv/ConvTranspose/Gemm/MatMul (rank ≥ 2), each tensor once, in graph order. */
export function findWeights(graph: GraphProto, opTypes: ReadonlySet<string>): WeightUse[] {
  const inits = initializerMap(graph);
  const seen = new Set<string>();
  const out: WeightUse[] = [];
  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    if ((node.domain ?? '') !== '' || !opTypes.has(op)) continue;
    for (const slot of WEIGHT_SLOTS[op] ?? []) {
      const name = node.input?.[slot];
      if (!name || seen.has(name)) continue;
      const t = inits.get(name);
      if (t === undefined || t.dataType !== DataType.FLOAT || (t.dims?.length ?? 0) < 2) continue;
      seen.add(name);
      out.push({ tensor: name, node, slot });
    }
  }
  return out;
}

/**
 * Copies the elements of a row-major tensor whose index along each listed axis is
 * kept. `keep` maps axis → sorted kept indices; other axes are copied whole.
 */
export function sliceAxes(data: Float32Array, dims: readonly number[], keep: ReadonlyMap<number, Int32Array>): { data: Float32Array; dims: number[] } {
  let current = data;
  let currentDims = [...dims];
  for (const [axis, kept] of [...keep].sort((a, b) => a[0] - b[0])) {
    const outer = currentDims.slice(0, axis).reduce((a, b) => a * b, 1);
    const size = currentDims[axis]!;
    const inner = currentDims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const next = new Float32Array(outer * kept.length * inner);
    let at = 0;
    for (let o = 0; o < outer; o++) {
      const base = o * size * inner;
      for (let k = 0; k < kept.length; k++) {
        const start = base + kept[k]! * inner;
        next.set(current.subarray(start, start + inner), at);
        at += inner;
      }
    }
    current = next;
    currentDims = currentDims.map((d, i) => (i === axis ? kept.length : d));
  }
  return { data: current, dims: currentDims };
}
