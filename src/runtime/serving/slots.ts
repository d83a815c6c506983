/**
 * The set of model slots a server serves, by model name. The daemon adds one slot per
 * configured model before loading any, so readiness ("every configured model is
 * loaded") is false until each has a version.
 */
import { EdgevolveError } from '../../errors/index.ts';
import { ModelSlot, type ModelSlotOptions } from './slot.ts';

/** Model names as KServe URLs carry them: letters, digits, '.', '_', '-'. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class ModelSlots {
  readonly #slots = new Map<string, ModelSlot>();
  readonly #options: ModelSlotOptions;

  /** `options` apply to every slot added (observers, interceptor, warm-up, logger). */
  constructor(options: ModelSlotOptions = {}) {
    this.#options = options;
  }

  /** Adds an empty slot for `name`; returns the existing one when present. */
  add(name: string): ModelSlot {
    const existing = this.#slots.get(name);
    if (existing !== undefined) return existing;
    if (!MODEL_NAME.test(name)) {
      throw new EdgevolveError('E_CONFIG_INVALID', `model name '${name}' is not usable in a URL: use letters, digits, '.', '_' and '-' (at most 128)`, {
        context: { model: name },
      });
    }
    const slot = new ModelSlot(name, this.#options);
    this.#slots.set(name, slot);
    return slot;
  }

  get(name: string): ModelSlot | undefined {
    return this.#slots.get(name);
  }

  names(): string[] {
    return [...this.#slots.keys()];
  }

  all(): ModelSlot[] {
    return [...this.#slots.values()];
  }

  /** True when there is at least one slot and every slot serves a version. */
  allLoaded(): boolean {
    if (this.#slots.size === 0) return false;
    for (const slot of this.#slots.values()) if (!slot.loaded) return false;
    return true;
  }

  /** Closes every slot (each waits for its in-flight inferences). */
  async close(): Promise<void> {
    await Promise.all([...this.#slots.values()].map((s) => s.close()));
  }
}
