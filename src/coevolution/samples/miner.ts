import { encodeNpy } from '../../data/npy.ts';
import type { TensorValue } from '../../onnx/index.ts';
import type { Clock } from '../../host/index.ts';
import { isHard, lowConfidenceBoxShare, scoreLogits, type HardnessCriteria } from '../confidence.ts';
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
    const rule = this.options.rules[event.model] ?? this.options.defaultRule;
    if (rule === undefined) return;
    const inputEntries = Object.entries(event.inputs);
    if (inputEntries.length !== 1) return; // one-input models only: a sample is one NPY
    const [, input] = inputEntries[0]!;
    if (!(input.data instanceof Float32Array)) return; // samples are stored as float32 NPY
    const rows = input.dims[0] ?? 1;
    for (let row = 0; row < rows; row++) {
      this.stats.seen++;
      const judged = judge(rule, event.localOutputs, row, rows);
      if (judged === undefined) continue;
      this.stats.hard++;
      if (!this.takeToken()) {
        this.stats.droppedRate++;
        continue;
      }
      this.enqueue(event, input, row, rows, judged, rule);
    }
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

  private enqueue(event: ObservedInference, input: TensorValue, row: number, rows: number, scores: Record<string, number>, rule: ModelMiningRule): void {
    // Copy the row now: the caller's buffers may be reused after onInference returns.
    const inputRow = rowOf(input, row, rows);
    const outputName = rule.kind === 'classification' ? (rule.output ?? Object.keys(event.localOutputs!)[0]!) : rule.scoresOutput;
    const output = event.localOutputs![outputName]!;
    const outputRow = rowOf(output, row, rows);
    const sample: NewSample = {
      model: event.model,
      version: event.version,
      createdAt: this.clock.now(),
      scores,
      inputNpy: encodeNpy({ dtype: 'float32', shape: [1, ...input.dims.slice(1)], data: inputRow }),
      outputNpy: encodeNpy({ dtype: 'float32', shape: [1, ...output.dims.slice(1)], data: outputRow }),
    };
    this.queued++;
    this.queue = this.queue
      .then(async () => {
        const result = await this.sink.add(sample);
        if (result.stored) this.stats.kept++;
        else this.stats.droppedCap++;
      })
      .catch((err: unknown) => {
        this.stats.failed++;
        this.onError(err);
      })
      .finally(() => {
        this.queued--;
      });
  }
}

function judge(rule: ModelMiningRule, outputs: Readonly<Record<string, TensorValue>>, row: number, rows: number): Record<string, number> | undefined {
  if (rule.kind === 'classification') {
    const output = outputs[rule.output ?? Object.keys(outputs)[0] ?? ''];
    if (output === undefined || !(output.data instanceof Float32Array)) return undefined;
    const classes = output.data.length / rows;
    if (!Number.isInteger(classes) || classes < 2) return undefined;
    const scores = scoreLogits(output.data, row, classes);
    return isHard(scores, rule) ? { ...scores } : undefined;
  }
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
