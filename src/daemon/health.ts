/**
 * The daemon's health, as freshness (STYLE 8): the event loop answered within
 * `maxEventLoopLagMs`, and a probe inference on every served model succeeded within
 * `probeFreshMs`. The watchdog pings only while this says ok.
 */
import { toEdgevolveError } from '../errors/index.ts';
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { ModelServing, ServiceHealth } from './ports.ts';

export interface HealthConfig {
  readonly maxEventLoopLagMs: number;
  readonly probeIntervalMs: number;
  readonly probeFreshMs: number;
}

export interface ModelProbeState {
  readonly lastSuccessAt: number | null;
  readonly lastError: string | null;
  readonly failures: number;
}

export class InferenceHealth {
  readonly #serving: ModelServing;
  readonly #clock: Clock;
  readonly #lag: () => number;
  readonly #config: () => HealthConfig;
  readonly #logger: Logger;
  readonly #probes = new Map<string, { lastSuccessAt: number | null; lastError: string | null; failures: number; since: number }>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(deps: { serving: ModelServing; clock: Clock; lag: () => number; config: () => HealthConfig; logger: Logger }) {
    this.#serving = deps.serving;
    this.#clock = deps.clock;
    this.#lag = deps.lag;
    this.#config = deps.config;
    this.#logger = deps.logger;
  }

  start(): void {
    const loop = (): void => {
      this.#timer = setTimeout(() => {
        void this.probeAll().finally(() => {
          if (this.#timer !== undefined) loop();
        });
      }, this.#config().probeIntervalMs);
      this.#timer.unref();
    };
    loop();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Probes every served model once (skipped while a round is still running). */
  async probeAll(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const served = this.#serving.loaded();
      for (const name of this.#probes.keys()) if (!served.some((m) => m.name === name)) this.#probes.delete(name);
      for (const model of served) {
        const entry = this.#probes.get(model.name) ?? { lastSuccessAt: null, lastError: null, failures: 0, since: this.#clock.now() };
        this.#probes.set(model.name, entry);
        try {
          await this.#serving.probe(model.name);
          entry.lastSuccessAt = this.#clock.now();
          entry.lastError = null;
        } catch (err) {
          const error = toEdgevolveError(err);
          entry.failures++;
          entry.lastError = `${error.code}: ${error.message}`;
          this.#logger.warn({ model: model.name, code: error.code, err: error.message }, 'health probe failed');
        }
      }
    } finally {
      this.#running = false;
    }
  }

  probes(): Readonly<Record<string, ModelProbeState>> {
    return Object.fromEntries([...this.#probes].map(([name, p]) => [name, { lastSuccessAt: p.lastSuccessAt, lastError: p.lastError, failures: p.failures }]));
  }

  health(): ServiceHealth {
    const config = this.#config();
    const now = this.#clock.now();
    const lag = this.#lag();
    if (lag > config.maxEventLoopLagMs) return { ok: false, reason: `event loop lag ${Math.round(lag)} ms over ${config.maxEventLoopLagMs} ms`, lastSuccessAt: null };
    let oldest: number | null = null;
    for (const [name, p] of this.#probes) {
      const reference = p.lastSuccessAt ?? p.since;
      if (now - reference > config.probeFreshMs) {
        return { ok: false, reason: `no successful inference on ${name} for ${Math.round((now - reference) / 1000)} s${p.lastError === null ? '' : ` (${p.lastError})`}`, lastSuccessAt: p.lastSuccessAt };
      }
      if (p.lastSuccessAt !== null) oldest = oldest === null ? p.lastSuccessAt : Math.min(oldest, p.lastSuccessAt);
    }
    return { ok: true, reason: this.#probes.size === 0 ? 'no model served yet' : `${this.#probes.size} model(s) answering`, lastSuccessAt: oldest };
  }
}
