/**
 * The cheap, in-process measurements the search runs before the expensive ones:
 * accuracy on a subset (then on the whole set) against the fp32 model, and a quick
 * latency ratio against fp32 with the two sessions taking turns, so that load from
 * other processes hits both alike. One session per candidate serves all three.
 */
import { checkAgainstModel, type Dataset } from '../data/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/index.ts';
import { measureLatencies } from '../runtime/bench/measure.ts';
import { percentileOfSorted } from '../runtime/bench/stats.ts';
import { createSession, type Session } from '../runtime/index.ts';
import { scoreOf, type AccuracyMetric, type AccuracyScore } from './accuracy.ts';
import { throwIfCancelled } from './cancel.ts';
import { evaluateSessions } from './evaluate.ts';

export interface ProbeOptions {
  readonly threads: number;
  /** Wall time of the quick latency estimate, both sessions together. */
  readonly quickMs: number;
  /** Samples per run in every latency measurement (default 1). */
  readonly batch?: number;
  /** Stops evaluations between batches and the quick estimate between rounds (E_PLAN_CANCELLED). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The first `batch` samples' feeds, as the model takes them: what latency is measured on.
 * A batch above 1 needs a free batch axis (a model fixed at batch 1, or without a batch
 * axis, is an E_USAGE error: its latency cannot be measured at another batch).
 */
export async function firstSampleFeeds(dataset: Dataset, session: Session, batch = 1): Promise<Record<string, TensorValue>> {
  const binding = checkAgainstModel(dataset.take(batch), session.inputs);
  if (batch > 1 && (binding.mode !== 'batched' || (binding.fixedBatch !== undefined && binding.fixedBatch !== batch))) {
    throw new EdgevolveError('E_USAGE', `--batch ${batch}: the model's inputs have no free batch axis (latency can only be measured at the batch the model takes)`, {
      context: { batch, mode: binding.mode },
    });
  }
  if (dataset.size < batch) throw new EdgevolveError('E_USAGE', `--batch ${batch}: the data set has only ${dataset.size} samples`, { context: { batch, samples: dataset.size } });
  for await (const first of binding.dataset.batches(batch)) {
    const feeds: Record<string, TensorValue> = {};
    for (const [name, value] of Object.entries(first.feeds)) {
      feeds[name] = binding.mode !== 'whole' && binding.hasBatchAxis[name] === false ? { ...value, dims: value.dims.slice(1) } : value;
    }
    return feeds;
  }
  return {};
}

/** The fp32 reference, open for the whole search. */
export class ReferenceProbe {
  private constructor(
    readonly session: Session,
    readonly feeds: Record<string, TensorValue>,
    private readonly dataset: Dataset,
    private readonly options: ProbeOptions,
  ) {}

  static async open(fp32: Uint8Array, dataset: Dataset, options: ProbeOptions): Promise<ReferenceProbe> {
    const session = await createSession(fp32, { threads: options.threads });
    try {
      return new ReferenceProbe(session, await firstSampleFeeds(dataset, session, options.batch ?? 1), dataset, options);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** Opens a candidate; release it when done. */
  async candidate(bytes: Uint8Array): Promise<CandidateProbe> {
    return new CandidateProbe(await createSession(bytes, { threads: this.options.threads }), this, this.dataset, this.options);
  }

  /** Median latency of fp32 alone at the latency batch, in-process: sizes the isolated benchmark's run count. */
  async medianMs(): Promise<number> {
    const m = await measureLatencies(() => this.session.run(this.feeds), { warmup: 3, iterations: 10_000, maxMs: this.options.quickMs / 4 });
    return percentileOfSorted(Float64Array.from(m.samplesMs).sort(), 50);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export class CandidateProbe {
  constructor(
    private readonly session: Session,
    private readonly reference: ReferenceProbe,
    private readonly dataset: Dataset,
    private readonly options: ProbeOptions,
  ) {}

  /** Scores the candidate on the first `limit` samples (all when undefined); `baseline` is fp32's score on the same samples. */
  async score(metric: AccuracyMetric, baseline: number, limit?: number): Promise<AccuracyScore> {
    const report = await evaluateSessions(this.session, this.reference.session, this.dataset, { signal: this.options.signal, ...(limit === undefined ? {} : { limit }) });
    return scoreOf(report, metric, baseline);
  }

  /** The score and the mean cosine of the scored output against fp32 on `limit` samples, from one evaluation: the per-layer sensitivity measure. */
  async scoreAndCosine(metric: AccuracyMetric, baseline: number, limit: number): Promise<{ score: AccuracyScore; cosine: number }> {
    const report = await evaluateSessions(this.session, this.reference.session, this.dataset, { limit, signal: this.options.signal });
    return { score: scoreOf(report, metric, baseline), cosine: report.fidelity?.outputs.find((o) => o.output === metric.output)?.meanCosine ?? 0 };
  }

  /**
   * Candidate median latency over fp32 median latency at the latency batch, the sessions taking
   * turns. Which one goes first alternates by round (an even number of rounds): with fp32
   * always first, the candidate always ran right after fp32 had filled the caches with its
   * weights, a bias bench-compress measured at 4-6% (scripts/lib/shuffled-orders.ts). Two
   * sessions need no shuffle: alternating balances them exactly.
   */
  async quickLatencyRatio(): Promise<number> {
    const feeds = this.reference.feeds;
    const rounds = 6;
    const slice = this.options.quickMs / (2 * rounds);
    const ref: number[] = [];
    const own: number[] = [];
    for (let round = 0; round < rounds; round++) {
      throwIfCancelled(this.options.signal);
      const options = { warmup: round === 0 ? 3 : 1, iterations: 10_000, maxMs: slice };
      const timeReference = async (): Promise<void> => {
        ref.push(...(await measureLatencies(() => this.reference.session.run(feeds), options)).samplesMs);
      };
      const timeCandidate = async (): Promise<void> => {
        own.push(...(await measureLatencies(() => this.session.run(feeds), options)).samplesMs);
      };
      for (const time of round % 2 === 0 ? [timeReference, timeCandidate] : [timeCandidate, timeReference]) await time();
    }
    const median = (xs: number[]): number => percentileOfSorted(Float64Array.from(xs).sort(), 50);
    return median(own) / median(ref);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
