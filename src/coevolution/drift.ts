import { scoreLogits } from './confidence.ts';
import { EdgevolveError } from '../errors/index.ts';

/** Counts of values in [0, 1] over `bins` equal bins (1 falls in the last). */
export class Histogram {
  readonly counts: Float64Array;
  total = 0;

  constructor(readonly bins: number) {
    if (!Number.isInteger(bins) || bins < 2) throw new EdgevolveError('E_COEVO_INVALID', `a histogram needs at least 2 bins, got ${bins}`);
    this.counts = new Float64Array(bins);
  }

  static of(values: ArrayLike<number>, bins: number): Histogram {
    const h = new Histogram(bins);
    for (let i = 0; i < values.length; i++) h.add(values[i]!);
    return h;
  }

  add(value: number): void {
    const bin = Math.min(this.bins - 1, Math.max(0, Math.floor(value * this.bins)));
    this.counts[bin] = this.counts[bin]! + 1;
    this.total++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  toJSON(): { bins: number; counts: number[] } {
    return { bins: this.bins, counts: Array.from(this.counts) };
  }
}

/**
 * Population stability index, sum over bins of (live - ref) * ln(live / ref) on the bin
 * shares; empty bins get `epsilon` so the logarithm stays finite. The usual reading:
 * < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
 */
export function psi(reference: Histogram, live: Histogram, epsilon = 1e-4): number {
  checkComparable(reference, live);
  let sum = 0;
  for (let b = 0; b < reference.bins; b++) {
    const r = Math.max(epsilon, reference.counts[b]! / reference.total);
    const l = Math.max(epsilon, live.counts[b]! / live.total);
    sum += (l - r) * Math.log(l / r);
  }
  return sum;
}

/** KL(live || reference) on the bin shares, with the same epsilon smoothing as `psi`. */
export function klDivergence(reference: Histogram, live: Histogram, epsilon = 1e-4): number {
  checkComparable(reference, live);
  let sum = 0;
  for (let b = 0; b < reference.bins; b++) {
    const r = Math.max(epsilon, reference.counts[b]! / reference.total);
    const l = Math.max(epsilon, live.counts[b]! / live.total);
    sum += l * Math.log(l / r);
  }
  return sum;
}

function checkComparable(reference: Histogram, live: Histogram): void {
  if (reference.bins !== live.bins) throw new EdgevolveError('E_COEVO_INVALID', `histograms have ${reference.bins} and ${live.bins} bins`);
  if (reference.total === 0 || live.total === 0) throw new EdgevolveError('E_COEVO_INVALID', 'a drift score needs non-empty histograms');
}

export interface DriftOptions {
  readonly bins: number;
  /** Inferences recorded as the reference right after a deployment. */
  readonly referenceSize: number;
  /** The live histograms are scored every `windowSize` inferences, then start afresh. */
  readonly windowSize: number;
  /** An event fires when the score rises above this. */
  readonly threshold: number;
  /**
   * Hysteresis: after an event the monitor re-arms (with a "cleared" event) only once a
   * window scores below this, so a score wobbling around `threshold` does not flap.
   * Default threshold / 2.
   */
  readonly clearBelow?: number | undefined;
}

export interface DriftReport {
  readonly model: string;
  readonly version: string;
  /** max(PSI of max-probability, PSI of normalized entropy). */
  readonly score: number;
  readonly psiMaxProbability: number;
  readonly psiEntropy: number;
  readonly klMaxProbability: number;
  readonly window: number;
  /** True while the model counts as drifted: from a window above `threshold` until one below `clearBelow`. */
  readonly drifted: boolean;
}

/** Receives drift reports (telemetry) and threshold crossings (events); wired by the composition root. */
export interface DriftSink {
  report(report: DriftReport): void;
  /** A crossing: `report.drifted` true when the score rose above the threshold, false when it cleared. */
  event(report: DriftReport): void;
}

interface ModelDrift {
  version: string;
  refMax: Histogram;
  refEntropy: Histogram;
  liveMax: Histogram;
  liveEntropy: Histogram;
  above: boolean;
  last: DriftReport | undefined;
}

/**
 * Drift detection per model: the first `referenceSize` answers after a (new) version
 * starts are its reference distribution of confidence and entropy; afterwards every
 * `windowSize` answers are compared with it by PSI. An InferenceObserver of the serving path.
 */
export class DriftMonitor {
  private readonly models = new Map<string, ModelDrift>();

  constructor(private readonly options: DriftOptions, private readonly sink: DriftSink) {}

  onInference(event: { readonly model: string; readonly version: string; readonly localOutputs: Readonly<Record<string, { readonly dims: readonly number[]; readonly data: unknown }>> | undefined }): void {
    const output = event.localOutputs === undefined ? undefined : Object.values(event.localOutputs)[0];
    if (output === undefined || !(output.data instanceof Float32Array)) return;
    const rows = output.dims[0] ?? 1;
    const classes = output.data.length / rows;
    if (!Number.isInteger(classes) || classes < 2) return;
    for (let row = 0; row < rows; row++) {
      const scores = scoreLogits(output.data, row, classes);
      this.observe(event.model, event.version, scores.maxProbability, scores.normalizedEntropy);
    }
  }

  /** Records one answer's confidence (max probability) and normalized entropy. */
  observe(model: string, version: string, maxProbability: number, normalizedEntropy: number): void {
    let state = this.models.get(model);
    if (state === undefined || state.version !== version) {
      const { bins } = this.options;
      state = { version, refMax: new Histogram(bins), refEntropy: new Histogram(bins), liveMax: new Histogram(bins), liveEntropy: new Histogram(bins), above: false, last: undefined };
      this.models.set(model, state);
    }
    if (state.refMax.total < this.options.referenceSize) {
      state.refMax.add(maxProbability);
      state.refEntropy.add(normalizedEntropy);
      return;
    }
    state.liveMax.add(maxProbability);
    state.liveEntropy.add(normalizedEntropy);
    if (state.liveMax.total < this.options.windowSize) return;
    const psiMax = psi(state.refMax, state.liveMax);
    const psiEntropy = psi(state.refEntropy, state.liveEntropy);
    const score = Math.max(psiMax, psiEntropy);
    const clearBelow = this.options.clearBelow ?? this.options.threshold / 2;
    const drifted = state.above ? score >= clearBelow : score > this.options.threshold;
    const report: DriftReport = {
      model, version, score, psiMaxProbability: psiMax, psiEntropy, klMaxProbability: klDivergence(state.refMax, state.liveMax), window: state.liveMax.total, drifted,
    };
    state.last = report;
    state.liveMax.reset();
    state.liveEntropy.reset();
    this.sink.report(report);
    if (drifted !== state.above) this.sink.event(report);
    state.above = drifted;
  }

  /** The last report per model, for telemetry snapshots. */
  latest(): DriftReport[] {
    return [...this.models.values()].flatMap((m) => (m.last === undefined ? [] : [m.last]));
  }
}
