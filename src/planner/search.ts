/**
 * The budget-driven search behind `edgevolve optimize`. Cheap predicates first, so
 * the device's time goes to candidates that can win:
 *   size (exact once built) → predicted latency (MACs × the profile's int8 speed-ups)
 *   → quick in-process latency against fp32 → accuracy on a subset → accuracy on the
 *   whole set → the isolated benchmark (p95, peak memory).
 * A candidate that cannot beat the best feasible one on the objective is skipped;
 * when uniform int8 loses too much accuracy, per-layer sensitivity builds mixed plans
 * that keep the most sensitive layers in fp32. Every candidate ends with a status and
 * the reason, for the report.
 */
import { calibrationFeeds } from '../compress/index.ts';
import { checkAgainstModel, type Dataset } from '../data/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { ModelProto } from '../onnx/index.ts';
import { createSession } from '../runtime/index.ts';
import { chooseMetric, describeMetric, subsetNoiseMargin, type AccuracyMetric, type AccuracyScore } from './accuracy.ts';
import { budgetMisses, describeMiss, relaxAdvice, type BudgetMiss, type Budgets, type Objective } from './budgets.ts';
import { CandidateBuilder, type BuildContext, type BuiltCandidate } from './build.ts';
import { describeCandidate, uniformCandidates, DEFAULT_PRUNE_RATIOS, DEFAULT_PRUNE_THEN_QUANTIZE_RATIOS, type CandidateSpec, type MixedFamily } from './candidates.ts';
import { countMacs, deviceSpeed, macsByOpType, predictLatencyRatio, type CostPlan, type DeviceSpeed, type NodeMacs } from './cost.ts';
import { evaluateSessions } from './evaluate.ts';
import { paretoFront } from './pareto.ts';
import { ReferenceProbe } from './probe.ts';
import { throwIfCancelled } from './cancel.ts';

/** Numbers from the isolated benchmark (runtime/bench in production). */
export interface BenchNumbers {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  /** Peak resident memory above the child's baseline. */
  readonly peakBytes: number;
}

export interface OptimizeDeps {
  /**
   * Benchmarks model bytes in isolation on the given inputs' shapes (their first dimension is the batch); throws
   * EdgevolveError when the model fails. `expectedMs` (an in-process estimate of one
   * run) lets it size the run count.
   */
  bench(bytes: Uint8Array, shapes: Readonly<Record<string, readonly number[]>>, expectedMs: number, signal?: AbortSignal): Promise<BenchNumbers>;
  /** Milliseconds, monotonic. */
  now(): number;
  /** One line of progress (the CLI writes it to stderr). */
  progress(line: string): void;
  /** The profile's measured int8/fp32 speed (null when not measured). */
  readonly measured: { readonly gemmInt8Speedup: number; readonly convInt8Speedup: number } | null;
  readonly cpu?: BuildContext['cpu'];
  /**
   * Cancels the search: checked between candidates and inside every long loop (calibration
   * batches, evaluation batches, quick-latency rounds), and it kills a running benchmark
   * child; the search then rejects with E_PLAN_CANCELLED.
   */
  readonly signal?: AbortSignal;
}

export interface OptimizeOptions {
  readonly budgets: Budgets;
  readonly objective: Objective;
  /** Wall-time limit of the search, seconds. */
  readonly timeLimitS: number;
  readonly threads: number;
  /** Samples per run in every latency measurement, quick and isolated (default 1): a device that serves batches is judged at its batch. */
  readonly batch?: number;
  /** Samples of the accuracy pre-check. */
  readonly subsetSamples: number;
  /** Samples of the per-layer sensitivity measurement. */
  readonly sensitivitySamples: number;
  /** Samples used to calibrate int8-static. */
  readonly calibrationSamples: number;
  /** Evaluate at most this many samples in the full accuracy check (all when undefined). */
  readonly evalSamples?: number | undefined;
  /** Wall time of each quick latency estimate, ms. */
  readonly quickMs: number;
  /** Stop after this many candidates reached the full checks. */
  readonly maxFullCandidates: number;
  /** Try only these uniform candidates (ids as the report shows them; fp32 is always measured). */
  readonly only?: readonly string[] | undefined;
  readonly pruneRatios?: readonly number[];
  readonly pruneThenQuantizeRatios?: readonly number[];
  /** Search mixed plans when uniform int8 misses the accuracy budget (default true). */
  readonly mixed?: boolean;
  readonly maxSensitivityLayers: number;
}

export type CandidateStatus = 'chosen' | 'feasible' | 'rejected' | 'skipped' | 'predicted-only';

/** The last check a candidate went through. */
export type Stage = 'planned' | 'built' | 'size' | 'predicted-latency' | 'quick-latency' | 'subset-accuracy' | 'full-accuracy' | 'bench';

export interface CandidateRecord {
  readonly id: string;
  readonly plan: string;
  readonly steps: CandidateSpec['steps'];
  status: CandidateStatus;
  reason: string;
  stage: Stage;
  sizeBytes: number | null;
  int8Nodes: number | null;
  predictedLatencyRatio: number | null;
  predictedP95Ms: number | null;
  quickLatencyRatio: number | null;
  quickP95Ms: number | null;
  subset: AccuracyScore | null;
  accuracy: AccuracyScore | null;
  bench: BenchNumbers | null;
  misses: BudgetMiss[];
  warnings: readonly string[];
}

/** The cost plan a candidate's steps imply before it is built: int8 on the heavy nodes its method quantizes, pruning as MACs kept ≈ 1 − ratio. */
function plannedCost(spec: CandidateSpec, macs: readonly NodeMacs[]): CostPlan {
  const int8 = new Set<string>();
  let macsRatio = 1;
  for (const step of spec.steps) {
    switch (step.kind) {
      case 'fold':
      case 'fp16':
        break;
      case 'int8-dynamic':
        for (const n of macs) if (n.opType === 'MatMul' || n.opType === 'Gemm') int8.add(n.node);
        break;
      case 'int8-static':
        for (const n of macs) int8.add(n.node);
        break;
      case 'prune-channels':
        macsRatio *= 1 - step.ratio;
        break;
      case 'mixed':
        for (const n of step.int8Nodes) int8.add(n);
        break;
    }
  }
  return { int8Nodes: int8, macsRatio };
}

export interface SensitivityLayer {
  readonly node: string;
  readonly opType: string;
  readonly macs: number;
  /** Accuracy drop (points, on the sensitivity samples) with only this layer in int8. */
  readonly drop: number;
  /** 1 − mean cosine of the output with only this layer in int8. */
  readonly error: number;
  /**
   * Accuracy drop with every other layer of the family in int8 and only this one reverted to fp32
   * (NNCF-style): catches layers whose error only shows together with the others'.
   */
  readonly revertedDrop: number;
}

export interface OptimizeResult {
  readonly metric: AccuracyMetric & { readonly description: string };
  readonly budgets: Budgets;
  readonly objective: Objective;
  /** Samples per run in the latency measurements. */
  readonly batch: number;
  readonly baseline: { readonly score: number; readonly sizeBytes: number; readonly p95Ms: number; readonly peakBytes: number; readonly samples: number };
  readonly device: DeviceSpeed & { readonly measured: boolean };
  readonly macsByOpType: Readonly<Record<string, number>>;
  readonly candidates: readonly CandidateRecord[];
  readonly pareto: readonly string[];
  readonly chosen: { readonly id: string; readonly reason: string } | null;
  /** The chosen model's bytes (not in the JSON report). */
  readonly chosenBytes: Uint8Array | null;
  /** When nothing is feasible: the closest candidates, what they miss, and what to relax. */
  readonly failure: { readonly closest: readonly { readonly id: string; readonly misses: readonly BudgetMiss[]; readonly relax: readonly string[] }[]; readonly summary: string } | null;
  readonly sensitivity: { readonly family: string; readonly samples: number; readonly layers: readonly SensitivityLayer[] } | null;
  readonly counts: { readonly candidates: number; readonly built: number; readonly full: number; readonly benched: number };
  readonly wallMs: number;
  readonly stoppedBy: 'done' | 'time-limit' | 'max-full-candidates';
}

/** Runs the search. `model` is the input as decoded; `dataset` is opened by the caller (and closed by it). */
export async function optimize(model: ModelProto, dataset: Dataset, options: OptimizeOptions, deps: OptimizeDeps): Promise<OptimizeResult> {
  return new Search(model, dataset, options, deps).run();
}

class Search {
  private readonly started: number;
  private readonly records: CandidateRecord[] = [];
  private readonly built = new Map<string, BuiltCandidate>();
  private readonly specs = new Map<string, CandidateSpec>();
  private builder!: CandidateBuilder;
  private reference!: ReferenceProbe;
  private metric!: AccuracyMetric;
  private baselineFull = 100;
  private baselineSubset = 100;
  /** fp32's labelled score on the first N samples, for the sample counts the search uses. */
  private readonly baselineBySamples = new Map<number, number>();
  private fp32P95 = 0;
  private fp32QuickMs = 0;
  private shapes: Record<string, number[]> = {};
  private macs: NodeMacs[] = [];
  private readonly macsCache = new Map<ModelProto, Promise<NodeMacs[]>>();
  private readonly speed: DeviceSpeed;
  private fullCount = 0;
  private benchCount = 0;
  private stoppedBy: OptimizeResult['stoppedBy'] = 'done';
  private sensitivity: OptimizeResult['sensitivity'] = null;

  constructor(
    private readonly model: ModelProto,
    private readonly dataset: Dataset,
    private readonly options: OptimizeOptions,
    private readonly deps: OptimizeDeps,
  ) {
    this.started = deps.now();
    this.speed = deviceSpeed(deps.measured);
  }

  async run(): Promise<OptimizeResult> {
    const { options, deps } = this;
    this.checkCancelled();
    this.builder = new CandidateBuilder({ cpu: deps.cpu });
    const fp32 = await this.build({ id: 'fp32', steps: [{ kind: 'fold' }] });
    this.reference = await ReferenceProbe.open(fp32.bytes, this.dataset, { threads: options.threads, quickMs: options.quickMs, batch: options.batch ?? 1, signal: deps.signal });
    try {
      // int8-static calibrates on the first samples of the data set (one per model input).
      this.builder = new CandidateBuilder({ cpu: deps.cpu, calibration: calibrationFrom(this.dataset, this.reference.session.inputs, options.calibrationSamples, deps.signal) });
      return await this.searchWithReference(fp32);
    } finally {
      await this.reference.release();
    }
  }

  private async searchWithReference(fp32: BuiltCandidate): Promise<OptimizeResult> {
    const { options, deps } = this;
    this.shapes = Object.fromEntries(Object.entries(this.reference.feeds).map(([k, v]) => [k, [...v.dims]]));
    this.macs = await this.macsOf(fp32);
    this.fp32QuickMs = await this.reference.medianMs();

    // The baseline: fp32's own accuracy (labels) and its isolated latency.
    const self = await evaluateSessions(this.reference.session, this.dataset.hasLabels ? undefined : this.reference.session, this.dataset, {
      limit: Math.min(this.options.subsetSamples, this.dataset.size),
      signal: deps.signal,
    });
    const firstOutput = this.reference.session.outputs[0]?.name ?? '';
    this.metric = chooseMetric(self, firstOutput, this.reference.session.outputs[0]?.shape.length ?? 0);
    if (this.metric.kind === 'top1-labels') {
      this.baselineSubset = (self.accuracy?.top1 ?? 0) * 100;
      const full = await evaluateSessions(this.reference.session, undefined, this.dataset, { ...this.evalLimit(), signal: deps.signal });
      this.baselineFull = (full.accuracy?.top1 ?? 0) * 100;
    }
    deps.progress(`accuracy metric: ${describeMetric(this.metric)}; fp32 scores ${this.baselineFull.toFixed(2)}`);

    const fp32Record = this.newRecord({ id: 'fp32', steps: [{ kind: 'fold' }] }, fp32);
    fp32Record.predictedLatencyRatio = 1;
    fp32Record.quickLatencyRatio = 1;
    fp32Record.subset = { samples: Math.min(options.subsetSamples, this.dataset.size), score: this.baselineSubset, drop: 0, disagreement: 0 };
    fp32Record.accuracy = { samples: this.evalLimit().limit ?? this.dataset.size, score: this.baselineFull, drop: 0, disagreement: 0 };
    this.fullCount++;
    // fp32's p95 scales every quick estimate and is the bar the others are judged against, and one preempted run on a
    // loaded device inflates it (mnist-mlp at batch 512: p50 3.95 ms, p95 8.19 ms in one run, 5.27 ms in the next,
    // which rejected every int8 variant on its quick estimate): measured twice, the lower p95 kept.
    const first = await this.bench(fp32Record, fp32.bytes);
    const second = first === null ? null : await this.bench(fp32Record, fp32.bytes);
    const fp32Bench = first === null || second === null ? first : first.p95Ms <= second.p95Ms ? first : second;
    if (fp32Bench === null) throw new EdgevolveError('E_BENCH_CRASHED', `the fp32 model does not run in the benchmark: ${fp32Record.reason}`);
    fp32Record.bench = fp32Bench;
    this.fp32P95 = fp32Bench.p95Ms;
    fp32Record.predictedP95Ms = this.fp32P95;
    fp32Record.quickP95Ms = this.fp32P95;
    this.judge(fp32Record);

    // The uniform candidates, predicted from their plan. They are built when their turn comes (size is
    // exact then, before any run), except under the size objective, where the size orders the search.
    const specs = uniformCandidates({
      pruneRatios: options.pruneRatios ?? DEFAULT_PRUNE_RATIOS,
      pruneThenQuantizeRatios: options.pruneThenQuantizeRatios ?? DEFAULT_PRUNE_THEN_QUANTIZE_RATIOS,
      static: this.builder.canCalibrate,
    }).filter((s) => s.id !== 'fp32' && (options.only === undefined || options.only.includes(s.id)));
    const pending: CandidateRecord[] = [];
    for (const spec of specs) {
      const rec = this.unbuiltRecord(spec, 'predicted-only', 'not measured');
      this.records.push(rec);
      this.specs.set(spec.id, spec);
      rec.predictedLatencyRatio = predictLatencyRatio(this.macs, plannedCost(spec, this.macs), this.speed);
      rec.predictedP95Ms = rec.predictedLatencyRatio * this.fp32P95;
      if (options.objective === 'size') {
        if (this.timeUp()) rec.reason = 'time limit reached before it was built';
        else await this.ensureBuilt(rec);
      }
      pending.push(rec);
    }
    deps.progress(`${pending.length + 1} candidates planned in ${((deps.now() - this.started) / 1000).toFixed(1)} s; fp32 p95 ${this.fp32P95.toFixed(3)} ms, size ${(fp32.bytes.length / 1024).toFixed(0)} KiB`);

    for (const rec of this.ordered(pending)) await this.consider(rec);

    if ((options.mixed ?? true) && options.budgets.maxAccuracyDrop !== undefined && !this.timeUp()) await this.searchMixed();

    return this.finish();
  }

  /** The most promising first, for the objective. */
  private ordered(records: CandidateRecord[]): CandidateRecord[] {
    const key = (r: CandidateRecord): number => {
      switch (this.options.objective) {
        case 'latency':
          return r.predictedP95Ms ?? Number.POSITIVE_INFINITY;
        case 'size':
          return r.sizeBytes ?? Number.POSITIVE_INFINITY;
        case 'accuracy':
          // Precision kept is what predicts accuracy before a run: fp16, then int8, then pruned.
          return (r.id.startsWith('fp16') ? 1 : r.id.startsWith('int8') ? 2 : 3) + (r.id.startsWith('prune') ? Number(r.id.slice(5).split('+')[0]) : 0);
      }
    };
    return [...records].sort((a, b) => key(a) - key(b));
  }

  /** Runs the checks on one built candidate in order of cost, stopping at the first that fails. */
  private async consider(rec: CandidateRecord, fullEvenIfSubsetFails = false): Promise<void> {
    this.checkCancelled();
    const { budgets } = this.options;
    const { deps } = this;
    const skip = (status: CandidateStatus, reason: string): void => {
      rec.status = status;
      rec.reason = reason;
    };
    if (this.timeUp()) return skip('predicted-only', 'time limit reached');
    if (this.fullCount >= this.options.maxFullCandidates) {
      this.stoppedBy = 'max-full-candidates';
      return skip('predicted-only', `the limit of ${this.options.maxFullCandidates} fully measured candidates was reached`);
    }
    // Checks that need no build come first.
    const best = this.best();
    if (best !== null && this.options.objective === 'accuracy' && (best.accuracy?.drop ?? 1) <= 0) {
      return skip('skipped', `cannot beat ${best.id} on accuracy (it loses nothing against fp32)`);
    }
    rec.stage = 'predicted-latency';
    // The prediction is crude (it knows nothing of Q/DQ overhead), so it only skips what it puts far out of reach.
    if (this.deps.measured !== null && budgets.latencyP95Ms !== undefined && rec.predictedP95Ms !== null && rec.predictedP95Ms > budgets.latencyP95Ms * 2) {
      return skip('skipped', `predicted p95 ${rec.predictedP95Ms.toFixed(3)} ms is over twice the budget of ${budgets.latencyP95Ms.toFixed(3)} ms`);
    }
    if (!(await this.ensureBuilt(rec))) return;
    const built = this.built.get(rec.id)!;
    const spec = this.specs.get(rec.id)!;
    if (spec.steps.some((st) => st.kind === 'int8-dynamic' || st.kind === 'int8-static') && built.int8Nodes.size === 0) {
      return skip('skipped', 'no node has an int8 form under this method: the same model as without it');
    }
    rec.stage = 'size';
    const sizeMiss = budgetMisses(budgets, { sizeBytes: rec.sizeBytes });
    if (sizeMiss.length > 0) {
      rec.misses = sizeMiss;
      return skip('rejected', `size: ${sizeMiss.map(describeMiss).join('; ')}`);
    }
    if (best !== null && this.options.objective === 'size' && rec.sizeBytes !== null && rec.sizeBytes >= (best.sizeBytes ?? 0)) {
      return skip('skipped', `cannot beat ${best.id} on size (${rec.sizeBytes} >= ${best.sizeBytes} bytes)`);
    }

    const probe = await this.reference.candidate(built.bytes);
    try {
      rec.stage = 'quick-latency';
      rec.quickLatencyRatio = await probe.quickLatencyRatio();
      rec.quickP95Ms = rec.quickLatencyRatio * this.fp32P95;
      deps.progress(`${rec.id}: ${(rec.sizeBytes! / 1024).toFixed(0)} KiB, quick latency ${rec.quickLatencyRatio.toFixed(2)}x fp32 (predicted ${rec.predictedLatencyRatio?.toFixed(2) ?? '?'}x)`);
      // In-process timing is noisier than the bench: reject only clear misses.
      if (budgets.latencyP95Ms !== undefined && rec.quickP95Ms > budgets.latencyP95Ms * 1.25) {
        rec.misses = budgetMisses(budgets, { p95Ms: rec.quickP95Ms });
        return skip('rejected', `quick latency estimate ${rec.quickP95Ms.toFixed(3)} ms (${rec.quickLatencyRatio.toFixed(2)}x fp32) is over the ${budgets.latencyP95Ms.toFixed(3)} ms budget by more than the estimate's 25% tolerance`);
      }
      // Both quick ratios were measured against the same fp32 session in this process, so they compare directly.
      const bestNow = this.best();
      if (bestNow !== null && this.options.objective === 'latency' && bestNow.quickLatencyRatio !== null && rec.quickLatencyRatio > bestNow.quickLatencyRatio * 1.25) {
        return skip('skipped', `cannot beat ${bestNow.id} on latency (quick estimate ${rec.quickLatencyRatio.toFixed(2)}x fp32 vs its ${bestNow.quickLatencyRatio.toFixed(2)}x)`);
      }

      rec.stage = 'subset-accuracy';
      const subsetLimit = Math.min(this.options.subsetSamples, this.dataset.size);
      rec.subset = await probe.score(this.metric, this.baselineSubset, subsetLimit);
      if (budgets.maxAccuracyDrop !== undefined && !fullEvenIfSubsetFails) {
        const margin = subsetNoiseMargin(rec.subset);
        if (rec.subset.drop - margin > budgets.maxAccuracyDrop) {
          rec.misses = budgetMisses(budgets, { accuracyDrop: rec.subset.drop });
          return skip('rejected', `accuracy on ${rec.subset.samples} samples drops ${rec.subset.drop.toFixed(2)} pt (> ${budgets.maxAccuracyDrop} pt + ${margin.toFixed(2)} pt subset noise)`);
        }
      }

      rec.stage = 'full-accuracy';
      this.fullCount++;
      rec.accuracy = await probe.score(this.metric, this.baselineFull, this.evalLimit().limit);
      deps.progress(`${rec.id}: accuracy ${rec.accuracy.score.toFixed(2)} (drop ${rec.accuracy.drop.toFixed(2)} pt on ${rec.accuracy.samples} samples)`);
      if (budgets.maxAccuracyDrop !== undefined && rec.accuracy.drop > budgets.maxAccuracyDrop) {
        rec.misses = budgetMisses(budgets, { accuracyDrop: rec.accuracy.drop, p95Ms: null });
        return skip('rejected', `accuracy: ${rec.misses.map(describeMiss).join('; ')}`);
      }
    } finally {
      await probe.release();
    }
    if (this.timeUp()) return skip('predicted-only', 'time limit reached before the benchmark');
    const numbers = await this.bench(rec, built.bytes);
    if (numbers === null) return;
    // Fair to fp32 (benchmarked twice): a candidate over the p95 budget by less than 25% gets a second run and keeps the
    // lower p95 — one preempted run on a loaded device otherwise decides (mnist-mlp's fc2-kept plan: p50 3.30 ms, p95 4.17 ms).
    const limit = budgets.latencyP95Ms;
    if (limit !== undefined && numbers.p95Ms > limit && numbers.p95Ms <= limit * 1.25 && !this.timeUp()) {
      const again = await this.bench(rec, built.bytes);
      rec.status = 'predicted-only';
      rec.bench = again === null || numbers.p95Ms <= again.p95Ms ? numbers : again;
    }
    this.judge(rec);
  }

  /** Runs the isolated benchmark; on failure the record says why and null is returned. */
  private async bench(rec: CandidateRecord, bytes: Uint8Array): Promise<BenchNumbers | null> {
    this.checkCancelled();
    rec.stage = 'bench';
    this.benchCount++;
    try {
      rec.bench = await this.deps.bench(bytes, this.shapes, this.fp32QuickMs * (rec.quickLatencyRatio ?? 1), this.deps.signal);
    } catch (err) {
      // A benchmark killed by the cancellation is not a verdict on the candidate.
      this.checkCancelled();
      rec.status = 'rejected';
      rec.reason = `the benchmark failed: ${(err as Error).message}`;
      return null;
    }
    this.deps.progress(`${rec.id}: p95 ${rec.bench.p95Ms.toFixed(3)} ms, peak memory ${(rec.bench.peakBytes / 1024 ** 2).toFixed(1)} MiB`);
    return rec.bench;
  }

  /** Final status of a fully measured candidate. */
  private judge(rec: CandidateRecord): void {
    rec.misses = budgetMisses(this.options.budgets, {
      sizeBytes: rec.sizeBytes,
      p95Ms: rec.bench?.p95Ms ?? null,
      peakBytes: rec.bench?.peakBytes ?? null,
      accuracyDrop: rec.accuracy?.drop ?? null,
    });
    if (rec.misses.length > 0) {
      rec.status = 'rejected';
      rec.reason = rec.misses.map(describeMiss).join('; ');
    } else {
      rec.status = 'feasible';
      rec.reason = 'meets every budget';
    }
  }

  /**
   * Mixed precision: when a uniform int8 candidate missed the accuracy budget, rank its
   * heavy layers by the error each one alone causes in int8, then find the fewest
   * most-sensitive layers to keep in fp32 for the accuracy budget (on the subset),
   * and measure that plan fully.
   */
  private async searchMixed(): Promise<void> {
    const budget = this.options.budgets.maxAccuracyDrop!;
    const lostAccuracy = this.records.filter(
      (r) => (r.id.startsWith('int8-dynamic') || r.id.startsWith('int8-static')) && r.status === 'rejected' && r.misses.some((m) => m.budget === 'accuracy-drop'),
    );
    // Every int8 variant that lost accuracy is a family (dynamic per-tensor and per-channel, each static calibration):
    // they differ in which layers hurt (on mnist-mlp per-channel dynamic needs its biggest layer kept, per-tensor a small
    // one), so the fastest first, the next only when the ones before found nothing feasible.
    const bases = [...lostAccuracy].sort((a, b) => (a.quickLatencyRatio ?? 9) - (b.quickLatencyRatio ?? 9));
    // Static mixed plans are always per-channel: the per-tensor and per-channel variants of one calibration are one family.
    const searched = new Set<string>();
    for (const base of bases) {
      const step = this.specs.get(base.id)!.steps.at(-1)!;
      const familyKey = step.kind === 'int8-static' ? `static:${step.calibration}` : step.kind === 'int8-dynamic' ? `dynamic:${step.perChannel}` : base.id;
      if (searched.has(familyKey)) continue;
      searched.add(familyKey);
      if (this.timeUp()) return;
      const best = this.best();
      // Only worth it when the family could beat what is already feasible.
      if (best !== null && this.options.objective === 'latency' && (base.quickLatencyRatio ?? Infinity) >= (best.quickLatencyRatio ?? 0)) continue;
      if (best !== null && this.options.objective === 'accuracy') return;
      if (await this.searchMixedFamily(base, budget)) return;
    }
  }

  /** Sensitivity and the keep-k search for one int8 family; true when it found a feasible plan. */
  private async searchMixedFamily(base: CandidateRecord, budget: number): Promise<boolean> {
    const built = this.built.get(base.id)!;
    const step = this.specs.get(base.id)!.steps.at(-1)!;
    const family: MixedFamily = step.kind === 'int8-static' ? { kind: 'static', calibration: step.calibration } : { kind: 'dynamic', perChannel: step.kind === 'int8-dynamic' && step.perChannel };
    const familyName = step.kind === 'int8-static' ? `int8-static ${step.calibration}` : `int8-dynamic${family.kind === 'dynamic' && family.perChannel ? ' pc' : ''}`;
    const heavy = this.macs.filter((n) => built.int8Nodes.has(n.node)).sort((a, b) => b.macs - a.macs).slice(0, this.options.maxSensitivityLayers);
    if (heavy.length < 2) return false;
    const allInt8 = [...built.int8Nodes];
    const samples = Math.min(this.options.sensitivitySamples, this.dataset.size);
    if (this.metric.kind === 'top1-labels' && !this.baselineBySamples.has(samples)) {
      const own = await evaluateSessions(this.reference.session, undefined, this.dataset, { limit: samples, signal: this.deps.signal });
      this.baselineBySamples.set(samples, (own.accuracy?.top1 ?? 0) * 100);
    }
    this.deps.progress(`mixed precision: ${base.id} drops ${base.accuracy?.drop.toFixed(2) ?? base.subset?.drop.toFixed(2)} pt; measuring the sensitivity of ${heavy.length} layers on ${samples} samples`);

    const layers: SensitivityLayer[] = [];
    const scoreOfPlan = async (id: string, int8Nodes: readonly string[]): Promise<{ score: AccuracyScore; cosine: number }> => {
      const one = await this.builder.build(this.model, { id, steps: [{ kind: 'fold' }, { kind: 'mixed', family, int8Nodes, fp32Kept: [] }] });
      const probe = await this.reference.candidate(one.bytes);
      try {
        return await probe.scoreAndCosine(this.metric, this.sensitivityBaseline(samples), samples);
      } finally {
        await probe.release();
      }
    };
    for (const layer of heavy) {
      if (this.timeUp()) break;
      // Two views of one layer: its error alone in int8, and what reverting it alone from the all-int8 plan recovers.
      // One at a time misses interaction (each of mnist-mlp's layers alone flips 0–1 of 2000 images, all three 2–7).
      const alone = await scoreOfPlan(`sensitivity:${layer.node}`, [layer.node]);
      const reverted = await scoreOfPlan(`sensitivity:revert:${layer.node}`, allInt8.filter((n) => n !== layer.node));
      layers.push({ node: layer.node, opType: layer.opType, macs: layer.macs, drop: alone.score.drop, error: 1 - alone.cosine, revertedDrop: reverted.score.drop });
    }
    layers.sort(bySensitivity);
    // The report shows the last family searched: the one whose plan was chosen when one was.
    this.sensitivity = { family: familyName, samples, layers };
    this.deps.progress(`sensitivity: ${layers.slice(0, 5).map((l) => `${l.node} drop ${l.drop.toFixed(2)} pt (reverted ${l.revertedDrop.toFixed(2)}), 1-cos ${l.error.toExponential(2)}`).join('; ')}${layers.length > 5 ? '; ...' : ''}`);

    // The fewest kept layers whose subset drop meets the budget: binary search over k (the drop falls as k grows).
    const planFor = async (k: number): Promise<CandidateRecord> => {
      const kept = layers.slice(0, k).map((l) => l.node);
      const keptSet = new Set(kept);
      const spec: CandidateSpec = { id: `mixed:${familyName.replace(' ', ':')}:keep${k}`, steps: [{ kind: 'fold' }, { kind: 'mixed', family, int8Nodes: allInt8.filter((n) => !keptSet.has(n)), fp32Kept: kept }] };
      const existing = this.records.find((r) => r.id === spec.id);
      if (existing !== undefined) return existing;
      const b = await this.build(spec);
      const rec = this.newRecord(spec, b);
      rec.predictedLatencyRatio = predictLatencyRatio(this.macs, { int8Nodes: b.int8Nodes, macsRatio: 1 }, this.speed);
      rec.predictedP95Ms = rec.predictedLatencyRatio * this.fp32P95;
      const probe = await this.reference.candidate(b.bytes);
      try {
        rec.stage = 'subset-accuracy';
        rec.subset = await probe.score(this.metric, this.baselineSubset, Math.min(this.options.subsetSamples, this.dataset.size));
      } finally {
        await probe.release();
      }
      this.deps.progress(`${rec.id}: subset drop ${rec.subset.drop.toFixed(2)} pt`);
      return rec;
    };
    let lo = 1;
    let hi = layers.length - 1;
    let found: CandidateRecord | null = null;
    while (lo <= hi && !this.timeUp()) {
      const mid = (lo + hi) >> 1;
      const rec = await planFor(mid);
      if (rec.subset !== null && rec.subset.drop <= budget) {
        found = rec;
        hi = mid - 1;
      } else {
        rec.status = 'rejected';
        rec.reason = `accuracy on ${rec.subset?.samples ?? 0} samples drops ${rec.subset?.drop.toFixed(2) ?? '?'} pt (> ${budget} pt)`;
        rec.misses = budgetMisses(this.options.budgets, { accuracyDrop: rec.subset?.drop ?? null });
        lo = mid + 1;
      }
    }
    // Measure the smallest passing plan fully; if the whole set disagrees with the subset, keep one more layer (twice at most).
    for (let attempt = 0; found !== null && attempt < 3 && !this.timeUp(); attempt++) {
      found.status = 'predicted-only';
      await this.consider(found, true);
      // consider() changed the status (the compiler narrowed it to the value set above).
      if ((found.status as CandidateStatus) === 'feasible' || !found.misses.some((m) => m.budget === 'accuracy-drop')) break;
      const k = Number(found.id.split('keep')[1]) + 1;
      if (k >= layers.length) break;
      found = await planFor(k);
    }
    return found !== null && found.status === 'feasible';
  }

  private best(): CandidateRecord | null {
    const feasible = this.records.filter((r) => r.status === 'feasible');
    if (feasible.length === 0) return null;
    return feasible.sort((a, b) => this.compare(a, b))[0]!;
  }

  /** Objective first, then the other two as tie-breaks. */
  private compare(a: CandidateRecord, b: CandidateRecord): number {
    const drop = (r: CandidateRecord): number => r.accuracy?.drop ?? Number.POSITIVE_INFINITY;
    const p95 = (r: CandidateRecord): number => r.bench?.p95Ms ?? Number.POSITIVE_INFINITY;
    const size = (r: CandidateRecord): number => r.sizeBytes ?? Number.POSITIVE_INFINITY;
    const order = { accuracy: [drop, p95, size], latency: [p95, drop, size], size: [size, drop, p95] }[this.options.objective];
    for (const f of order) {
      const d = f(a) - f(b);
      if (d !== 0) return d;
    }
    return 0;
  }

  private finish(): OptimizeResult {
    const best = this.best();
    let chosen: OptimizeResult['chosen'] = null;
    if (best !== null) {
      best.status = 'chosen';
      const others = this.records.filter((r) => r.status === 'feasible').length;
      const what = { accuracy: `the smallest accuracy drop (${best.accuracy?.drop.toFixed(2)} pt)`, latency: `the lowest measured p95 (${best.bench?.p95Ms.toFixed(3)} ms)`, size: `the smallest file (${best.sizeBytes} bytes)` }[
        this.options.objective
      ];
      best.reason = `meets every budget; of ${others + 1} feasible candidate${others === 0 ? '' : 's'} it has ${what}`;
      chosen = { id: best.id, reason: best.reason };
    }
    const measured = this.records.filter((r) => r.bench !== null && r.accuracy !== null);
    const pareto = paretoFront(measured.map((r) => ({ id: r.id, drop: r.accuracy!.drop, p95Ms: r.bench!.p95Ms, sizeBytes: r.sizeBytes ?? 0 })));
    let failure: OptimizeResult['failure'] = null;
    if (best === null) {
      // Closest: the smallest sum of relative overshoots among candidates with a known miss.
      const scored = this.records
        .filter((r) => r.misses.length > 0)
        .map((r) => ({ r, distance: r.misses.reduce((a, m) => a + (m.limit > 0 ? m.over / m.limit : m.over), 0) }))
        .sort((a, b) => a.distance - b.distance)
        .slice(0, 3);
      const closest = scored.map(({ r }) => ({ id: r.id, misses: r.misses, relax: r.misses.map(relaxAdvice) }));
      const summary =
        closest.length === 0
          ? 'no candidate could be measured'
          : `no candidate meets every budget; closest: ${closest.map((c) => `${c.id} (${c.misses.map(describeMiss).join('; ')}; would pass with ${c.relax.join(' ')})`).join(', ')}`;
      failure = { closest, summary };
    }
    const fp32 = this.records.find((r) => r.id === 'fp32')!;
    const fullyMeasured = this.records.filter((r) => r.accuracy !== null).length;
    return {
      metric: { ...this.metric, description: describeMetric(this.metric) },
      budgets: this.options.budgets,
      objective: this.options.objective,
      batch: this.options.batch ?? 1,
      baseline: { score: this.baselineFull, sizeBytes: fp32.sizeBytes ?? 0, p95Ms: this.fp32P95, peakBytes: fp32.bench?.peakBytes ?? 0, samples: fp32.accuracy?.samples ?? 0 },
      device: { ...this.speed, measured: this.deps.measured !== null },
      macsByOpType: macsByOpType(this.macs),
      candidates: this.records,
      pareto,
      chosen,
      chosenBytes: best === null ? null : this.built.get(best.id)!.bytes,
      failure,
      sensitivity: this.sensitivity,
      counts: { candidates: this.records.length, built: this.built.size, full: fullyMeasured, benched: this.benchCount },
      wallMs: this.deps.now() - this.started,
      stoppedBy: this.stoppedBy,
    };
  }

  /** fp32's score on the first `samples` samples: the subset's when they are the same samples, else measured once. */
  private sensitivityBaseline(samples: number): number {
    if (this.metric.kind !== 'top1-labels') return 100;
    return this.baselineBySamples.get(samples) ?? this.baselineSubset;
  }

  /** Throws E_PLAN_CANCELLED once the caller's signal is aborted. */
  private checkCancelled(): void {
    throwIfCancelled(this.deps.signal);
  }

  /** Every loop of the search asks this before its next step, so it is where cancellation is seen between candidates. */
  private timeUp(): boolean {
    this.checkCancelled();
    if (this.deps.now() - this.started < this.options.timeLimitS * 1000) return false;
    this.stoppedBy = 'time-limit';
    return true;
  }

  private evalLimit(): { limit?: number } {
    return this.options.evalSamples === undefined ? {} : { limit: Math.min(this.options.evalSamples, this.dataset.size) };
  }

  private async build(spec: CandidateSpec): Promise<BuiltCandidate> {
    this.checkCancelled();
    const built = await this.builder.build(this.model, spec);
    this.built.set(spec.id, built);
    this.specs.set(spec.id, spec);
    return built;
  }

  private macsOf(built: BuiltCandidate): Promise<NodeMacs[]> {
    let m = this.macsCache.get(built.floatModel);
    if (m === undefined) {
      m = countMacs(built.floatModel, this.reference.feeds);
      this.macsCache.set(built.floatModel, m);
    }
    return m;
  }

  /** Builds a planned candidate (size exact, prediction refined with the nodes really quantized); false when it cannot be built. */
  private async ensureBuilt(rec: CandidateRecord): Promise<boolean> {
    if (this.built.has(rec.id)) return true;
    let built: BuiltCandidate;
    try {
      built = await this.build(this.specs.get(rec.id)!);
    } catch (err) {
      // Calibration stopped by the cancellation: not a candidate that cannot be built.
      this.checkCancelled();
      rec.status = 'rejected';
      rec.reason = `cannot be built: ${(err as Error).message}`;
      return false;
    }
    rec.stage = 'built';
    rec.sizeBytes = built.bytes.length;
    rec.int8Nodes = built.int8Nodes.size;
    rec.warnings = built.warnings;
    rec.predictedLatencyRatio = predictLatencyRatio(await this.macsOf(built), { int8Nodes: built.int8Nodes, macsRatio: 1 }, this.speed) * (await this.macsRatio(built));
    rec.predictedP95Ms = rec.predictedLatencyRatio * this.fp32P95;
    return true;
  }

  /** Heavy MACs of the candidate's float model over fp32's (pruning). */
  private async macsRatio(built: BuiltCandidate): Promise<number> {
    const total = (ns: readonly NodeMacs[]): number => ns.reduce((a, n) => a + n.macs, 0);
    const base = total(this.macs);
    return base === 0 ? 1 : total(await this.macsOf(built)) / base;
  }

  private newRecord(spec: CandidateSpec, built: BuiltCandidate): CandidateRecord {
    const rec: CandidateRecord = {
      id: spec.id,
      plan: describeCandidate(spec),
      steps: spec.steps,
      status: 'predicted-only',
      reason: 'not measured',
      stage: 'built',
      sizeBytes: built.bytes.length,
      int8Nodes: built.int8Nodes.size,
      predictedLatencyRatio: null,
      predictedP95Ms: null,
      quickLatencyRatio: null,
      quickP95Ms: null,
      subset: null,
      accuracy: null,
      bench: null,
      misses: [],
      warnings: built.warnings,
    };
    this.records.push(rec);
    return rec;
  }

  private unbuiltRecord(spec: CandidateSpec, status: CandidateStatus, reason: string): CandidateRecord {
    return {
      id: spec.id, plan: describeCandidate(spec), steps: spec.steps, status, reason, stage: 'planned', sizeBytes: null, int8Nodes: null,
      predictedLatencyRatio: null, predictedP95Ms: null, quickLatencyRatio: null, quickP95Ms: null, subset: null, accuracy: null, bench: null, misses: [], warnings: [],
    };
  }
}

/**
 * Most sensitive first: the lowest drop left when the layer alone is reverted to fp32 (what the
 * keep-k search actually buys), then the highest drop it causes alone in int8 (flipped samples are
 * what the budget counts), then its output error alone (ranks what flips nothing).
 */
export function bySensitivity(a: SensitivityLayer, b: SensitivityLayer): number {
  return a.revertedDrop - b.revertedDrop || b.drop - a.drop || b.error - a.error;
}

/** Calibration from the data set (exported for the CLI and tests); `signal` stops it between batches. */
export function calibrationFrom(dataset: Dataset, inputs: Parameters<typeof checkAgainstModel>[1], samples: number, signal?: AbortSignal): NonNullable<BuildContext['calibration']> {
  const binding = checkAgainstModel(dataset, inputs);
  const feeds = calibrationFeeds(binding, { batchSize: 16, maxSamples: samples });
  return {
    feeds:
      signal === undefined
        ? feeds
        : async function* cancellable() {
            for await (const feed of feeds()) {
              throwIfCancelled(signal);
              yield feed;
            }
          },
    open: async (bytes) => {
      const session = await createSession(bytes, { graphOptimizationLevel: 'disabled' });
      return { run: (feeds, outputs) => session.run(feeds, outputs), release: () => session.release() };
    },
  };
}
