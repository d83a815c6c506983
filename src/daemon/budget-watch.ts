/**
 * Budgets are watched continuously: when p95 of live inferences stays over a model's
 * latency budget for `breachForMs` (a throttling CPU, memory pressure, a noisy
 * neighbour), or memory stays tight against its memory budget as long, the daemon
 * re-plans: it asks for a lighter variant and reports it, with the cause it read (CPU
 * throttled or not, and what said so; memory available and resident against the budget).
 * `stepBreach` and `stepSustained` are the pure rules; BudgetWatch runs them on a timer.
 */
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { DevicePressure, MemoryReading, ThrottleReading } from './device-pressure.ts';
import type { EventLog } from './events.ts';
import { LatencyWindow, type WindowSummary } from './latency-window.ts';
import type { ModelServing } from './ports.ts';

export interface BreachRules {
  readonly breachForMs: number;
  readonly minSamples: number;
}

/** When the current breach began, or null when within budget. */
export type BreachState = number | null;

export function stepBreach(state: BreachState, window: WindowSummary, budgetMs: number, now: number, rules: BreachRules): { state: BreachState; replan: boolean } {
  if (window.samples < rules.minSamples || window.p95Ms === undefined) return { state, replan: false };
  if (window.p95Ms <= budgetMs) return { state: null, replan: false };
  const since = state ?? now;
  if (now - since >= rules.breachForMs) return { state: null, replan: true };
  return { state: since, replan: false };
}

/**
 * One step of a condition that must hold for `forMs` before it counts: `over` undefined
 * (nothing read) leaves the state as it was, false ends it, true starts or continues it.
 */
export function stepSustained(state: BreachState, over: boolean | undefined, now: number, forMs: number): { state: BreachState; replan: boolean } {
  if (over === undefined) return { state, replan: false };
  if (!over) return { state: null, replan: false };
  const since = state ?? now;
  if (now - since >= forMs) return { state: null, replan: true };
  return { state: since, replan: false };
}

/**
 * Memory is tight for a model when less than its memoryMb is available (MemAvailable): a
 * swap creates the next version's session beside the serving one, so the device must hold
 * the budget twice. memoryMb is the model's own memory (what variant selection and the
 * planner compare with it), so the process's resident size, which includes Node's ~100 MB,
 * is reported with the breach but does not start one: against a budget under Node's own
 * footprint every check would re-plan, and no lighter variant can shrink Node.
 */
export function memoryTight(memory: MemoryReading, budgetMb: number): boolean {
  return memory.availableBytes < budgetMb * MIB;
}

const MIB = 1024 * 1024;

/** What a breach was measured against and what the device said at the time. */
export interface BreachCause {
  readonly cause: 'latency' | 'memory' | 'latency+memory';
  /** Null when the device cannot tell (no thermal zones, no firmware word). */
  readonly throttled: boolean | null;
  /** What was read about throttling (zones at their trip points, the firmware word); null when nothing. */
  readonly throttle: string | null;
  readonly memoryAvailableMb: number | null;
  readonly memoryResidentMb: number | null;
  readonly memoryBudgetMb: number | null;
}

export interface BudgetWatchDeps {
  readonly serving: ModelServing;
  readonly clock: Clock;
  readonly events: EventLog;
  readonly logger: Logger;
  readonly rules: () => BreachRules & { readonly enabled: boolean; readonly checkIntervalMs: number };
  readonly budgetMs: (name: string) => number | undefined;
  /** The model's memoryMb budget; absent: memory is not watched. */
  readonly memoryBudgetMb?: (name: string) => number | undefined;
  /** Throttling and memory readings; absent: breaches carry no cause readings and memory is not watched. */
  readonly pressure?: DevicePressure;
  /** Picks and deploys a lighter variant; resolves with what it chose (null: nothing lighter). */
  readonly replan: (name: string, reason: string) => Promise<string | null>;
}

export class BudgetWatch {
  readonly #deps: BudgetWatchDeps;
  readonly #windows = new Map<string, LatencyWindow>();
  readonly #breach = new Map<string, BreachState>();
  readonly #memoryBreach = new Map<string, BreachState>();
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | undefined;
  #replanning = new Set<string>();

  constructor(deps: BudgetWatchDeps) {
    this.#deps = deps;
    this.#unsubscribe = deps.serving.onInference((o) => {
      let window = this.#windows.get(o.name);
      if (window === undefined) {
        window = new LatencyWindow();
        this.#windows.set(o.name, window);
      }
      window.record(deps.clock.now(), o.latencyMs, o.ok);
    });
  }

  start(): void {
    const loop = (): void => {
      this.#timer = setTimeout(() => {
        void this.check().finally(() => {
          if (this.#timer !== undefined) loop();
        });
      }, this.#deps.rules().checkIntervalMs);
      this.#timer.unref();
    };
    loop();
  }

  /** One comparison of every served model's recent p95 and the memory it leaves with its budgets. */
  async check(): Promise<void> {
    const rules = this.#deps.rules();
    if (!rules.enabled) return;
    const now = this.#deps.clock.now();
    const loaded = this.#deps.serving.loaded();
    const memoryBudget = (name: string): number | undefined => this.#deps.memoryBudgetMb?.(name);
    // Read once per check, and only when some model has a memory budget.
    const memory = loaded.some((m) => memoryBudget(m.name) !== undefined) ? await this.#readMemory() : null;
    for (const model of loaded) {
      if (this.#replanning.has(model.name)) continue;
      const budget = this.#deps.budgetMs(model.name);
      const window = this.#windows.get(model.name);
      let latency: { p95Ms: number; forMs: number } | undefined;
      if (budget !== undefined && window !== undefined) {
        const summary = window.summary(now - rules.checkIntervalMs);
        const previous = this.#breach.get(model.name) ?? null;
        const step = stepBreach(previous, summary, budget, now, rules);
        this.#breach.set(model.name, step.state);
        if (step.replan) latency = { p95Ms: summary.p95Ms ?? 0, forMs: now - (previous ?? now) };
      }
      const memBudget = memoryBudget(model.name);
      let memoryForMs: number | undefined;
      if (memBudget !== undefined) {
        const previous = this.#memoryBreach.get(model.name) ?? null;
        const step = stepSustained(previous, memory === null ? undefined : memoryTight(memory, memBudget), now, rules.breachForMs);
        this.#memoryBreach.set(model.name, step.state);
        if (step.replan) memoryForMs = now - (previous ?? now);
      }
      if (latency === undefined && memoryForMs === undefined) continue;
      await this.#replan(model, { latency, budgetMs: budget, memoryForMs, memBudget, memory });
      window?.clear();
      this.#breach.delete(model.name);
      this.#memoryBreach.delete(model.name);
    }
  }

  async #readMemory(): Promise<MemoryReading | null> {
    return (await this.#deps.pressure?.memory().catch(() => null)) ?? null;
  }

  async #replan(
    model: { readonly name: string; readonly version: string; readonly variant: string },
    breach: { latency: { p95Ms: number; forMs: number } | undefined; budgetMs: number | undefined; memoryForMs: number | undefined; memBudget: number | undefined; memory: MemoryReading | null },
  ): Promise<void> {
    const now = this.#deps.clock.now();
    const throttle: ThrottleReading | null = (await this.#deps.pressure?.throttle().catch(() => null)) ?? null;
    const memory = breach.memory ?? (await this.#readMemory());
    const mb = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;
    const cause: BreachCause = {
      cause: breach.latency !== undefined && breach.memoryForMs !== undefined ? 'latency+memory' : breach.latency !== undefined ? 'latency' : 'memory',
      throttled: throttle?.throttled ?? null,
      throttle: throttle?.detail ?? null,
      memoryAvailableMb: memory === null ? null : mb(memory.availableBytes),
      memoryResidentMb: memory === null ? null : mb(memory.residentBytes),
      memoryBudgetMb: breach.memBudget ?? null,
    };
    const forMs = Math.max(breach.latency?.forMs ?? 0, breach.memoryForMs ?? 0);
    this.#deps.events.record('budget-breach', { model: model.name, p95Ms: breach.latency?.p95Ms ?? null, budgetMs: breach.latency === undefined ? null : (breach.budgetMs ?? null), forMs, ...cause }, now);
    const parts: string[] = [];
    if (breach.latency !== undefined) parts.push(`p95 ${breach.latency.p95Ms.toFixed(1)} ms over the ${breach.budgetMs} ms budget for ${Math.round(breach.latency.forMs / 1000)} s`);
    if (breach.memoryForMs !== undefined) {
      parts.push(`memory tight against the ${breach.memBudget} MB budget for ${Math.round(breach.memoryForMs / 1000)} s (resident ${cause.memoryResidentMb} MB, ${cause.memoryAvailableMb} MB available)`);
    }
    parts.push(throttle === null ? 'CPU throttling unknown' : `CPU ${throttle.throttled ? 'throttled' : 'not throttled'} (${throttle.detail})`);
    const reason = parts.join('; ');
    const from = `${model.version}/${model.variant}`;
    this.#replanning.add(model.name);
    try {
      const to = await this.#deps.replan(model.name, reason);
      this.#deps.events.record('replan', { model: model.name, from, to, reason: to === null ? `${reason}; no lighter variant fits this device` : reason }, this.#deps.clock.now());
    } catch (err) {
      this.#deps.events.record('replan', { model: model.name, from, to: null, reason: `${reason}; re-plan failed: ${(err as Error).message}` }, this.#deps.clock.now());
    } finally {
      this.#replanning.delete(model.name);
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe();
  }
}
