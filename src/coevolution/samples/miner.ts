import { encodeNpy } from '../../data/npy.ts';
import type { TensorValue } from '../../onnx/index.ts';
import type { Clock } from '../../host/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import { isHard, lowConfidenceBoxShare, scoreLogits, type ConfidenceScores, type HardnessCriteria } from '../confidence.ts';
import { SampleCollection, type CollectionRequest } from './collection.ts';
import type { AddResult, NewSample } from './store.ts';

/** How one model's answers are judged. */
export type ModelMiningRule =
  | ({ readonly kind: 'classification'; readonly output?: string | undefined } & HardnessCriteria)
  | {
      readonly kind: 'detection';
      /** The output holding one confidence score per candidate box. */
      readonly scoresOutput: string;
      readonly keepThreshold: number;
      readonly confidentThreshold: number;
      /** A frame is hard when more than this share of its kept boxes is unsure. */
      readonly shareAbove: number;
    };

export interface MinerOptions {
  /** Opt-in: nothing is kept unless true (the device owner agrees to send field data). */
  readonly enabled: boolean;
  /** Per model name; models without a rule use `defaultRule`, or are not mined when it is undefined. */
  readonly rules: Readonly<Record<string, ModelMiningRule>>;
  readonly defaultRule: ModelMiningRule | undefined;
  /** Sampling-rate cap: at most this many samples kept per minute (token bucket, burst = the same number). */
  readonly maxPerMinute: number;
}

/** What the miner needs of an inference: the InferenceEvent of src/runtime/serving/hooks.ts fits. */
export interface ObservedInference {
  readonly model: string;
  readonly version: string;
  readonly inputs: Readonly<Record<string, TensorValue>>;
  readonly localOutputs: Readonly<Record<string, TensorValue>> | undefined;
}

/** Where kept samples go (SampleStore). */
export interface SampleSink {
  add(sample: NewSample): Promise<AddResult>;
}

export interface MinerStats {
  seen: number;
  hard: number;
  kept: number;
  droppedRate: number;
  droppedCap: number;
  failed: number;
}

/**
 * Hard-sample mining on live inference. `onInference` is synchronous and cheap (scores
 * over the output rows, no copies unless a row is kept): it is an InferenceObserver of the
 * serving path. Kept rows are encoded as NPY and written by a serial queue, so a slow disk
 * delays mining, never inference. Each row of a batched request is judged on its own.
 */
export class HardSampleMiner {
  readonly stats: MinerStats = { seen: 0, hard: 0, kept: 0, droppedRate: 0, droppedCap: 0, failed: 0 };
  private tokens: number;
  private lastRefill: number;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private collection: SampleCollection | undefined;

  constructor(
    private readonly options: MinerOptions,
    private readonly sink: SampleSink,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.tokens = options.maxPerMinute;
    this.lastRefill = clock.now();
  }

  onInference(event: ObservedInference): void {
    if (!this.options.enabled || event.localOutputs === undefined) return;
    const rule = this.ruleFor(event.model);
    const collection = this.collection?.active === true ? this.collection : undefined;
    if (rule === undefined && collection === undefined) return;
    const inputEntries = Object.entries(event.inputs);
    if (inputEntries.length !== 1) return; // one-input models only: a sample is one NPY
    const [, input] = inputEntries[0]!;
    if (!(input.data instanceof Float32Array)) return; // samples are stored as float32 NPY
    const rows = input.dims[0] ?? 1;
    const outputName = sampledOutput(rule, event.localOutputs);
    if (outputName === undefined) return;
    for (let row = 0; row < rows; row++) {
      const scores = rowScores(event.localOutputs[outputName], row, rows);
      let judged: Record<string, number> | undefined;
      if (rule !== undefined) {
        this.stats.seen++;
        judged = judge(rule, event.localOutputs, row, rows, scores);
        if (judged !== undefined) this.stats.hard++;
      }
      if (collection?.matches(scores, judged !== undefined) === true) {
        const sample = this.sample(event, input, outputName, row, rows, judged ?? { ...scores });
        const bytes = sample.inputNpy.byteLength + sample.outputNpy.byteLength;
        if (collection.claim(bytes)) {
          this.enqueue(sample, (result) => collection.settle(bytes, result));
          continue;
        }
      }
      if (judged === undefined) continue;
      if (!this.takeToken()) {
        this.stats.droppedRate++;
        continue;
      }
      this.enqueue(this.sample(event, input, outputName, row, rows, judged), () => {});
    }
  }

  /** The model's rule, or the default; undefined when the model is not mined. */
  ruleFor(model: string): ModelMiningRule | undefined {
    return this.options.rules[model] ?? this.options.defaultRule;
  }

  /**
   * Starts a collect-samples campaign: live rows meeting its criterion are kept (outside the
   * per-minute cap, inside the store's day caps and quota) until it ends. One at a time.
   */
  collect(request: CollectionRequest): SampleCollection {
    if (!this.options.enabled) throw new EdgevolveError('E_COEVO_DISABLED', 'hard-sample mining is off (coevolution.mining.enabled): nothing is collected');
    if (this.collection?.active === true) throw new EdgevolveError('E_COEVO_INVALID', 'a sample collection is already running');
    this.collection = new SampleCollection(request);
    return this.collection;
  }

  /** Resolves when every queued write has finished. */
  async drain(): Promise<void> {
    while (this.queued > 0) await this.queue;
  }

  private takeToken(): boolean {
    const now = this.clock.now();
    const perMs = this.options.maxPerMinute / 60_000;
    this.tokens = Math.min(this.options.maxPerMinute, this.tokens + (now - this.lastRefill) * perMs);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private sample(event: ObservedInference, input: TensorValue, outputName: string, row: number, rows: number, scores: Record<string, number>): NewSample {
    // Copy the row now: the caller's buffers may be reused after onInference returns.
    const inputRow = rowOf(input, row, rows);
    const output = event.localOutputs![outputName]!;
    const outputRow = rowOf(output, row, rows);
    return {
      model: event.model,
      version: event.version,
      createdAt: this.clock.now(),
      scores,
      inputNpy: encodeNpy({ dtype: 'float32', shape: [1, ...input.dims.slice(1)], data: inputRow }),
      outputNpy: encodeNpy({ dtype: 'float32', shape: [1, ...output.dims.slice(1)], data: outputRow }),
    };
  }

  private enqueue(sample: NewSample, settled: (result: AddResult | undefined) => void): void {
    this.queued++;
    this.queue = this.queue
      .then(async () => {
        const result = await this.sink.add(sample);
        if (result.stored) this.stats.kept++;
        else this.stats.droppedCap++;
        settled(result);
      })
      .catch((err: unknown) => {
        this.stats.failed++;
        settled(undefined);
        this.onError(err);
      })
      .finally(() => {
        this.queued--;
      });
  }
}

/** The output a sample keeps: the rule's output, else the first. */
function sampledOutput(rule: ModelMiningRule | undefined, outputs: Readonly<Record<string, TensorValue>>): string | undefined {
  const name = rule === undefined ? Object.keys(outputs)[0] : rule.kind === 'classification' ? (rule.output ?? Object.keys(outputs)[0]) : rule.scoresOutput;
  return name !== undefined && outputs[name]?.data instanceof Float32Array ? name : undefined;
}

/** Classification scores of one row, when the output looks like logits [rows, classes >= 2]. */
export function rowScores(output: TensorValue | undefined, row: number, rows: number): ConfidenceScores | undefined {
  if (output === undefined || !(output.data instanceof Float32Array)) return undefined;
  const classes = output.data.length / rows;
  if (!Number.isInteger(classes) || classes < 2) return undefined;
  return scoreLogits(output.data, row, classes);
}

/**
 * The rule's verdict on one row: its criterion values when hard, else undefined. `scores`
 * are the row's classification scores of the rule's output (rowScores), when it has them.
 */
export function judge(rule: ModelMiningRule, outputs: Readonly<Record<string, TensorValue>>, row: number, rows: number, scores: ConfidenceScores | undefined): Record<string, number> | undefined {
  if (rule.kind === 'classification') return scores !== undefined && isHard(scores, rule) ? { ...scores } : undefined;
  const output = outputs[rule.scoresOutput];
  if (output === undefined || !(output.data instanceof Float32Array)) return undefined;
  const share = lowConfidenceBoxShare(rowOf(output, row, rows), rule.keepThreshold, rule.confidentThreshold);
  return share > rule.shareAbove ? { lowConfidenceBoxShare: share } : undefined;
}

function rowOf(value: TensorValue, row: number, rows: number): Float32Array {
  const data = value.data as Float32Array;
  const size = data.length / rows;
  return data.slice(row * size, (row + 1) * size);
}
