/**
 * Predicted cost of a candidate before it runs: the multiply-accumulates of each
 * heavy node (Conv, ConvTranspose, Gemm, MatMul) at the data set's sample size, and
 * the device's measured int8-vs-fp32 speed on GEMM and Conv (hardware/ micro-
 * benchmarks). The prediction is a ratio to the fp32 latency measured in the same
 * run: it orders candidates and names the ones never built; measurements decide.
 */
import { cloneModel, nodeKey } from '../compress/index.ts';
import { DataType, encodeModel, getAttrInt, makeValueInfo, tensorDims, type ModelProto, type TensorValue } from '../onnx/index.ts';
import { createSession } from '../runtime/index.ts';

const HEAVY = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

export interface NodeMacs {
  readonly node: string;
  readonly opType: string;
  readonly macs: number;
}

/** The measured speed-ups the prediction uses (1 = no difference; from profile.measured). */
export interface DeviceSpeed {
  readonly gemmInt8Speedup: number;
  readonly convInt8Speedup: number;
  /** Share of fp32 time spent in heavy nodes; the rest (activations, reshapes, Q/DQ) is assumed unchanged. */
  readonly heavyShare: number;
}

export const NEUTRAL_SPEED: DeviceSpeed = { gemmInt8Speedup: 1, convInt8Speedup: 1, heavyShare: 0.8 };

/** MACs per heavy node at the shapes the given feeds produce (one unoptimized run with the intermediates as outputs). */
export async function countMacs(model: ModelProto, feeds: Readonly<Record<string, TensorValue>>): Promise<NodeMacs[]> {
  const probe = cloneModel(model);
  const graph = probe.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const heavy = (graph.node ?? []).filter((n) => HEAVY.has(n.opType ?? ''));
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  graph.output ??= [];
  for (const n of heavy) {
    for (const v of [n.input?.[0], n.output?.[0]]) {
      if (v === undefined || v === '' || outputs.has(v) || inits.has(v) || feeds[v] !== undefined) continue;
      outputs.add(v);
      graph.output.push(makeValueInfo(v, DataType.FLOAT, null));
    }
  }
  const session = await createSession(encodeModel(probe), { graphOptimizationLevel: 'disabled' });
  let results: Record<string, TensorValue>;
  try {
    results = await session.run(feeds);
  } finally {
    await session.release();
  }
  const shape = (v: string | undefined): readonly number[] => (v === undefined ? [] : (results[v]?.dims ?? feeds[v]?.dims ?? []));
  const weight = (name: string | undefined): number[] => {
    const t = name === undefined ? undefined : inits.get(name);
    return t === undefined ? [] : tensorDims(t);
  };
  const prod = (d: readonly number[]): number => d.reduce((a, b) => a * b, 1);
  return heavy.map((n) => {
    const out = shape(n.output?.[0]);
    const w = weight(n.input?.[1]);
    let macs = 0;
    if (n.opType === 'Conv') macs = prod(out) * prod(w.slice(1));
    else if (n.opType === 'ConvTranspose') macs = prod(shape(n.input?.[0])) * (w[1] ?? 0) * prod(w.slice(2));
    else if (n.opType === 'Gemm') macs = prod(out) * (getAttrInt(n, 'transA', 0) === 1 ? (shape(n.input?.[0])[0] ?? 0) : (shape(n.input?.[0]).at(-1) ?? 0));
    else macs = prod(out) * (shape(n.input?.[0]).at(-1) ?? 0);
    return { node: nodeKey(n), opType: n.opType ?? '', macs };
  });
}

/** MACs summed by op type. */
export function macsByOpType(nodes: readonly NodeMacs[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) out[n.opType] = (out[n.opType] ?? 0) + n.macs;
  return out;
}

/**
 * The device speed from the profile's micro-benchmarks (null: not measured, so
 * int8 is predicted neither faster nor slower).
 */
export function deviceSpeed(measured: { readonly gemmInt8Speedup: number; readonly convInt8Speedup: number } | null): DeviceSpeed {
  if (measured === null) return NEUTRAL_SPEED;
  const sane = (x: number): number => (Number.isFinite(x) && x > 0 ? x : 1);
  return { ...NEUTRAL_SPEED, gemmInt8Speedup: sane(measured.gemmInt8Speedup), convInt8Speedup: sane(measured.convInt8Speedup) };
}

/** What a candidate does to the heavy nodes, as the cost model needs it. */
export interface CostPlan {
  /** Nodes run in int8. */
  readonly int8Nodes: ReadonlySet<string>;
  /** Heavy MACs after pruning over before (1 when not pruned). */
  readonly macsRatio: number;
}

/** Predicted latency over the fp32 latency. */
export function predictLatencyRatio(nodes: readonly NodeMacs[], plan: CostPlan, speed: DeviceSpeed): number {
  const total = nodes.reduce((a, n) => a + n.macs, 0);
  if (total === 0) return 1;
  let heavy = 0;
  for (const n of nodes) {
    const int8 = plan.int8Nodes.has(n.node);
    const speedup = !int8 ? 1 : n.opType === 'Conv' || n.opType === 'ConvTranspose' ? speed.convInt8Speedup : speed.gemmInt8Speedup;
    heavy += n.macs / total / speedup;
  }
  return 1 - speed.heavyShare + speed.heavyShare * heavy * plan.macsRatio;
}
