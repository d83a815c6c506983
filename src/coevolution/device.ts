import path from 'node:path';
import type { Clock } from '../host/index.ts';
import type { ContentTarget } from '../registry/content.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import { CloudCascade, type CascadeCounters } from './cascade/cascade.ts';
import type { CoevolutionConfig } from './config.ts';
import { DriftMonitor, type DriftReport, type DriftSink } from './drift.ts';
import type { CollectionCriterion, CollectionOutcome } from './samples/collection.ts';
import { HardSampleMiner, judge, rowScores, type ModelMiningRule, type ObservedInference } from './samples/miner.ts';
import { registryTransport } from './samples/registry-transport.ts';
import { SampleStore } from './samples/store.ts';
import { httpTransport, uploadPending, type BatchTransport, type UploadReport } from './samples/upload.ts';

/** Where the per-prediction quality signals go: src/telemetry's TelemetryRecorder fits. */
export interface QualityRecorder {
  /** Top-1 probability, entropy in nats, and whether the model's mining rule calls it hard. */
  recordPrediction(confidence: number, entropy: number, hard: boolean): void;
  setDriftScore(score: number | null): void;
}

/** What the serving path tells the observers; InferenceEvent of src/runtime/serving/hooks.ts fits. */
export interface ServedInference extends ObservedInference {
  readonly requestId: string | undefined;
}

export interface DeviceCoevolutionDeps {
  readonly stateDir: string;
  readonly deviceId: string;
  readonly clock: Clock;
  /** Drift scores (telemetry) and threshold crossings (events). */
  readonly driftSink: DriftSink;
  /** Confidence/entropy histograms, hard-sample rate and drift score for the periodic telemetry. */
  readonly quality?: QualityRecorder | undefined;
  /** Requests that are not field data (the daemon's health probes): not mined, not scored, never sent to the cloud. */
  readonly isInternalRequest?: ((requestId: string | undefined) => boolean) | undefined;
  /** For `upload.target: registry`: the push target of `upload.repository` (src/registry), built by the composition root. */
  readonly registryTarget?: ContentTarget | undefined;
  readonly onError: (err: EdgevolveError) => void;
}

/** What the serving path takes: observers (mining, drift) and an optional interceptor (cascade). */
export interface ServingHooks {
  readonly observers: readonly { onInference(event: ServedInference): void }[];
  readonly interceptor: { intercept: CloudCascade['intercept'] } | undefined;
}

/** What a collect-samples command gets back. */
export interface CollectReport extends CollectionOutcome {
  readonly uploaded: UploadReport;
  /** Where the samples went: `http`, `registry`, or `none` (they stay in the device store). */
  readonly target: 'none' | 'http' | 'registry';
  readonly destination: string;
  /** Samples still on the device after the upload. */
  readonly pending: number;
}

/**
 * The device side of co-evolution built from the `coevolution` config section: the sample
 * store and miner, the drift monitor, the cascade, and the periodic uploader. The composition
 * root (src/main.ts) passes `hooks()` to ModelSlots and calls start/stop in its lifecycle.
 */
export class DeviceCoevolution {
  private store: SampleStore | undefined;
  private miner: HardSampleMiner | undefined;
  private drift: DriftMonitor | undefined;
  private cascade: CloudCascade | undefined;
  private transport: BatchTransport | undefined;
  private lastUpload: { at: number; ok: boolean; report?: UploadReport } | undefined;
  private loop: Promise<void> | undefined;
  private uploading: Promise<unknown> = Promise.resolve();

  constructor(private readonly config: CoevolutionConfig, private readonly deps: DeviceCoevolutionDeps) {}

  /** Opens the store and starts the upload loop (until `signal` aborts). */
  async start(signal: AbortSignal): Promise<void> {
    const { config, deps } = this;
    if (config.mining.enabled) {
      this.store = await SampleStore.open(config.mining.dir ?? path.join(deps.stateDir, 'samples'), config.mining);
      this.miner = new HardSampleMiner(
        { enabled: true, rules: config.mining.rules, defaultRule: config.mining.defaultRule, maxPerMinute: config.mining.maxPerMinute },
        this.store, deps.clock, (err) => deps.onError(toEdgevolveError(err)),
      );
    }
    if (config.drift.enabled) {
      const sink: DriftSink = {
        report: (report: DriftReport) => {
          // One number in telemetry: the worst model's latest score.
          deps.quality?.setDriftScore(Math.max(...(this.drift?.latest() ?? [report]).map((r) => r.score)));
          deps.driftSink.report(report);
        },
        event: (report) => deps.driftSink.event(report),
      };
      this.drift = new DriftMonitor(config.drift, sink);
    }
    if (config.cascade.enabled) {
      if (config.cascade.url === undefined) throw new EdgevolveError('E_CONFIG_INVALID', 'coevolution.cascade.enabled needs coevolution.cascade.url');
      this.cascade = new CloudCascade({ ...config.cascade, url: config.cascade.url }, () => deps.clock.now(), deps.onError);
    }
    this.transport = this.makeTransport();
    if (this.store !== undefined && this.transport !== undefined) this.loop = this.uploadLoop(signal);
  }

  /**
   * The serving path's hooks. Stable objects that may be handed to ModelSlots before
   * `start`: until then (and after `stop`) they observe nothing and intercept nothing.
   */
  hooks(): ServingHooks {
    const internal = this.deps.isInternalRequest ?? (() => false);
    const observer = {
      onInference: (event: ServedInference): void => {
        if (internal(event.requestId)) return;
        this.scoreRows(event);
        this.miner?.onInference(event);
      },
    };
    const interceptor = this.config.cascade.enabled
      ? { intercept: (req: Parameters<CloudCascade['intercept']>[0]) => (this.cascade === undefined || internal(req.requestId) ? Promise.resolve(undefined) : this.cascade.intercept(req)) }
      : undefined;
    return { observers: [observer], interceptor };
  }

  /** One upload pass now (also what the loop runs every upload.intervalS); passes never overlap. */
  async uploadOnce(): Promise<UploadReport> {
    const run = this.uploading.then(() => this.uploadPass());
    this.uploading = run.catch(() => undefined);
    return run;
  }

  private async uploadPass(): Promise<UploadReport> {
    if (this.store === undefined || this.transport === undefined) return { batches: 0, samples: 0, bytes: 0 };
    await this.miner?.drain();
    try {
      const report = await uploadPending(this.store, this.transport, this.deps.deviceId, this.config.upload.batchSize, () => this.deps.clock.now());
      this.lastUpload = { at: this.deps.clock.now(), ok: true, report };
      return report;
    } catch (err) {
      this.lastUpload = { at: this.deps.clock.now(), ok: false };
      throw err;
    }
  }

  /**
   * The collect-samples command: keeps up to `count` live rows meeting `criterion` (bounded
   * by `maxBytes`, the day caps and the disk quota), waiting at most collect.maxWaitS or until
   * `signal` aborts, then uploads everything pending to the configured target.
   */
  async collect(request: { readonly count: number; readonly criterion: CollectionCriterion; readonly maxBytes?: number | undefined }, signal: AbortSignal): Promise<CollectReport> {
    if (this.miner === undefined || this.store === undefined) {
      throw new EdgevolveError('E_COEVO_DISABLED', 'hard-sample mining is off on this device (coevolution.enabled and coevolution.mining.enabled): nothing can be collected');
    }
    const collection = this.miner.collect({ ...request, maxBytes: request.maxBytes, entropyAbove: this.config.collect.highEntropyAbove });
    const timer = setTimeout(() => collection.end('wait'), this.config.collect.maxWaitS * 1000);
    const onAbort = (): void => collection.end('cancelled');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await collection.done;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    await this.miner.drain();
    if (signal.aborted) throw new EdgevolveError('E_COEVO_INVALID', 'sample collection cancelled; what was kept stays on the device for the next upload', { context: { ...collection.outcome() } });
    const uploaded = await this.uploadOnce();
    const { upload } = this.config;
    const destination = upload.target === 'http' ? (upload.url ?? '') : upload.target === 'registry' ? (upload.repository ?? '') : this.store.dir;
    return { ...collection.outcome(), uploaded, target: upload.target, destination, pending: this.store.count() };
  }

  /**
   * Scores every answer row once for telemetry (confidence, entropy, the rule's verdict) and
   * the drift monitor.
   */
  private scoreRows(event: ServedInference): void {
    const { quality } = this.deps;
    const { drift } = this;
    const outputs = event.localOutputs;
    if ((quality === undefined && drift === undefined) || outputs === undefined) return;
    const rule: ModelMiningRule | undefined = this.config.mining.rules[event.model] ?? this.config.mining.defaultRule;
    const name = rule?.kind === 'classification' && rule.output !== undefined ? rule.output : Object.keys(outputs)[0];
    const output = name === undefined ? undefined : outputs[name];
    if (output === undefined) return;
    const rows = output.dims[0] ?? 1;
    for (let row = 0; row < rows; row++) {
      const scores = rowScores(output, row, rows);
      if (scores === undefined) return;
      drift?.observe(event.model, event.version, scores.maxProbability, scores.normalizedEntropy);
      if (quality === undefined) continue;
      const hard = rule !== undefined && judge(rule, outputs, row, rows, scores) !== undefined;
      quality.recordPrediction(scores.maxProbability, scores.normalizedEntropy * Math.log(output.data.length / rows), hard);
    }
  }

  /** Mining and cascade counters, store size and drift, for telemetry and `edgevolve status`. */
  snapshot(): Record<string, unknown> {
    return {
      mining: this.miner?.stats ?? null,
      stored: this.store === undefined ? null : { samples: this.store.count(), bytes: this.store.bytesOnDisk(), counters: this.store.counters() },
      cascade: this.cascade === undefined ? null : { ...this.cascade.counters, breaker: this.cascade.breakerState },
      drift: this.drift?.latest() ?? [],
      lastUpload: this.lastUpload ?? null,
    };
  }

  /** The cascade's counters (requests, offloaded, answered by cloud/locally...); undefined with the cascade off or before start. */
  cascadeCounters(): Readonly<CascadeCounters> | undefined {
    return this.cascade?.counters;
  }

    /** Share of the answers seen so far that were hard (telemetry quality.hardSampleRate). */
  hardSampleRate(): number | null {
    const stats = this.miner?.stats;
    return stats === undefined || stats.seen === 0 ? null : stats.hard / stats.seen;
  }

  /** Waits for the upload loop (abort its `start` signal first), drains the miner and closes the store. */
  async stop(): Promise<void> {
    await this.loop;
    await this.uploading;
    await this.miner?.drain();
    this.miner = undefined;
    this.drift = undefined;
    this.cascade = undefined;
    this.store?.close();
    this.store = undefined;
  }

  private makeTransport(): BatchTransport | undefined {
    const { upload } = this.config;
    switch (upload.target) {
      case 'none':
        return undefined;
      case 'http':
        if (upload.url === undefined) throw new EdgevolveError('E_CONFIG_INVALID', 'coevolution.upload.target http needs coevolution.upload.url');
        return httpTransport(upload.url, { token: upload.token, timeoutMs: upload.timeoutMs });
      case 'registry':
        if (this.deps.registryTarget === undefined) throw new EdgevolveError('E_CONFIG_INVALID', 'coevolution.upload.target registry needs coevolution.upload.repository');
        return registryTransport(this.deps.registryTarget);
    }
  }

  private async uploadLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.deps.clock.sleep(this.config.upload.intervalS * 1000, signal);
      } catch {
        return; // aborted
      }
      await this.uploadOnce().catch((err: unknown) => this.deps.onError(toEdgevolveError(err)));
    }
  }
}
