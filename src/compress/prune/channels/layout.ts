/**
 * The data model of structured pruning (after DepGraph, arXiv 2301.12900, applied to
 * an ONNX graph). An *atom* is a set of channels created by one producer (a Conv,
 * ConvTranspose, Gemm or MatMul output) or of unknown origin. A value's *layout* says
 * how its channel axis is made of atoms: Concat lays several side by side, Flatten
 * spreads each channel over H·W features. Residual joins unite atoms into *groups*
 * that must lose the same channel indices. Edits record what to slice once the kept
 * channels of every group are chosen.
 */
import type { NodeProto } from '../../../onnx/index.ts';

export interface Segment {
  readonly atom: number;
  /** Channels in this segment (the atom's length). */
  readonly length: number;
}

export interface Layout {
  readonly segments: readonly Segment[];
  /** The channel axis counted from the end (-1 for [N, C] and [.., K], -3 for NCHW). */
  readonly axis: number;
  /** The value's rank when known. */
  readonly rank: number | undefined;
  /** Features per channel along the axis: 1 normally, H·W after Flatten; 0 while not yet known (resolved by the consumer's weight). */
  readonly spread: number;
}

export interface Atom {
  readonly id: number;
  readonly length: number;
  /** The node whose weights create these channels; undefined for graph inputs and opaque producers. */
  readonly source: NodeProto | undefined;
  readonly blockers: string[];
}

/** Slice a node input's initializer along `axis` by the kept features of `layout` (consumers, per-channel parameters). */
export interface LayoutEdit {
  readonly kind: 'layout';
  readonly node: NodeProto;
  readonly slot: number;
  readonly axis: number;
  readonly layout: Layout;
}

/** Slice a producer's weight (and bias) along its output-channel axis by the kept channels of `atom`. */
export interface SourceEdit {
  readonly kind: 'source';
  readonly node: NodeProto;
  readonly slot: number;
  readonly axis: number;
  readonly atom: number;
}

/** Set a depthwise Conv's `group` to the kept channel count of `layout`. */
export interface GroupEdit {
  readonly kind: 'group';
  readonly node: NodeProto;
  readonly layout: Layout;
}

/** Rewrite element `index` of an int64 constant input (Reshape shape, Resize sizes) that encodes the feature count. */
export interface CountEdit {
  readonly kind: 'count';
  readonly node: NodeProto;
  readonly slot: number;
  readonly index: number;
  readonly layout: Layout;
  /** The value the constant holds now; the new value scales it by kept/total features. */
  readonly oldValue: number;
}

export type Edit = LayoutEdit | SourceEdit | GroupEdit | CountEdit;

/** Union-find over atoms. */
export class AtomSet {
  readonly atoms: Atom[] = [];
  private readonly parent: number[] = [];

  create(length: number, source: NodeProto | undefined, blocker?: string): number {
    const id = this.atoms.length;
    this.atoms.push({ id, length, source, blockers: blocker === undefined ? [] : [blocker] });
    this.parent.push(id);
    return id;
  }

  find(id: number): number {
    let root = id;
    while (this.parent[root] !== root) root = this.parent[root]!;
    let walk = id;
    while (this.parent[walk] !== root) {
      const next = this.parent[walk]!;
      this.parent[walk] = root;
      walk = next;
    }
    return root;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }

  block(id: number, reason: string): void {
    const blockers = this.atoms[id]!.blockers;
    if (!blockers.includes(reason) && blockers.length < 8) blockers.push(reason);
  }

  blockLayout(layout: Layout, reason: string): void {
    for (const s of layout.segments) this.block(s.atom, reason);
  }

  /** Atoms grouped by root, in atom order. */
  groups(): Map<number, number[]> {
    const out = new Map<number, number[]>();
    for (const a of this.atoms) {
      const root = this.find(a.id);
      let list = out.get(root);
      if (list === undefined) out.set(root, (list = []));
      list.push(a.id);
    }
    return out;
  }
}

export function totalChannels(layout: Layout): number {
  return layout.segments.reduce((a, s) => a + s.length, 0);
}
