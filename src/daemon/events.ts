/**
 * Daemon events: one typed map from event kind to its fields (STYLE: no emitX/onX pairs).
 * They go to the log, to counters shown by `edgevolve status`, and to whatever sink the
 * composition root wires (the telemetry outbox when there is one).
 */
import type { Logger } from '../log/index.ts';
import type { BreachCause } from './budget-watch.ts';

/** What a shadow measured, as events carry it (null: nothing measured). */
export interface ShadowMeasurement {
  readonly model: string;
  readonly version: string;
  readonly variant: string;
  /** The version that kept serving during the shadow. */
  readonly live: string;
  readonly reason: string;
  readonly mirrored: number;
  readonly dropped: number;
  readonly failed: number;
  readonly agreement: number | null;
  readonly metric: string | null;
  readonly candidateP95Ms: number | null;
  readonly liveP95Ms: number | null;
}

/** Why an on-device optimization ran. */
export type LocalOptimizeTrigger = 'command' | 'budget-watch' | 'rollback' | 'always';

/**
 * How it ended: `built` (a new variant), `cached` (a variant built before, answered from the
 * cache), `parent-meets` (fp32 itself is the choice), `no-candidate` (nothing meets the
 * budgets), `failed` (the search could not run), `cancelled` (shutdown, a newer deploy, a rollback).
 */
export type LocalOptimizeEventOutcome = 'built' | 'cached' | 'parent-meets' | 'no-candidate' | 'failed' | 'cancelled';

export interface LocalOptimizeEvent {
  readonly model: string;
  readonly trigger: LocalOptimizeTrigger;
  readonly outcome: LocalOptimizeEventOutcome;
  /** The variant the planner started from (`1.0.0/fp32`); null when it failed before one was pulled. */
  readonly parent: string | null;
  /** The planner's candidate id (`int8-dynamic`, `mixed:...`) of a built variant. */
  readonly method: string | null;
  /** The stored variant (`opt-int8-dynamic-1a2b3c4d`) of a built variant. */
  readonly variant: string | null;
  /** What the planner measured for the chosen candidate (latency_ms_p95, size_bytes, accuracy_drop...). */
  readonly metrics: Readonly<Record<string, number>>;
  /** Whether the result came from the optimize cache rather than a search. */
  readonly cached: boolean;
  /** The planner's reason, its advice when nothing fits, or the error. */
  readonly reason: string;
}

export interface DaemonEventMap {
  'daemon-started': { readonly pid: number; readonly models: readonly string[]; readonly startMs: number };
  'daemon-stopping': { readonly signal: string };
  'deploy-started': { readonly model: string; readonly version: string; readonly variant: string; readonly reason: string; readonly entries: number };
  'deploy-committed': { readonly model: string; readonly version: string; readonly variant: string; readonly gate: string };
  /**
   * `from`/`to` are `version/variant`; the manifest digests name the exact variant (a local
   * variant shares its parent's version string, and a version may be republished).
   */
  'deploy-rolled-back': {
    readonly model: string;
    readonly from: string;
    readonly fromManifest: string | null;
    readonly to: string | null;
    readonly toManifest: string | null;
    readonly reason: string;
  };
  'shadow-started': { readonly model: string; readonly version: string; readonly variant: string; readonly live: string; readonly share: number; readonly entries: number };
  /** The candidate goes on to its trial; `evidence` false when promoted by onNoTraffic. */
  'shadow-promoted': ShadowMeasurement & { readonly evidence: boolean };
  /** The candidate never served; the live version is untouched. */
  'shadow-rejected': ShadowMeasurement & { readonly evidence: boolean };
  /** Too few requests were mirrored within maxDurationMs; `action` is what onNoTraffic chose. */
  'shadow-timeout': { readonly model: string; readonly version: string; readonly mirrored: number; readonly minRequests: number; readonly maxDurationMs: number; readonly action: 'promote' | 'reject' };
  /**
   * Shadow mode is on but no live request can reach the serving to be mirrored (in-process
   * serving without the KServe API): the shadow is not started; `action` is what
   * onNoTraffic chose at once instead of after maxDurationMs.
   */
  'shadow-skipped': { readonly model: string; readonly version: string; readonly variant: string; readonly live: string; readonly reason: string; readonly action: 'trial' | 'reject' };
  'deploy-aborted': { readonly model: string; readonly version: string; readonly reason: string };
  /** p95Ms and budgetMs are null when memory alone breached; the cause fields say what the device read at the time. */
  'budget-breach': { readonly model: string; readonly p95Ms: number | null; readonly budgetMs: number | null; readonly forMs: number } & BreachCause;
  'replan': { readonly model: string; readonly from: string; readonly to: string | null; readonly reason: string };
  /** What an on-device optimization did (every run, whatever started it and however it ended). */
  'local-optimize': LocalOptimizeEvent;
  /**
   * At start: service.memoryMax differs from the cgroup's memory.max (the unit was not
   * re-installed after the key changed). Bytes are null for "no limit".
   */
  'memory-limit-mismatch': { readonly configured: string; readonly expectedBytes: number | null; readonly actualBytes: number | null; readonly cgroup: string; readonly message: string };
  'runtime-error': { readonly where: string; readonly code: string; readonly message: string };
  'config-reloaded': { readonly applied: readonly string[]; readonly needsRestart: readonly string[] };
}

export type DaemonEventKind = keyof DaemonEventMap;

export interface DaemonEvent<K extends DaemonEventKind = DaemonEventKind> {
  readonly kind: K;
  readonly at: number;
  readonly fields: DaemonEventMap[K];
}

/** Where events go besides the log; `emit` must not throw (a sink failure is the sink's to count). */
export interface EventSink {
  emit(event: DaemonEvent): void;
}

/** Kinds logged at warn level: something an operator should look at. */
const WARNINGS: ReadonlySet<DaemonEventKind> = new Set<DaemonEventKind>(['deploy-rolled-back', 'deploy-aborted', 'shadow-rejected', 'shadow-timeout', 'shadow-skipped', 'runtime-error', 'budget-breach', 'memory-limit-mismatch']);

/** Keeps the last events and a count per kind for `edgevolve status`, logs each, forwards to sinks. */
export class EventLog implements EventSink {
  readonly #recent: DaemonEvent[] = [];
  readonly #counts = new Map<string, number>();
  readonly #logger: Logger;
  readonly #sinks: EventSink[] = [];
  readonly #keep: number;

  constructor(logger: Logger, keep = 50) {
    this.#logger = logger;
    this.#keep = keep;
  }

  addSink(sink: EventSink): void {
    this.#sinks.push(sink);
  }

  record<K extends DaemonEventKind>(kind: K, fields: DaemonEventMap[K], at = Date.now()): void {
    this.emit({ kind, at, fields });
  }

  emit(event: DaemonEvent): void {
    this.#recent.push(event);
    if (this.#recent.length > this.#keep) this.#recent.shift();
    this.#counts.set(event.kind, (this.#counts.get(event.kind) ?? 0) + 1);
    const level = WARNINGS.has(event.kind) ? 'warn' : 'info';
    this.#logger[level]({ event: event.kind, ...event.fields }, event.kind);
    for (const sink of this.#sinks) {
      try {
        sink.emit(event);
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'event sink failed');
      }
    }
  }

  recent(): readonly DaemonEvent[] {
    return this.#recent;
  }

  counts(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#counts);
  }

  /** Events of one kind, newest last (tests, status). */
  ofKind<K extends DaemonEventKind>(kind: K): DaemonEvent<K>[] {
    return this.#recent.filter((e): e is DaemonEvent<K> => e.kind === kind);
  }
}
