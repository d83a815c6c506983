/**
 * Budgets are watched continuously: when p95 of live inferences stays over a model's
 * latency budget for `breachForMs` (a throttling CPU, memory pressure, a noisy
 * neighbour), the daemon re-plans: it asks for a lighter variant and reports it.
 * `stepBreach` is the pure rule; BudgetWatch runs it on a timer.
 */
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
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

export interface BudgetWatchDeps {
  readonly serving: ModelServing;
  readonly clock: Clock;
  readonly events: EventLog;
  readonly logger: Logger;
  readonly rules: () => BreachRules & { readonly enabled: boolean; readonly checkIntervalMs: number };
  readonly budgetMs: (name: string) => number | undefined;
  /** Picks and deploys a lighter variant; resolves with what it chose (null: nothing lighter). */
  readonly replan: (name: string, reason: string) => Promise<string | null>;
}

export class BudgetWatch {
  readonly #deps: BudgetWatchDeps;
  readonly #windows = new Map<string, LatencyWindow>();
  readonly #breach = new Map<string, BreachState>();
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

  /** One comparison of every served model's recent p95 with its budget. */
  async check(): Promise<void> {
    const rules = this.#deps.rules();
    if (!rules.enabled) return;
    const now = this.#deps.clock.now();
    for (const model of this.#deps.serving.loaded()) {
      const budget = this.#deps.budgetMs(model.name);
      const window = this.#windows.get(model.name);
      if (budget === undefined || window === undefined || this.#replanning.has(model.name)) continue;
      const summary = window.summary(now - rules.checkIntervalMs);
      const previous = this.#breach.get(model.name) ?? null;
      const step = stepBreach(previous, summary, budget, now, rules);
      this.#breach.set(model.name, step.state);
      if (!step.replan) continue;
      const forMs = now - (previous ?? now);
      this.#deps.events.record('budget-breach', { model: model.name, p95Ms: summary.p95Ms ?? 0, budgetMs: budget, forMs }, now);
      this.#replanning.add(model.name);
      const from = `${model.version}/${model.variant}`;
      const reason = `p95 ${(summary.p95Ms ?? 0).toFixed(1)} ms over the ${budget} ms budget for ${Math.round(forMs / 1000)} s`;
      try {
        const to = await this.#deps.replan(model.name, reason);
        this.#deps.events.record('replan', { model: model.name, from, to, reason: to === null ? `${reason}; no lighter variant fits this device` : reason }, this.#deps.clock.now());
      } catch (err) {
        this.#deps.events.record('replan', { model: model.name, from, to: null, reason: `${reason}; re-plan failed: ${(err as Error).message}` }, this.#deps.clock.now());
      } finally {
        this.#replanning.delete(model.name);
        window.clear();
      }
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe();
  }
}
