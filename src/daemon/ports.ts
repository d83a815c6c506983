/**
 * The narrow interfaces the daemon needs from modules other people own (server,
 * telemetry, control). The composition root (src/main.ts) adapts the real modules to
 * these; tests pass the real ones or, for faults the real ones cannot produce, a stub
 * that says so.
 */

/** A model version ready to serve: what the store knows plus where its bytes are. */
export interface ServedModel {
  readonly name: string;
  readonly version: string;
  readonly variant: string;
  readonly versionId: number;
  readonly manifestDigest: string;
  readonly modelPath: string;
}

/** The batch probe's verdict on a served version (runtime/serving's BatchingState). */
export interface BatchingVerdict {
  readonly enabled: boolean;
  /** Most rows per batch when enabled. */
  readonly maxRows: number | undefined;
  readonly reason: string;
}

/** One finished inference on a served model (live request, not a probe). */
export interface InferenceOutcome {
  readonly name: string;
  readonly latencyMs: number;
  readonly ok: boolean;
}

/** The inference side: sessions per model name, swapped without failing in-flight requests. */
export interface ModelServing {
  /** Creates and warms a session for `model`, then switches `model.name` to it; the old one drains. */
  load(model: ServedModel): Promise<void>;
  unload(name: string): Promise<void>;
  /** One tiny inference on the active session of `name`; rejects when it fails. */
  probe(name: string): Promise<void>;
  /** What is being served now. */
  loaded(): readonly ServedModel[];
  /** Calls `listener` after every live inference; returns the unsubscribe function. */
  onInference(listener: (outcome: InferenceOutcome) => void): () => void;
  /** Whether the served version of `name` batches concurrent requests, and why; absent where serving never batches (in-process). */
  batching?(name: string): BatchingVerdict | undefined;
  /** Stops serving: no new sessions; releases every session. */
  close(): Promise<void>;
}

/** The local API (KServe v2): listening, and a stop that refuses new requests and drains in-flight ones. */
export interface ApiServer {
  listen(): Promise<{ readonly url: string }>;
  close(): Promise<void>;
}

/** The MQTT side: connect in the background (the link publishes the birth on each connect), flush on stop. */
export interface TelemetryLink {
  /** Starts connecting and returns at once; the broker may be unreachable for days. */
  start(): void;
  /** Flushes what can be flushed within the shutdown deadline, sends the death message, disconnects. */
  stop(): Promise<void>;
  health(): ServiceHealth;
}

/** The fleet command channel: listening starts after READY and stops first on shutdown. */
export interface CommandListener {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Health is freshness (STYLE 8): whether the service did its job recently enough. */
export interface ServiceHealth {
  readonly ok: boolean;
  readonly reason: string;
  readonly lastSuccessAt: number | null;
}
