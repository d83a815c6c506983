/**
 * Aggregates what the server, the planner and co-evolution report through small
 * `record…`/`set…` calls into one metrics record per interval. The record methods are
 * on the inference path: they only bump counters and histograms (TypedArrays).
 */
import { Histogram } from './histogram.ts';
import type { OutboxStats } from './outbox.ts';
import type { ActiveModel, Budgets, TelemetryRecord } from './schemas.ts';
import { PAYLOAD_VERSION } from './schemas.ts';
import type { SystemSample, SystemSampler } from './system.ts';

/** Confidence is a probability: deciles. */
export const CONFIDENCE_BOUNDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
/** Entropy in nats (ln 10 = 2.30 for 10 uniform classes). */
export const ENTROPY_BOUNDS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3];

export interface AggregatorOptions {
  readonly device: string;
  readonly intervalMs: number;
  readonly latencyBucketsMs: readonly number[];
  readonly sampler: SystemSampler;
}

/** A record without the outbox's `stream` and `seq`, which the outbox adds when it commits it. */
export type UnnumberedRecord = Omit<TelemetryRecord, 'stream' | 'seq'>;

/** The measurement surface other modules feed (the server, co-evolution, the planner). */
export interface TelemetryRecorder {
  /** One inference: its latency in ms and whether it succeeded. */
  recordInference(latencyMs: number, ok: boolean): void;
  /** The current number of queued requests. */
  recordQueueDepth(depth: number): void;
  /** The top-1 confidence (0..1) and output entropy (nats) of one prediction, and whether it was mined as a hard sample. */
  recordPrediction(confidence: number, entropy: number, hard: boolean): void;
  setDriftScore(score: number | null): void;
  setActiveModel(model: ActiveModel | null): void;
  setBudgets(budgets: Budgets): void;
}

export class TelemetryAggregator implements TelemetryRecorder {
  private readonly options: AggregatorOptions;
  private readonly latency: Histogram;
  private readonly confidence = new Histogram(CONFIDENCE_BOUNDS);
  private readonly entropy = new Histogram(ENTROPY_BOUNDS);
  private inferences = 0;
  private errors = 0;
  private predictions = 0;
  private hard = 0;
  private queueLast = 0;
  private queueMax = 0;
  private drift: number | null = null;
  private model: ActiveModel | null = null;
  private budgets: Budgets = {};

  constructor(options: AggregatorOptions) {
    this.options = options;
    this.latency = new Histogram(options.latencyBucketsMs);
  }

  recordInference(latencyMs: number, ok: boolean): void {
    this.inferences += 1;
    if (ok) this.latency.observe(latencyMs);
    else this.errors += 1;
  }

  recordQueueDepth(depth: number): void {
    this.queueLast = depth;
    if (depth > this.queueMax) this.queueMax = depth;
  }

  recordPrediction(confidence: number, entropy: number, hard: boolean): void {
    this.predictions += 1;
    this.confidence.observe(confidence);
    this.entropy.observe(entropy);
    if (hard) this.hard += 1;
  }

  setDriftScore(score: number | null): void {
    this.drift = score;
  }

  setActiveModel(model: ActiveModel | null): void {
    this.model = model;
  }

  setBudgets(budgets: Budgets): void {
    this.budgets = budgets;
  }

  /** The budgets the interval broke, from what was measured (p95 latency, process memory). */
  private compliance(p95: number | null, system: SystemSample): { compliant: boolean | null; violations: string[] } {
    const violations: string[] = [];
    let checked = false;
    const { latencyP95Ms, memoryMb } = this.budgets;
    if (latencyP95Ms !== undefined && p95 !== null) {
      checked = true;
      if (p95 > latencyP95Ms) violations.push(`latency p95 ${p95.toFixed(2)} ms > ${latencyP95Ms} ms`);
    }
    if (memoryMb !== undefined && system.processRssBytes !== null) {
      checked = true;
      const mb = system.processRssBytes / (1024 * 1024);
      if (mb > memoryMb) violations.push(`memory ${mb.toFixed(1)} MB > ${memoryMb} MB`);
    }
    return { compliant: checked ? violations.length === 0 : null, violations };
  }

  /** The record of the interval that ends now, and a fresh interval. */
  async snapshot(now: number, outbox: OutboxStats): Promise<UnnumberedRecord> {
    const system = await this.options.sampler.sample();
    const p95 = this.latency.quantile(0.95);
    const record: UnnumberedRecord = {
      v: PAYLOAD_VERSION,
      kind: 'metrics',
      device: this.options.device,
      ts: now,
      intervalMs: this.options.intervalMs,
      inference: {
        count: this.inferences,
        errors: this.errors,
        latencyMs: {
          p50: this.latency.quantile(0.5),
          p95,
          p99: this.latency.quantile(0.99),
          max: this.latency.maximum(),
          mean: this.latency.mean(),
          histogram: this.latency.toJSON(),
        },
      },
      queueDepth: { last: this.queueLast, max: this.queueMax },
      system: { ...system },
      model: this.model,
      budgets: this.compliance(p95, system),
      quality: {
        confidence: this.confidence.toJSON(),
        entropy: this.entropy.toJSON(),
        hardSampleRate: this.predictions === 0 ? null : this.hard / this.predictions,
        driftScore: this.drift,
      },
      outbox: {
        depth: outbox.rows,
        bytes: outbox.bytes,
        droppedTotal: outbox.droppedTotal.metric + outbox.droppedTotal.event,
        degraded: outbox.degraded,
      },
    };
    this.latency.reset();
    this.confidence.reset();
    this.entropy.reset();
    this.inferences = 0;
    this.errors = 0;
    this.predictions = 0;
    this.hard = 0;
    this.queueMax = this.queueLast;
    return record;
  }
}
