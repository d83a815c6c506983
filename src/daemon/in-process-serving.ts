/**
 * ModelServing over plain onnxruntime sessions, without an HTTP API: what the daemon
 * uses for its own health probes and trials when no server is wired (and in tests).
 * The KServe API and its zero-downtime slots are src/server + src/runtime/serving;
 * src/main.ts adapts those to ModelServing when they are present.
 *
 * Shadow mode works as over the slots: `infer` is the live path, and a share of its
 * successful inferences is mirrored to a candidate (never the probes); a promoted
 * candidate's warm session becomes the served one. Inside the daemon with
 * `server.enabled: false` nothing calls `infer` (the composition root says so with
 * `liveTraffic: false`), so the deployment skips the shadow and
 * `deploy.shadow.onNoTraffic` decides at once; a program embedding the daemon that serves
 * through `infer` gets a judged shadow.
 */
import { EdgevolveError } from '../errors/index.ts';
import { elementTypeInfo, type TensorValue } from '../onnx/index.ts';
import { openVerifiedModel, type VerifiedStore } from '../registry/verified-model.ts';
import { sessionModelBytes } from './session-bytes.ts';
import { createSession, type Session, type SessionOptions } from '../runtime/index.ts';
import { startShadowMirror, type ShadowMirror } from '../runtime/serving/index.ts';
import type { ShadowRun, ShadowServing } from './deploy.ts';
import { SHADOW_STOP_WAIT_MS, shadowRun } from './shadow-run.ts';
import type { InferenceOutcome, ModelServing, ServedModel } from './ports.ts';

interface Slot {
  readonly model: ServedModel;
  readonly session: Session;
  /** Zero-filled inputs built once at load: a probe allocates nothing. */
  readonly probeFeeds: Readonly<Record<string, TensorValue>>;
  /** Runs started on `session` and not yet settled: it is released only when this is 0. */
  inFlight: number;
  /** Called when `inFlight` falls to 0 (a release waiting for the runs to finish). */
  onIdle: (() => void) | undefined;
}

/** Runs `fn` on the slot's session, counted, so a swap or unload releases the session only after it settles. */
async function leased<T>(slot: Slot, fn: (session: Session) => Promise<T>): Promise<T> {
  slot.inFlight++;
  try {
    return await fn(slot.session);
  } finally {
    slot.inFlight--;
    if (slot.inFlight === 0) slot.onIdle?.();
  }
}

/**
 * Releases the session of a slot no longer reachable through the map once its runs have
 * settled: onnxruntime-node starts a run on a later turn, so releasing under a started
 * `run` fails it with "Session already disposed".
 */
async function releaseWhenIdle(slot: Slot): Promise<void> {
  if (slot.inFlight > 0) await new Promise<void>((resolve) => (slot.onIdle = resolve));
  await slot.session.release();
}

export class InProcessServing implements ModelServing, ShadowServing {
  readonly #slots = new Map<string, Slot>();
  readonly #mirrors = new Map<string, ShadowMirror<Session>>();
  readonly #listeners = new Set<(o: InferenceOutcome) => void>();
  readonly #options: SessionOptions;
  readonly #liveTraffic: boolean;
  #closed = false;

  readonly #store: VerifiedStore | undefined;

  /**
   * With `store`, each load reads the version verified into memory (P4), external-data
   * layers included; without it, from `modelPath` (single-file models only: the blob
   * store keeps external data under digests, not beside the model under its location).
   * `liveTraffic: false`: nothing will call `infer` (the daemon without its KServe API), so
   * there is no traffic a shadow could mirror.
   */
  constructor(options: SessionOptions = { threads: 1 }, store?: VerifiedStore, traffic: { readonly liveTraffic?: boolean } = {}) {
    this.#options = options;
    this.#store = store;
    this.#liveTraffic = traffic.liveTraffic ?? true;
  }

  withoutLiveTraffic(): string | undefined {
    return this.#liveTraffic ? undefined : 'the in-process serving has no live requests to mirror (the KServe API is off: server.enabled is false)';
  }

  async #open(model: ServedModel, options: SessionOptions = this.#options): Promise<Session> {
    if (this.#store === undefined) return createSession(model.modelPath, options);
    const verified = await openVerifiedModel(this.#store, { name: model.name, manifestDigest: model.manifestDigest });
    return createSession(sessionModelBytes(verified.bytes, verified.externalData), { ...options, externalData: verified.externalData });
  }

  async load(model: ServedModel): Promise<void> {
    if (this.#closed) throw new EdgevolveError('E_DAEMON_STOPPING', `cannot load ${model.name}: serving is closed`);
    await this.#install(model, await this.#open(model));
  }

  /** Warms `session` and makes it serve `model.name`; the previous session is released. Releases `session` on failure. */
  async #install(model: ServedModel, session: Session): Promise<void> {
    let probeFeeds: Record<string, TensorValue>;
    try {
      probeFeeds = zeroFeeds(session);
      // Warm before the switch: the first run allocates; requests should not pay for it.
      await session.run(probeFeeds);
    } catch (err) {
      await session.release();
      throw err;
    }
    const old = this.#slots.get(model.name);
    this.#slots.set(model.name, { model, session, probeFeeds, inFlight: 0, onIdle: undefined });
    // In-flight requests finish on the old session; new ones already see the new one.
    if (old !== undefined) await releaseWhenIdle(old);
  }

  /** Loads `model` beside the version serving its name and mirrors a share of `infer` calls to it until stopped. */
  async startShadow(model: ServedModel, options: { readonly share: number; readonly maxInFlight: number; readonly worker: boolean }): Promise<ShadowRun> {
    if (this.#closed) throw new EdgevolveError('E_DAEMON_STOPPING', `cannot shadow ${model.name}: serving is closed`);
    if (this.#mirrors.has(model.name)) throw new EdgevolveError('E_INTERNAL', `${model.name} already has a shadow running`);
    // As in SlotServing: a worker keeps mirrors off the event loop at the price of the round trip in the candidate's latency.
    const workers = options.worker || (this.#options.workers ?? 0) > 0 ? 1 : 0;
    const mirror = await startShadowMirror({ version: model.version, createSession: () => this.#open(model, { ...this.#options, workers }) }, { share: options.share, maxInFlight: options.maxInFlight });
    this.#mirrors.set(model.name, mirror);
    const detach = (): void => {
      if (this.#mirrors.get(model.name) === mirror) this.#mirrors.delete(model.name);
    };
    const servesAsLive = workers === (this.#options.workers ?? 0);
    return shadowRun({ mirror, detach, canServe: () => servesAsLive && !this.#closed, install: (warm) => this.#install(model, warm) });
  }

  async unload(name: string): Promise<void> {
    const slot = this.#slots.get(name);
    this.#slots.delete(name);
    if (slot !== undefined) await releaseWhenIdle(slot);
  }

  async probe(name: string): Promise<void> {
    const slot = this.#slots.get(name);
    if (slot === undefined) throw new EdgevolveError('E_DAEMON_NO_MODEL', `no model named ${name} is loaded`);
    await leased(slot, (session) => session.run(slot.probeFeeds));
  }

  /** A live inference (what the HTTP API would do), reported to listeners. */
  async infer(name: string, feeds: Readonly<Record<string, TensorValue>>): Promise<Record<string, TensorValue>> {
    const slot = this.#slots.get(name);
    if (slot === undefined) throw new EdgevolveError('E_DAEMON_NO_MODEL', `no model named ${name} is loaded`);
    const t0 = performance.now();
    try {
      const out = await leased(slot, (session) => session.run(feeds));
      const latencyMs = performance.now() - t0;
      this.#notify({ name, latencyMs, ok: true });
      this.#mirrors.get(name)?.onInference({
        model: name,
        version: slot.model.version,
        variant: slot.model.variant,
        requestId: undefined,
        inputs: feeds,
        outputs: out,
        localOutputs: out,
        latencyMs,
        answeredBy: 'local',
        error: undefined,
      });
      return out;
    } catch (err) {
      this.#notify({ name, latencyMs: performance.now() - t0, ok: false });
      throw err;
    }
  }

  #notify(outcome: InferenceOutcome): void {
    for (const l of this.#listeners) l(outcome);
  }

  loaded(): readonly ServedModel[] {
    return [...this.#slots.values()].map((s) => s.model);
  }

  onInference(listener: (outcome: InferenceOutcome) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const mirrors = [...this.#mirrors.values()];
    this.#mirrors.clear();
    await Promise.all(mirrors.map((m) => m.close(SHADOW_STOP_WAIT_MS)));
    const slots = [...this.#slots.values()];
    this.#slots.clear();
    await Promise.all(slots.map((s) => releaseWhenIdle(s)));
  }
}

/** One zero sample per input: free dimensions (batch, sequence) become 1. */
export function zeroFeeds(session: Pick<Session, 'inputs'>): Record<string, TensorValue> {
  const feeds: Record<string, TensorValue> = {};
  for (const input of session.inputs) {
    const info = input.dataType === undefined ? undefined : elementTypeInfo(input.dataType);
    if (!input.isTensor || info === undefined || info.typedArray === 'string[]') {
      throw new EdgevolveError('E_RUNTIME_UNSUPPORTED_TYPE', `input '${input.name}' is not a numeric tensor; the daemon cannot probe this model`);
    }
    const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const size = dims.reduce((a, b) => a * b, 1) * info.lanes;
    const Ctor = globalThis[info.typedArray] as unknown as new (n: number) => TensorValue['data'];
    feeds[input.name] = { dataType: input.dataType as number, dims, data: new Ctor(size) };
  }
  return feeds;
}
