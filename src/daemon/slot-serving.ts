/**
 * ModelServing over runtime/serving's ModelSlots, the sessions the KServe API serves:
 * each load re-reads the version through `openVerifiedModel` (the bytes handed to
 * onnxruntime are the bytes hashed, P4) and swaps the slot without failing in-flight
 * requests; probes are ordinary inferences on warm-up inputs, tagged so that the
 * trial and budget windows count only live traffic from the observer. In shadow mode a
 * candidate's mirror sees the same live inferences (never the probes), and a promoted
 * candidate's warm session becomes the slot's next version (no second session created).
 */
import { EdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/index.ts';
import { openVerifiedModel, type VerifiedStore } from '../registry/verified-model.ts';
import { sessionModelBytes } from './session-bytes.ts';
import { createSession, type Session, type SessionOptions } from '../runtime/index.ts';
import { startShadowMirror, warmupFeeds, type InferenceEvent, type InferenceObserver, type ModelSlots, type ShadowMirror } from '../runtime/serving/index.ts';
import type { ShadowRun, ShadowServing } from './deploy.ts';
import { SHADOW_STOP_WAIT_MS, shadowRun } from './shadow-run.ts';
import type { BatchingVerdict, InferenceOutcome, ModelServing, ServedModel } from './ports.ts';

/** The request id probes carry, so observers can tell them from live requests. */
export const PROBE_REQUEST_ID = 'edgevolve-health-probe';

export class SlotServing implements ModelServing, ShadowServing {
  readonly #slots: () => ModelSlots;
  readonly #store: VerifiedStore;
  readonly #session: SessionOptions;
  readonly #served = new Map<string, { model: ServedModel; probeFeeds: Record<string, TensorValue> }>();
  readonly #listeners = new Set<(o: InferenceOutcome) => void>();
  readonly #mirrors = new Map<string, ShadowMirror<Session>>();

  /** `slots` is a getter because the slots are built with this object as their observer. */
  constructor(slots: () => ModelSlots, store: VerifiedStore, session: SessionOptions) {
    this.#slots = slots;
    this.#store = store;
    this.#session = session;
  }

  async load(model: ServedModel): Promise<void> {
    const verified = await openVerifiedModel(this.#store, { name: model.name, manifestDigest: model.manifestDigest });
    await this.#swapIn(model, () => createSession(sessionModelBytes(verified.bytes, verified.externalData), { ...this.#session, externalData: verified.externalData }));
  }

  async #swapIn(model: ServedModel, session: () => Promise<Session>): Promise<void> {
    const slot = this.#slots().add(model.name);
    await slot.swap({ version: model.version, variant: model.variant, labels: { manifest: model.manifestDigest }, createSession: session });
    const active = slot.active;
    if (active === undefined) throw new EdgevolveError('E_INTERNAL', `slot ${model.name} is empty after a swap`);
    this.#served.set(model.name, { model, probeFeeds: warmupFeeds(active.inputs) });
  }

  /** Loads `model` beside the version serving its name and mirrors a share of live requests to it until stopped. */
  async startShadow(model: ServedModel, options: { readonly share: number; readonly maxInFlight: number; readonly worker: boolean }): Promise<ShadowRun> {
    if (this.#mirrors.has(model.name)) throw new EdgevolveError('E_INTERNAL', `${model.name} already has a shadow running`);
    const verified = await openVerifiedModel(this.#store, { name: model.name, manifestDigest: model.manifestDigest });
    // In a worker thread a mirror does not hold the event loop the live requests wait on, but its latency includes the
    // round trip (README: shadow mode); when the live version runs in workers, so does the candidate, timed alike.
    const workers = options.worker || (this.#session.workers ?? 0) > 0 ? 1 : 0;
    const session = { ...this.#session, workers, externalData: verified.externalData };
    const mirror = await startShadowMirror({ version: model.version, createSession: () => createSession(sessionModelBytes(verified.bytes, verified.externalData), session) }, { share: options.share, maxInFlight: options.maxInFlight });
    this.#mirrors.set(model.name, mirror);
    const detach = (): void => {
      if (this.#mirrors.get(model.name) === mirror) this.#mirrors.delete(model.name);
    };
    // The shadow's session can serve only if it was made as the live ones are (in-process, or the same number of workers).
    const servesAsLive = workers === (this.#session.workers ?? 0);
    return shadowRun({ mirror, detach, canServe: () => servesAsLive, install: (warm) => this.#swapIn(model, () => Promise.resolve(warm)) });
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

  batching(name: string): BatchingVerdict | undefined {
    return this.#served.has(name) ? this.#slots().get(name)?.active?.batching : undefined;
  }

  onInference(listener: (outcome: InferenceOutcome) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Give this to the slots: live inferences (not probes) feed the trial and budget windows. */
  readonly observer: InferenceObserver = {
    onInference: (event: InferenceEvent): void => {
      if (event.requestId === PROBE_REQUEST_ID) return;
      this.#mirrors.get(event.model)?.onInference(event);
      const outcome = { name: event.model, latencyMs: event.latencyMs, ok: event.error === undefined };
      for (const l of this.#listeners) l(outcome);
    },
  };

  async close(): Promise<void> {
    this.#served.clear();
    const mirrors = [...this.#mirrors.values()];
    this.#mirrors.clear();
    await Promise.all(mirrors.map((m) => m.close(SHADOW_STOP_WAIT_MS)));
    await this.#slots().close();
  }
}
