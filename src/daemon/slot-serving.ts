/**
 * ModelServing over runtime/serving's ModelSlots, the sessions the KServe API serves:
 * each load re-reads the version through `openVerifiedModel` (the bytes handed to
 * onnxruntime are the bytes hashed, P4) and swaps the slot without failing in-flight
 * requests; probes are ordinary inferences on warm-up inputs, tagged so that the
 * trial and budget windows count only live traffic from the observer.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/index.ts';
import { openVerifiedModel, type VerifiedStore } from '../registry/index.ts';
import { createSession, type SessionOptions } from '../runtime/index.ts';
import { warmupFeeds, type InferenceEvent, type InferenceObserver, type ModelSlots } from '../runtime/serving/index.ts';
import type { InferenceOutcome, ModelServing, ServedModel } from './ports.ts';

/** The request id probes carry, so observers can tell them from live requests. */
export const PROBE_REQUEST_ID = 'edgevolve-health-probe';

export class SlotServing implements ModelServing {
  readonly #slots: () => ModelSlots;
  readonly #store: VerifiedStore;
  readonly #session: SessionOptions;
  readonly #served = new Map<string, { model: ServedModel; probeFeeds: Record<string, TensorValue> }>();
  readonly #listeners = new Set<(o: InferenceOutcome) => void>();

  /** `slots` is a getter because the slots are built with this object as their observer. */
  constructor(slots: () => ModelSlots, store: VerifiedStore, session: SessionOptions) {
    this.#slots = slots;
    this.#store = store;
    this.#session = session;
  }

  async load(model: ServedModel): Promise<void> {
    const verified = await openVerifiedModel(this.#store, { name: model.name, manifestDigest: model.manifestDigest });
    const slot = this.#slots().add(model.name);
    await slot.swap({
      version: model.version,
      variant: model.variant,
      labels: { manifest: model.manifestDigest },
      createSession: () => createSession(verified.bytes, { ...this.#session, externalData: verified.externalData }),
    });
    const active = slot.active;
    if (active === undefined) throw new EdgevolveError('E_INTERNAL', `slot ${model.name} is empty after a swap`);
    this.#served.set(model.name, { model, probeFeeds: warmupFeeds(active.inputs) });
  }

  async unload(name: string): Promise<void> {
    // Slots keep serving until closed; forgetting the model stops probes and the gate.
    this.#served.delete(name);
    return Promise.resolve();
  }

  async probe(name: string): Promise<void> {
    const served = this.#served.get(name);
    const slot = this.#slots().get(name);
    if (served === undefined || slot === undefined) throw new EdgevolveError('E_DAEMON_NO_MODEL', `no model named ${name} is loaded`);
    await slot.infer(served.probeFeeds, { requestId: PROBE_REQUEST_ID });
  }

  loaded(): readonly ServedModel[] {
    return [...this.#served.values()].map((s) => s.model);
  }

  onInference(listener: (outcome: InferenceOutcome) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Give this to the slots: live inferences (not probes) feed the trial and budget windows. */
  readonly observer: InferenceObserver = {
    onInference: (event: InferenceEvent): void => {
      if (event.requestId === PROBE_REQUEST_ID) return;
      const outcome = { name: event.model, latencyMs: event.latencyMs, ok: event.error === undefined };
      for (const l of this.#listeners) l(outcome);
    },
  };

  async close(): Promise<void> {
    this.#served.clear();
    await this.#slots().close();
  }
}
