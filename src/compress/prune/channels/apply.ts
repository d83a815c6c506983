/**
 * Carrying out a pruning plan on the analysed graph (in place, on a clone): every
 * weight and per-channel parameter is sliced once along all its pruned axes,
 * depthwise group counts and channel-count constants are rewritten, and value_info
 * of values whose channel count changed is dropped.
 */
import { DataType, readTensor, setAttribute, tensorDims, tensorToFloat32 } from '../../../onnx/index.ts';
import type { GraphProto, NodeProto } from '../../../onnx/index.ts';
import { dropValueInfo, InitializerWriter } from '../../fold/graph-util.ts';
import { sliceAxes } from '../weights.ts';
import type { Analysis } from './analysis.ts';
import { totalChannels, type Layout } from './layout.ts';
import type { GroupPlan } from './plan.ts';

export class KeptIndex {
  private readonly byRoot = new Map<number, GroupPlan>();
  constructor(
    private readonly analysis: Analysis,
    plans: readonly GroupPlan[],
  ) {
    for (const p of plans) this.byRoot.set(p.root, p);
  }

  ofAtom(atom: number): Int32Array {
    return this.byRoot.get(this.analysis.atoms.find(atom))!.kept;
  }

  isPruned(atom: number): boolean {
    const plan = this.byRoot.get(this.analysis.atoms.find(atom))!;
    return plan.kept.length < plan.channels;
  }

  /** Kept feature indices along a layout's axis (channel offsets of Concat, Flatten spread applied). */
  features(layout: Layout): Int32Array {
    const spread = Math.max(1, layout.spread);
    const out: number[] = [];
    let offset = 0;
    for (const s of layout.segments) {
      for (const k of this.ofAtom(s.atom)) for (let j = 0; j < spread; j++) out.push(offset + k * spread + j);
      offset += s.length * spread;
    }
    return Int32Array.from(out);
  }

  touches(layout: Layout): boolean {
    return layout.segments.some((s) => this.isPruned(s.atom));
  }
}

interface SlotKey {
  readonly node: NodeProto;
  readonly slot: number;
}

export function applyPlan(graph: GraphProto, analysis: Analysis, plans: readonly GroupPlan[]): { slicedTensors: number } {
  const kept = new KeptIndex(analysis, plans);
  const writer = new InitializerWriter(graph);
  const slices = new Map<NodeProto, Map<number, Map<number, Int32Array>>>();
  const slotKeys: SlotKey[] = [];
  const addSlice = (node: NodeProto, slot: number, axis: number, indices: Int32Array): void => {
    let bySlot = slices.get(node);
    if (bySlot === undefined) slices.set(node, (bySlot = new Map<number, Map<number, Int32Array>>()));
    let byAxis = bySlot.get(slot);
    if (byAxis === undefined) {
      bySlot.set(slot, (byAxis = new Map<number, Int32Array>()));
      slotKeys.push({ node, slot });
    }
    byAxis.set(axis, indices);
  };
  for (const e of analysis.edits) {
    switch (e.kind) {
      case 'source':
        if (kept.isPruned(e.atom)) addSlice(e.node, e.slot, e.axis, kept.ofAtom(e.atom));
        break;
      case 'layout':
        if (kept.touches(e.layout)) addSlice(e.node, e.slot, e.axis, kept.features(e.layout));
        break;
      case 'group':
        if (kept.touches(e.layout)) setAttribute(e.node, 'group', kept.features(e.layout).length);
        break;
      case 'count': {
        if (!kept.touches(e.layout)) break;
        const name = e.node.input?.[e.slot] ?? '';
        const t = writer.get(name);
        if (t === undefined) break;
        const value = readTensor(t);
        const data = Array.from(value.data as ArrayLike<number | bigint>, (v) => BigInt(v));
        const features = totalChannels(e.layout) * Math.max(1, e.layout.spread);
        data[e.index] = BigInt((e.oldValue / features) * kept.features(e.layout).length);
        writer.writeTyped(e.node, e.slot, DataType.INT64, value.dims, data, `${name}_pruned`);
        break;
      }
    }
  }
  // One slice per (node, input): a weight pruned on both axes is cut once; identical cuts of a shared weight share one tensor.
  const cache = new Map<string, string>();
  for (const { node, slot } of slotKeys) {
    const byAxis = slices.get(node)!.get(slot)!;
    const name = node.input?.[slot] ?? '';
    const t = writer.get(name);
    if (t === undefined) continue;
    const key = `${name}|${[...byAxis].sort((a, b) => a[0] - b[0]).map(([axis, idx]) => `${axis}:${idx.join(',')}`).join('|')}`;
    const hit = cache.get(key);
    if (hit !== undefined) {
      writer.reuse(node, slot, hit);
      continue;
    }
    const sliced = sliceAxes(tensorToFloat32(t), tensorDims(t), byAxis);
    cache.set(key, writer.write(node, slot, sliced.dims, sliced.data, `${name}_pruned`));
  }
  const changed = new Set<string>();
  for (const [value, layout] of analysis.layouts) if (kept.touches(layout)) changed.add(value);
  dropValueInfo(graph, changed);
  return { slicedTensors: cache.size };
}
