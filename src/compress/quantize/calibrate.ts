/**
 * Calibration: the real range of every tensor the static quantizer will quantize,
 * measured by running the float model on sample data (compression.md §1.5).
 *
 * The model runs unoptimized (onnxruntime's ORT_DISABLE_ALL), so tensor names are
 * the ones the quantizer sees. Ranges come from ReduceMin/ReduceMax nodes added as
 * extra outputs (two scalars per tensor per batch, not the tensors). Percentile and
 * entropy need histograms, so a second pass exposes the tensors themselves, a chunk
 * of them per run, and folds each batch into fixed-range histograms as it arrives:
 * memory stays at one batch of one chunk.
 *
 * Runs no files itself: the caller passes the data (batches of feeds) and a way to
 * open a session (see compress/index.ts for the wiring).
 */
import { EdgevolveError } from '../../errors/index.ts';
import { cloneModel } from '../clone.ts';
import { encodeModel, makeNode, makeValueInfo, NameScope } from '../../onnx/index.ts';
import { DataType, type ModelProto, type TensorValue } from '../../onnx/index.ts';
import type { TensorRanges } from './static-qdq.ts';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface CalibrationOptions {
  readonly method: CalibrationMethod;
  /** Percentile method: the share of |x| kept, in percent (onnxruntime's default 99.999). */
  readonly percentile?: number;
  /** Histogram bins: onnxruntime's defaults, 2048 for percentile and 128 for entropy (with 128 quantized bins that is a single candidate window; TensorRT-style searches use 2048). */
  readonly bins?: number;
  /** Entropy method: quantized bins the KL search compares against (128 for 8 bits). */
  readonly quantizedBins?: number;
  /** Histogram pass: at most this many tensors exposed per run. Default 256. */
  readonly tensorsPerRun?: number;
  /** Histogram pass: at most this many bytes of exposed tensors per batch (sizes measured in the min/max pass). Default 256 MiB. */
  readonly bytesPerRun?: number;
}

/** An open model that runs feeds and returns the requested outputs. */
export interface CalibrationSession {
  run(feeds: Readonly<Record<string, TensorValue>>, outputNames: readonly string[]): Promise<Record<string, TensorValue>>;
  release(): Promise<void>;
}

/** Opens a session on model bytes with graph optimizations disabled. */
export type OpenCalibrationSession = (modelBytes: Uint8Array) => Promise<CalibrationSession>;

/** Yields the calibration data as feeds, from the start, each time it is called. */
export type CalibrationFeeds = () => AsyncIterable<Readonly<Record<string, TensorValue>>>;

export interface CalibrationResult {
  readonly ranges: TensorRanges;
  readonly batches: number;
  /** Tensors that were never observed with a value (empty tensors, or not computed). */
  readonly unobserved: readonly string[];
}

export async function calibrate(
  model: ModelProto,
  tensors: readonly string[],
  feeds: CalibrationFeeds,
  open: OpenCalibrationSession,
  options: CalibrationOptions,
): Promise<CalibrationResult> {
  const minmax = await collectMinMax(model, tensors, feeds, open);
  if (minmax.batches === 0) throw new EdgevolveError('E_DATA_SET_INVALID', 'the calibration data set has no samples');
  const unobserved = tensors.filter((t) => !minmax.ranges.has(t));
  if (options.method === 'minmax') return { ranges: minmax.ranges, batches: minmax.batches, unobserved };
  const bins = options.bins ?? (options.method === 'entropy' ? 128 : 2048);
  const symmetricAbs = options.method === 'percentile';
  const histograms = new Map<string, Histogram>();
  for (const [t, [lo, hi]] of minmax.ranges) {
    const bound = Math.max(Math.abs(lo), Math.abs(hi));
    histograms.set(t, new Histogram(symmetricAbs ? 0 : -bound, bound, bins, lo, hi));
  }
  const chunks = chunkBySize([...histograms.keys()], minmax.elements, options.tensorsPerRun ?? 256, options.bytesPerRun ?? 256 << 20);
  await collectHistograms(model, chunks, feeds, open, histograms, symmetricAbs);
  const ranges = new Map<string, readonly [number, number]>();
  for (const [t, h] of histograms) {
    ranges.set(t, options.method === 'percentile' ? percentileRange(h, options.percentile ?? 99.999) : entropyRange(h, options.quantizedBins ?? 128));
  }
  return { ranges, batches: minmax.batches, unobserved };
}

/** A model whose extra outputs are ReduceMin/ReduceMax of each tensor (keepdims=0: one scalar each). */
export function augmentForMinMax(model: ModelProto, tensors: readonly string[]): { model: ModelProto; outputs: Map<string, [string, string, string]> } {
  const copy = cloneModel(model);
  const graph = copy.graph!;
  const names = new NameScope(graph);
  const outputs = new Map<string, [string, string, string]>();
  for (const t of tensors) {
    const lo = names.fresh(`${t}_ReduceMin`);
    const hi = names.fresh(`${t}_ReduceMax`);
    // The element count sizes the histogram pass's chunks; a scalar too.
    const size = names.fresh(`${t}_Size`);
    graph.node!.push(
      makeNode('ReduceMin', [t], [lo], { keepdims: 0 }, { name: names.fresh(`${t}_ReduceMin_node`) }),
      makeNode('ReduceMax', [t], [hi], { keepdims: 0 }, { name: names.fresh(`${t}_ReduceMax_node`) }),
      makeNode('Size', [t], [size], {}, { name: names.fresh(`${t}_Size_node`) }),
    );
    graph.output!.push(makeValueInfo(lo, DataType.FLOAT, []), makeValueInfo(hi, DataType.FLOAT, []), makeValueInfo(size, DataType.INT64, []));
    outputs.set(t, [lo, hi, size]);
  }
  return { model: copy, outputs };
}

async function collectMinMax(model: ModelProto, tensors: readonly string[], feeds: CalibrationFeeds, open: OpenCalibrationSession) {
  const { model: augmented, outputs } = augmentForMinMax(model, tensors);
  const fetch = [...outputs.values()].flat();
  const mins = new Map<string, number>();
  const maxs = new Map<string, number>();
  const elements = new Map<string, number>();
  let batches = 0;
  const session = await open(encodeModel(augmented));
  try {
    for await (const feed of feeds()) {
      const result = await session.run(feed, fetch);
      batches += 1;
      for (const [t, [lo, hi, size]] of outputs) {
        const a = scalar(result[lo]);
        const b = scalar(result[hi]);
        const n = result[size]?.data;
        if (n instanceof BigInt64Array && n.length > 0) elements.set(t, Math.max(elements.get(t) ?? 0, Number(n[0])));
        // nanmin/nanmax across batches, as onnxruntime does.
        if (!Number.isNaN(a) && Number.isFinite(a)) mins.set(t, Math.min(mins.get(t) ?? Infinity, a));
        if (!Number.isNaN(b) && Number.isFinite(b)) maxs.set(t, Math.max(maxs.get(t) ?? -Infinity, b));
      }
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, readonly [number, number]>();
  for (const t of tensors) {
    const lo = mins.get(t);
    const hi = maxs.get(t);
    if (lo !== undefined && hi !== undefined) ranges.set(t, [lo, hi]);
  }
  return { ranges, batches, elements };
}

/** Groups tensors so that one batch of each group stays under the byte budget. */
function chunkBySize(tensors: readonly string[], elements: ReadonlyMap<string, number>, maxTensors: number, maxBytes: number): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const t of tensors) {
    const b = (elements.get(t) ?? 0) * 4;
    if (current.length > 0 && (current.length >= maxTensors || bytes + b > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(t);
    bytes += b;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function scalar(v: TensorValue | undefined): number {
  if (v === undefined || !(v.data instanceof Float32Array) || v.data.length === 0) return NaN;
  return v.data[0]!;
}

async function collectHistograms(
  model: ModelProto,
  chunks: readonly (readonly string[])[],
  feeds: CalibrationFeeds,
  open: OpenCalibrationSession,
  histograms: Map<string, Histogram>,
  absolute: boolean,
): Promise<void> {
  for (const chunk of chunks) {
    const copy = cloneModel(model);
    const declared = new Set((copy.graph!.output ?? []).map((o) => o.name));
    for (const t of chunk) if (!declared.has(t)) copy.graph!.output!.push(makeValueInfo(t, DataType.FLOAT, null));
    const session = await open(encodeModel(copy));
    try {
      for await (const feed of feeds()) {
        const result = await session.run(feed, chunk);
        for (const t of chunk) {
          const v = result[t];
          if (v !== undefined && v.data instanceof Float32Array) histograms.get(t)!.add(v.data, absolute);
        }
      }
    } finally {
      await session.release();
    }
  }
}

/** A fixed-range histogram (numpy.histogram semantics: the last bin includes its right edge). */
export class Histogram {
  readonly counts: Float64Array;
  constructor(
    readonly lo: number,
    readonly hi: number,
    readonly bins: number,
    /** The observed minimum and maximum, which thresholds are clamped to. */
    readonly observedMin: number,
    readonly observedMax: number,
  ) {
    this.counts = new Float64Array(bins);
  }

  /** Adds values (their absolute values when `absolute`). */
  add(data: Float32Array, absolute: boolean): void {
    const { lo, hi, bins, counts } = this;
    const width = hi - lo;
    if (!(width > 0)) {
      counts[0]! += data.length;
      return;
    }
    const k = bins / width;
    const last = bins - 1;
    for (let i = 0; i < data.length; i++) {
      let x = data[i]!;
      if (absolute && x < 0) x = -x;
      if (!(x >= lo && x <= hi)) continue;
      let b = Math.floor((x - lo) * k);
      if (b > last) b = last;
      counts[b]! += 1;
    }
  }

  edge(i: number): number {
    return this.lo + ((this.hi - this.lo) * i) / this.bins;
  }
}

/**
 * onnxruntime's percentile threshold: symmetric over |x| (the histogram is of |x|):
 * edge[searchsorted(cdf, p/100)], range ±that, clamped to the observed [min, max].
 */
export function percentileRange(h: Histogram, percentile: number): [number, number] {
  let total = 0;
  for (const c of h.counts) total += c;
  if (total === 0) return [h.observedMin, h.observedMax];
  const target = percentile / 100;
  let cumulative = 0;
  let index = h.bins - 1;
  for (let i = 0; i < h.bins; i++) {
    cumulative += h.counts[i]!;
    if (cumulative / total >= target) {
      index = i;
      break;
    }
  }
  const t = h.edge(index);
  return [Math.max(-t, h.observedMin), Math.min(t, h.observedMax)];
}

/**
 * The TensorRT / onnxruntime entropy threshold: for each symmetric window of the
 * histogram around zero, KL(p‖q) between the window (outliers folded into its end
 * bins) and its `quantizedBins`-level quantization expanded back over p's non-zero
 * bins; the window with the least divergence wins, clamped to the observed range.
 */
export function entropyRange(h: Histogram, quantizedBins: number): [number, number] {
  const hist = h.counts;
  const numBins = h.bins;
  const zeroBin = Math.floor(numBins / 2);
  const halfQ = Math.floor(quantizedBins / 2);
  let best = Infinity;
  let bestPair: [number, number] = [h.edge(0), h.edge(numBins)];
  const prefix = new Float64Array(numBins + 1);
  for (let i = 0; i < numBins; i++) prefix[i + 1] = prefix[i]! + hist[i]!;
  const p = new Float64Array(numBins);
  const q = new Float64Array(numBins);
  for (let i = halfQ; i <= zeroBin; i++) {
    const start = zeroBin - i;
    const end = Math.min(zeroBin + i + 1, numBins);
    const size = end - start;
    if (size < quantizedBins) continue;
    for (let j = 0; j < size; j++) p[j] = hist[start + j]!;
    p[0]! += prefix[start]!;
    p[size - 1]! += prefix[numBins]! - prefix[end]!;
    // Merge the window into quantizedBins buckets (the remainder goes to the last), then expand back.
    const merged = Math.floor(size / quantizedBins);
    q.fill(0, 0, size);
    for (let b = 0; b < quantizedBins; b++) {
      const s = b * merged;
      const e = b === quantizedBins - 1 ? size : s + merged;
      let sum = 0;
      let nonzero = 0;
      for (let j = s; j < e; j++) {
        sum += hist[start + j]!;
        if (p[j] !== 0) nonzero += 1;
      }
      if (nonzero === 0) continue;
      const share = sum / nonzero;
      for (let j = s; j < e; j++) if (p[j] !== 0) q[j] = share;
    }
    const kl = klDivergence(p, q, size);
    if (kl < best) {
      best = kl;
      bestPair = [h.edge(start), h.edge(end)];
    }
  }
  return [Math.max(bestPair[0], h.observedMin), Math.min(bestPair[1], h.observedMax)];
}

const SMOOTH_EPS = 1e-4;

/** KL(p‖q) after onnxruntime's smooth_distribution (zeros get eps, taken from the non-zeros) and normalization. */
function klDivergence(p: Float64Array, q: Float64Array, n: number): number {
  const sp = smooth(p, n);
  const sq = smooth(q, n);
  if (sp === undefined || sq === undefined) return Infinity;
  let sumP = 0;
  let sumQ = 0;
  for (let i = 0; i < n; i++) {
    sumP += sp[i]!;
    sumQ += sq[i]!;
  }
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const a = sp[i]! / sumP;
    const b = sq[i]! / sumQ;
    if (a > 0) kl += a * Math.log(a / b);
  }
  return kl;
}

function smooth(x: Float64Array, n: number): Float64Array | undefined {
  let zeros = 0;
  for (let i = 0; i < n; i++) if (x[i] === 0) zeros += 1;
  const nonzeros = n - zeros;
  if (nonzeros === 0) return undefined;
  const eps1 = (SMOOTH_EPS * zeros) / nonzeros;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = x[i] === 0 ? SMOOTH_EPS : x[i]! - eps1;
  for (let i = 0; i < n; i++) if (out[i]! <= 0) return undefined;
  return out;
}
