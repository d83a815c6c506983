/**
 * The telemetry service: the outbox, the MQTT link and the aggregator, put together.
 * The composition root (src/main.ts) builds one with `openTelemetry`, hands its
 * `recorder` to the server and co-evolution, its `publish`/`onCommand` to src/control,
 * and calls `start()`/`stop()` in lifecycle order. It works without a broker: every
 * message is committed to the outbox and drains when a broker is reachable.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import type { Clock, Random } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { TelemetryAggregator, type TelemetryRecorder } from './aggregator.ts';
import type { MqttConfig, TelemetryConfig } from './config.ts';
import { MqttLink, type BirthProvider, type CommandHandler, type LinkStatus, type TlsMaterial } from './link.ts';
import { Outbox, PRIORITY, type NewMessage, type OutboxChange, type OutboxStats, type StoredMessage } from './outbox.ts';
import { PAYLOAD_VERSION, type EventType, type TelemetryEvent } from './schemas.ts';
import type { SystemSampler } from './system.ts';
import { deviceTopics, type DeviceTopics } from './topics.ts';

export interface PublishOptions {
  /** Accepted for the interface src/control expects; every message goes out at QoS 1 from the outbox. */
  readonly qos?: 0 | 1;
  readonly retain?: boolean;
  /**
   * Runs once the broker acknowledged the message (PUBACK). Never, when this process
   * stops first: the outbox is synchronous=NORMAL, so a caller whose own store must know
   * the broker has the message (command results in control.db) waits for this, not for
   * the commit.
   */
  readonly onDelivered?: () => void;
}

/** What src/control and src/coevolution need: send under the device's subtree, and receive commands. */
export interface MessageChannel {
  /**
   * Commits the message to the outbox and resolves only after that transaction committed
   * (rejects with E_TELEMETRY_OUTBOX_FULL when the disk had no room); sends it when connected.
   */
  publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void>;
  onCommand(handler: CommandHandler): void;
}

interface PendingPublish {
  readonly message: NewMessage;
  readonly onDelivered: (() => void) | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export interface TelemetryOptions {
  readonly mqtt: MqttConfig;
  readonly telemetry: TelemetryConfig;
  readonly stateDir: string;
  readonly device: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly sampler: SystemSampler;
  readonly birth: BirthProvider;
  readonly tls?: TlsMaterial;
  /** Default <stateDir>/telemetry.db. */
  readonly outboxPath?: string;
}

export interface TelemetryHealth {
  readonly ok: boolean;
  readonly reason: string;
  /** null when nothing succeeded yet (the daemon's ServiceHealth shape). */
  readonly lastSuccessAt: number | null;
}

export class TelemetryService implements MessageChannel {
  readonly topics: DeviceTopics;
  readonly outbox: Outbox;
  readonly link: MqttLink;
  private readonly aggregator: TelemetryAggregator;
  private readonly options: TelemetryOptions;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastTickAt: number | undefined;
  private pendingDropReport: number | undefined;
  /**
   * seq → PublishOptions.onDelivered. An entry whose row is evicted or refused by the
   * broker stays until the process ends: results only, a handful at a time.
   */
  private readonly deliveries = new Map<number, () => void>();
  /** publish() calls of this event-loop turn, committed together (group commit). */
  private readonly pending: PendingPublish[] = [];
  private groupCommitScheduled = false;

  constructor(options: TelemetryOptions, outbox: Outbox, topics: DeviceTopics) {
    this.options = options;
    this.outbox = outbox;
    this.topics = topics;
    this.log = options.logger.child({ module: 'telemetry' });
    this.aggregator = new TelemetryAggregator({
      device: options.device,
      intervalMs: options.telemetry.intervalMs,
      latencyBucketsMs: options.telemetry.latencyBucketsMs,
      sampler: options.sampler,
    });
    this.link = new MqttLink({
      config: options.mqtt,
      device: options.device,
      fleet: options.mqtt.fleet,
      topics,
      outbox,
      clock: options.clock,
      random: options.random,
      logger: options.logger,
      birth: options.birth,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      onDelivered: (rows) => this.delivered(rows),
    });
  }

  private delivered(rows: readonly StoredMessage[]): void {
    if (this.deliveries.size === 0) return;
    for (const { seq } of rows) {
      const callback = this.deliveries.get(seq);
      if (callback === undefined) continue;
      this.deliveries.delete(seq);
      try {
        callback();
      } catch (err) {
        this.log.error({ err, seq }, 'onDelivered callback threw');
      }
    }
  }

  /** Where co-evolution, the server and the planner report measurements. */
  get recorder(): TelemetryRecorder {
    return this.aggregator;
  }

  /** Starts the link (in the background) and the periodic metrics. Never waits for the broker. */
  start(): void {
    this.link.start();
    this.event('agent-start', 'info', 'edgevolve agent started', { outboxDepth: this.outbox.stats().rows });
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.log.error({ err }, 'telemetry tick failed'));
    }, this.options.telemetry.intervalMs);
    this.timer.unref();
  }

  /** One interval: commit the aggregated record, and report evictions since the last report. */
  async tick(): Promise<void> {
    if (this.closed) return;
    const now = this.options.clock.now();
    const record = await this.aggregator.snapshot(now, this.outbox.stats());
    if (this.closed) return;
    this.outbox.enqueue({ topic: this.topics.telemetry, priority: PRIORITY.metric, body: record, batchable: true });
    if (record.budgets.compliant === false) {
      this.event('budget-violation', 'warning', record.budgets.violations.join('; '), { violations: record.budgets.violations, model: record.model });
    }
    this.reportDrops();
    this.lastTickAt = now;
    this.link.notify();
  }

  /**
   * One drop report in the outbox at a time: while the last is unsent, counts accumulate
   * (a report per interval would itself fill a full outbox and be evicted).
   */
  private reportDrops(): void {
    if (this.pendingDropReport !== undefined && this.outbox.contains(this.pendingDropReport)) return;
    const dropped = this.outbox.takeDropReport();
    if (dropped.metric === 0 && dropped.event === 0) return;
    const stats = this.outbox.stats();
    this.pendingDropReport = this.event('outbox-dropped', 'warning', `outbox full: dropped ${dropped.metric} metric and ${dropped.event} event messages`, {
      metric: dropped.metric,
      event: dropped.event,
      totalMetric: stats.droppedTotal.metric,
      totalEvent: stats.droppedTotal.event,
    });
  }

  /** Commits an event (high priority: sent before any telemetry backlog) and sends it. Returns its seq, or undefined if the disk is full. */
  event(type: EventType, severity: TelemetryEvent['severity'], message: string, data: Record<string, unknown> = {}): number | undefined {
    if (this.closed) throw new EdgevolveError('E_TELEMETRY_CLOSED', 'telemetry is stopped');
    const body: Omit<TelemetryEvent, 'stream' | 'seq'> = {
      v: PAYLOAD_VERSION,
      kind: 'event',
      device: this.options.device,
      ts: this.options.clock.now(),
      type,
      severity,
      message: message.slice(0, 4096),
      data,
    };
    const seq = this.outbox.enqueue({ topic: this.topics.events, priority: PRIORITY.event, body });
    this.link.notify();
    return seq;
  }

  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new EdgevolveError('E_TELEMETRY_CLOSED', 'telemetry is stopped'));
    try {
      this.link.assertPublishable(topic);
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
      if (bytes.length > this.options.mqtt.maxPayloadBytes) {
        throw new EdgevolveError('E_TELEMETRY_PAYLOAD_TOO_LARGE', `message of ${bytes.length} bytes exceeds mqtt.maxPayloadBytes ${this.options.mqtt.maxPayloadBytes}`, {
          context: { topic, bytes: bytes.length },
        });
      }
      // Samples are bulk data: evicted with metrics, before events, acks and results.
      const priority = topic === this.topics.samples ? PRIORITY.metric : PRIORITY.event;
      return new Promise<void>((resolve, reject) => {
        this.pending.push({ message: { topic, priority, body: bytes, retain: options.retain === true }, onDelivered: options.onDelivered, resolve, reject });
        if (this.groupCommitScheduled) return;
        this.groupCommitScheduled = true;
        setImmediate(() => this.commitPending());
      });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Group commit: every publish() of one event-loop turn goes into one transaction (one
   * WAL write instead of one per message), and each caller's promise settles only after
   * it. A command's ack and result, or a burst of samples, cost one commit.
   */
  private commitPending(): void {
    this.groupCommitScheduled = false;
    const group = this.pending.splice(0);
    if (group.length === 0) return;
    let seqs: (number | undefined)[];
    try {
      seqs = this.outbox.enqueueMany(group.map((p) => p.message));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const p of group) p.reject(error);
      return;
    }
    group.forEach((p, i) => {
      const seq = seqs[i];
      if (seq === undefined) {
        const topic = p.message.topic;
        p.reject(new EdgevolveError('E_TELEMETRY_OUTBOX_FULL', `the outbox has no room for a message to ${topic} (disk full); it was dropped and counted`, { context: { topic } }));
        return;
      }
      if (p.onDelivered !== undefined) this.deliveries.set(seq, p.onDelivered);
      p.resolve();
    });
    this.link.notify();
  }

  onCommand(handler: CommandHandler): void {
    this.link.onCommand(handler);
  }

  status(): { link: LinkStatus; outbox: OutboxStats } {
    return { link: this.link.getStatus(), outbox: this.outbox.stats() };
  }

  /**
   * Fresh when the outbox is empty or the broker acknowledged something within two
   * intervals; without a broker configured, healthy while the outbox accepts writes.
   */
  health(): TelemetryHealth {
    const stats = this.outbox.stats();
    const link = this.link.getStatus();
    const lastAck = link.lastAckAt ?? null;
    if (stats.degraded) return { ok: false, reason: 'outbox degraded: disk full, telemetry is being dropped', lastSuccessAt: lastAck };
    if (this.options.mqtt.urls.length === 0) return { ok: true, reason: 'no broker configured; outbox accepting', lastSuccessAt: this.lastTickAt ?? null };
    if (stats.rows === 0) return { ok: true, reason: 'outbox drained', lastSuccessAt: lastAck ?? this.lastTickAt ?? null };
    const fresh = lastAck !== null && this.options.clock.now() - lastAck < 2 * this.options.telemetry.intervalMs;
    return fresh
      ? { ok: true, reason: `draining ${stats.rows} messages`, lastSuccessAt: lastAck }
      : { ok: false, reason: `${stats.rows} messages waiting; broker ${link.state}`, lastSuccessAt: lastAck };
  }

  /** Stops the timer and the link (retained death on a clean shutdown), then closes the outbox. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    // Publishes accepted before stop() are committed, not lost with the closing outbox.
    this.commitPending();
    await this.link.stop();
    this.outbox.close();
  }

  handleOutboxChange(change: OutboxChange): void {
    // Deferred: the outbox calls this from inside a failed insert.
    queueMicrotask(() => {
      if (this.closed) return;
      try {
        this.reportOutboxChange(change);
      } catch (err) {
        this.log.error({ err }, 'cannot record the outbox change');
      }
    });
  }

  private reportOutboxChange(change: OutboxChange): void {
    if (change.type === 'degraded') {
      this.log.error({ error: change.error }, 'outbox degraded: disk full; dropping telemetry until space returns');
      this.event('storage-degraded', 'error', `telemetry storage full: ${change.error}`, {});
    } else {
      this.log.warn({ dropped: change.droppedWhileDegraded }, 'outbox recovered');
      this.event('storage-recovered', 'info', 'telemetry storage writable again', { ...change.droppedWhileDegraded });
    }
  }
}

/** Opens <stateDir>/telemetry.db and builds the service; does not connect yet (start()). */
export function openTelemetry(options: TelemetryOptions): TelemetryService {
  const topics = deviceTopics(options.mqtt.fleet, options.device);
  mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  // The outbox reports to the service that is built right after it.
  const ref: { service?: TelemetryService } = {};
  const outbox = Outbox.open(options.outboxPath ?? join(options.stateDir, 'telemetry.db'), {
    device: options.device,
    clock: options.clock,
    limits: {
      maxRows: options.telemetry.outbox.maxRows,
      maxBytes: options.telemetry.outbox.maxBytes,
      maxAgeMs: options.telemetry.outbox.maxAgeHours * 3600_000,
    },
    onChange: (change) => ref.service?.handleOutboxChange(change),
  });
  const service = new TelemetryService(options, outbox, topics);
  ref.service = service;
  return service;
}
