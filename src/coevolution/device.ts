import path from 'node:path';
import type { Clock } from '../host/index.ts';
import type { ContentTarget } from '../registry/content.ts';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import { CloudCascade } from './cascade/cascade.ts';
import type { CoevolutionConfig } from './config.ts';
import { DriftMonitor, type DriftSink } from './drift.ts';
import { HardSampleMiner, type ObservedInference } from './samples/miner.ts';
import { registryTransport } from './samples/registry-transport.ts';
import { SampleStore } from './samples/store.ts';
import { httpTransport, uploadPending, type BatchTransport, type UploadReport } from './samples/upload.ts';

export interface DeviceCoevolutionDeps {
  readonly stateDir: string;
  readonly deviceId: string;
  readonly clock: Clock;
  /** Drift scores (telemetry) and threshold crossings (events). */
  readonly driftSink: DriftSink;
  /** For `upload.target: registry`: the push target of `upload.repository` (src/registry), built by the composition root. */
  readonly registryTarget?: ContentTarget | undefined;
  readonly onError: (err: EdgevolveError) => void;
}

/** What the serving path takes: observers (mining, drift) and an optional interceptor (cascade). */
export interface ServingHooks {
  readonly observers: readonly { onInference(event: ObservedInference): void }[];
  readonly interceptor: CloudCascade | undefined;
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
    if (config.drift.enabled) this.drift = new DriftMonitor(config.drift, deps.driftSink);
    if (config.cascade.enabled) {
      if (config.cascade.url === undefined) throw new EdgevolveError('E_CONFIG_INVALID', 'coevolution.cascade.enabled needs coevolution.cascade.url');
      this.cascade = new CloudCascade({ ...config.cascade, url: config.cascade.url }, () => deps.clock.now(), deps.onError);
    }
    this.transport = this.makeTransport();
    if (this.store !== undefined && this.transport !== undefined) this.loop = this.uploadLoop(signal);
  }

  hooks(): ServingHooks {
    return { observers: [this.miner, this.drift].filter((o) => o !== undefined), interceptor: this.cascade };
  }

  /** One upload pass now (also what the loop runs every upload.intervalS). */
  async uploadOnce(): Promise<UploadReport> {
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

  /** Share of the answers seen so far that were hard (telemetry quality.hardSampleRate). */
  hardSampleRate(): number | null {
    const stats = this.miner?.stats;
    return stats === undefined || stats.seen === 0 ? null : stats.hard / stats.seen;
  }

  async stop(): Promise<void> {
    await this.loop;
    await this.miner?.drain();
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
