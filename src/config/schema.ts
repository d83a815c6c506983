import { z } from 'zod';
import { onnxLimitsSchema } from '../onnx/limits-schema.ts';
import { mqttConfigSchema, telemetryConfigSchema } from '../telemetry/config.ts';
import { controlConfigSchema } from '../control/config.ts';
import { coevolutionConfigSchema } from '../coevolution/config.ts';
import { parseSystemdMemoryMax } from './systemd-size.ts';

export { onnxLimitsSchema, DEFAULT_ONNX_LIMITS, type OnnxLimits } from '../onnx/limits-schema.ts';

/**
 * The configuration schema: one source for the types, the defaults (units in the
 * key names or descriptions) and `config/schema.json`. Later issues extend it
 * section by section (registry, mqtt, server, budgets...).
 */

/** registry/: how to reach registries and what to trust (README "Registry and store"). */
export const registryConfigSchema = z
  .object({
    auth: z
      .record(z.string(), z.object({ username: z.string(), password: z.string() }).strict())
      .default({})
      .describe('Credentials per registry host[:port] (basic auth, or the basic credentials a bearer token service asks for).'),
    plainHttp: z.array(z.string()).default([]).describe('Registry hosts spoken to over http:// (loopback test registries only).'),
    caFile: z.string().optional().describe('PEM CA bundle trusted for registry TLS instead of the system roots.'),
    certFile: z.string().optional().describe('PEM client certificate for mTLS to the registry.'),
    keyFile: z.string().optional().describe('PEM private key of certFile.'),
    maxManifestBytes: z.number().int().positive().default(4 * 1024 * 1024).describe('Largest manifest or index accepted, in bytes.'),
    maxBlobBytes: z.number().int().positive().default(16 * 1024 ** 3).describe('Largest blob (model layer) accepted, in bytes.'),
    concurrency: z.number().int().positive().max(64).default(4).describe('Concurrent blob transfers per registry repository.'),
    fastBlobReader: z
      .boolean()
      .default(true)
      .describe('Receive blob bodies from plain-http registries without a proxy on a bare socket straight into the write buffers (faster; anything else still goes through undici). false: always undici.'),
    retryAttempts: z.number().int().positive().max(20).default(5).describe('Attempts per request or blob download (resumed each time).'),
    preferPrecisions: z.array(z.string()).optional().describe('Precisions this device runs best, best first; default by CPU architecture.'),
    trust: z
      .object({
        requireSignature: z.boolean().default(false).describe('Refuse artifacts without a cosign signature from one of publicKeys.'),
        publicKeys: z.array(z.string()).default([]).describe('Paths of PEM ECDSA P-256 public keys (cosign.pub) pinned for verification.'),
        allowSignedDowngrade: z.boolean().default(false).describe('Accept an older version when it is signed and annotated dev.edgevolve.downgrade=true.'),
      })
      .strict()
      .prefault({})
      .describe('Signature policy for pulled artifacts (README "Signatures and trust policy").'),
  })
  .strict();

/** store/: the local blob store and state database under stateDir. */
export const storeConfigSchema = z
  .object({
    maxBytes: z.number().int().positive().optional().describe('Cap on the blob store size, in bytes (downloads over it are refused).'),
    reserveBytes: z.number().int().nonnegative().default(64 * 1024 * 1024).describe('Free space a download must leave on the filesystem, in bytes.'),
    keepPrevious: z.number().int().nonnegative().default(2).describe('Previous versions of each model kept for rollback.'),
    writeBatchBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024)
      .describe('Bytes of a download gathered per disk write, in bytes; also the most of a download that a kill (SIGKILL, power cut) loses and fetches again.'),
  })
  .strict();

/** daemon/: the desired models, lifecycle and supervision of `edgevolve run` (README "The daemon"). */
export const modelBudgetsSchema = z
  .object({
    latencyP95Ms: z.number().positive().optional().describe('Latency budget: p95 of one inference, ms. The health gate and the budget watch hold the model to it.'),
    memoryMb: z.number().positive().optional().describe('Memory the model may use, MB: variant selection, and the budget watch (less than it available for breachForMs re-plans; the process resident size over it is reported, not re-planned).'),
    minAccuracy: z.number().min(0).max(1).optional().describe('Lowest acceptable accuracy (0..1) of a variant, from its annotations.'),
    variant: z.string().optional().describe('Serve exactly this variant instead of choosing one.'),
  })
  .strict();

export const desiredModelSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/).describe('Name the model is served under (/v2/models/<name>).'),
    ref: z.string().min(1).describe('Where to get it: host[:port]/repo:tag, or oci-layout:<dir>:tag for a local OCI image layout.'),
    budgets: modelBudgetsSchema.prefault({}),
    optimize: z
      .enum(['never', 'when-needed', 'always'])
      .default('when-needed')
      .describe('On-device optimization to the budgets (planner): never; when-needed (no stored variant meets the latency budget: the budget watch found nothing lighter, or an optimize command); always (after each pull, when budgets are set). Results are cached per parent, budgets and hardware.'),
    optimizeTimeLimitS: z.number().positive().default(300).describe('Wall-time limit of one on-device optimization, in seconds.'),
    optimizeMethods: z
      .array(z.enum(['int8-dynamic', 'int8-static', 'fp16', 'mixed', 'prune', 'prune-channels']))
      .optional()
      .describe('Methods the automatic on-device optimization may use (the optimize command names its own); every method when absent.'),
    optimizeData: z
      .string()
      .min(1)
      .optional()
      .describe('Data set directory (one .npy per input + labels.npy) for on-device optimization when the artifact carries no calibration layers.'),
  })
  .strict();

export const daemonConfigSchema = z
  .object({
    models: z.array(desiredModelSchema).default([]).describe('Models this device should serve (desired state).'),
    seedFixtures: z
      .boolean()
      .default(false)
      .describe('Seed <stateDir>/oci with the bundled MNIST fixture models and serve them when no models are configured (the embedded default of `npm start`).'),
    shutdownTimeoutMs: z.number().int().positive().default(20_000).describe('Hard deadline for a clean stop after SIGTERM/SIGINT, ms; past it the process exits 128+signal.'),
    reconcileIntervalMs: z.number().int().positive().default(300_000).describe('How often desired state is re-checked against the registry (new tags), ms.'),
    watchdog: z
      .object({
        maxEventLoopLagMs: z.number().int().positive().default(2_000).describe('Event loop lag above which the daemon counts as hung (no WATCHDOG=1), ms.'),
        probeIntervalMs: z.number().int().positive().default(5_000).describe('How often a tiny inference on each active model checks the inference path, ms.'),
        probeFreshMs: z.number().int().positive().default(30_000).describe('A successful probe older than this makes the daemon unhealthy, ms.'),
      })
      .strict()
      .prefault({})
      .describe('Health check behind the systemd watchdog: WATCHDOG=1 is sent only while it passes; SIGHUP applies a change.'),
  })
  .strict();

/** deploy: the trial of a new version, its health gate, bounded retries and the budget watch. */
export const deployConfigSchema = z
  .object({
    trialDeadlineMs: z.number().int().positive().default(60_000).describe('A new version must pass its health gate within this time or it is rolled back, ms.'),
    minTrialMs: z.number().int().nonnegative().default(3_000).describe('Shortest trial: the gate is not judged before this, ms.'),
    minSamples: z.number().int().positive().default(20).describe('Inferences (live requests and probes) the gate needs before it judges.'),
    trialProbeIntervalMs: z.number().int().positive().default(100).describe('Probe inferences during a trial, one per this many ms, so an idle device still gets a verdict.'),
    maxErrorRate: z.number().min(0).max(1).default(0.02).describe('Highest share of failed inferences a version may have on trial.'),
    latencyTolerance: z.number().min(0).default(0.2).describe('p95 may exceed the latency budget by this fraction on trial (0.2 = 20%).'),
    maxTrialEntries: z
      .number()
      .int()
      .positive()
      .default(3)
      .describe('Restarts of the daemon while the same version is on trial before the deployment is aborted and rolled back (a crash loop).'),
    shadow: z
      .object({
        enabled: z.boolean().default(false).describe('Shadow mode: a new version first runs beside the serving one on a share of live requests, and is put on trial only when its answers agree and its latency holds.'),
        share: z.number().gt(0).max(1).default(0.1).describe('Share of live requests mirrored to the candidate (after their answer was sent), 0..1.'),
        minRequests: z.number().int().positive().default(200).describe('Mirrored requests the shadow needs before it judges the candidate.'),
        maxDurationMs: z.number().int().positive().default(600_000).describe('Longest shadow, ms: with fewer than minRequests mirrored by then, onNoTraffic decides.'),
        minAgreement: z.number().min(0).max(1).default(0.98).describe('Lowest mean agreement with the serving version: top-1 for classifier outputs [N, C], cosine for other float outputs, equality otherwise.'),
        maxLatencyRatio: z.number().positive().default(1.5).describe('Highest candidate p95 over the serving version p95 on the same mirrored requests (also held to the p95 budget, with latencyTolerance).'),
        maxInFlight: z.number().int().positive().default(2).describe('Mirrors queued or running (they run one at a time); sampled requests beyond this are dropped and counted.'),
        worker: z
          .boolean()
          .default(false)
          .describe("Run the candidate in a worker thread, so that a mirror does not hold the event loop the live requests are served on; its latency then includes the thread's round trip, which maxLatencyRatio must allow for (false: on the event loop, measured exactly as the live version)."),
        onNoTraffic: z
          .enum(['promote', 'reject'])
          .default('promote')
          .describe("What happens when fewer than minRequests were mirrored within maxDurationMs: 'promote' puts the candidate on trial without shadow evidence (its health gate still runs), 'reject' keeps the serving version. Decided at once, without a shadow, when no live request can reach the serving (server.enabled: false)."),
        checkIntervalMs: z.number().int().positive().default(1000).describe('How often the shadow statistics are judged, ms.'),
      })
      .strict()
      .prefault({})
      .describe('Shadow mode (README "The daemon", shadow mode); SIGHUP applies a change.'),
    budgetWatch: z
      .object({
        enabled: z.boolean().default(true).describe('Re-plan (pick a lighter variant) when p95 stays over the latency budget or memory stays tight against the memory budget.'),
        breachForMs: z.number().int().positive().default(120_000).describe('How long p95 must stay over the budget (or memory tight) before re-planning, ms.'),
        checkIntervalMs: z.number().int().positive().default(10_000).describe('How often p95 is compared to the budget, ms.'),
        minSamples: z.number().int().positive().default(50).describe('Inferences in a check window before its p95 counts.'),
      })
      .strict()
      .prefault({})
      .describe('Continuous budget watch: re-plan when live p95 stays over the model budget or memory stays tight; SIGHUP applies a change.'),
  })
  .strict();

/** planner/: defaults of `edgevolve optimize` (flags override them). */
export const plannerConfigSchema = z
  .object({
    objective: z.enum(['accuracy', 'latency', 'size']).default('accuracy').describe('What to optimize among the candidates that meet every budget.'),
    latencyP95Ms: z.number().positive().optional().describe('Default p95 latency budget of one run at `batch` samples, in ms (isolated benchmark).'),
    batch: z.number().int().positive().default(1).describe('Samples per run in every latency measurement of the planner (a device that serves batches is judged at its batch; the model needs a free batch axis).'),
    memoryMB: z.number().positive().optional().describe('Default peak memory budget of the benchmark process above its baseline, in MiB.'),
    sizeMB: z.number().positive().optional().describe('Default model file size budget, in MiB.'),
    maxAccuracyDrop: z.number().nonnegative().default(1).describe('Default accuracy budget: points of top-1 (or agreement, or cosine x 100) the result may lose against fp32. A guard even when only latency or size is asked for: without it the fastest candidate can be a pruned model that lost most of its accuracy.'),
    timeLimitS: z.number().positive().default(600).describe('Wall-time limit of one search, in seconds.'),
    threads: z.number().int().positive().default(1).describe('onnxruntime intra-op threads for every measurement (1: per-core numbers, stable on a shared device).'),
    subsetSamples: z.number().int().positive().default(300).describe('Samples of the accuracy pre-check before the full evaluation.'),
    sensitivitySamples: z.number().int().positive().default(300).describe('Samples of the per-layer sensitivity measurement (mixed precision): the accuracy drop each layer alone causes in int8, then its output cosine.'),
    calibrationSamples: z.number().int().positive().default(256).describe('Samples of the data set used to calibrate int8-static.'),
    maxFullCandidates: z.number().int().positive().default(20).describe('Stop after this many candidates were evaluated on the whole data set.'),
    benchMs: z.number().positive().default(1500).describe('Approximate timed-run budget of each isolated benchmark, in ms (20 to 500 runs).'),
  })
  .strict();

/** server/: the local inference API (KServe v2) and the model slots behind it (README "Inference API (KServe v2)"). */
export const serverConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Serve the KServe v2 inference API.'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to listen on; loopback by default, so only local applications reach it.'),
    port: z.number().int().min(0).max(65535).default(8080).describe('TCP port (0 picks a free one).'),
    socketPath: z.string().min(1).optional().describe('Listen on this unix socket instead of host:port (a stale socket file is replaced).'),
    token: z.string().min(16).optional().describe('Bearer token every endpoint but /v2/health/* requires (at least 16 characters); none when absent.'),
    maxBodyBytes: z.number().int().positive().default(64 * 1024 * 1024).describe('Largest request body, in bytes (413 beyond).'),
    concurrencyPerModel: z.number().int().positive().max(256).default(8).describe('Inferences admitted at once per model (onnxruntime-node runs them one at a time on the event loop; more overlaps parsing with running, and with batchMaxRows a batch holds only admitted requests: 8 served 9-12% more requests per server CPU second than 4 at concurrency 8, README "Inference API").'),
    maxQueuedRequests: z.number().int().nonnegative().default(64).describe('Requests waiting per model beyond concurrencyPerModel; more get 429 with Retry-After.'),
    requestTimeoutMs: z.number().int().positive().default(30_000).describe('Deadline from a request\'s arrival to its answer, ms (503 while queued, 504 while running).'),
    retryAfterSeconds: z.number().int().positive().default(1).describe('Retry-After sent with 429, in seconds.'),
    warmupRuns: z.number().int().nonnegative().default(3).describe('Warm-up inferences on generated inputs before a new version serves (during a swap, while the old one still serves).'),
    threads: z.number().int().positive().optional().describe('onnxruntime intra-op threads per serving session; one per core when absent.'),
    inferenceWorkers: z
      .number()
      .int()
      .nonnegative()
      .max(64)
      .default(0)
      .describe('Worker threads per served model, each with its own onnxruntime session, so request parsing overlaps inference; 0 runs inference on the event loop. Each worker holds a copy of the model (README "Inference API": measured trade-off).'),
    busyPollMs: z
      .number()
      .nonnegative()
      .max(1000)
      .default(0)
      .describe('Keep the event loop awake this many ms after each answer, so the next request and inference start on a core that did not sleep (one core busy meanwhile; an idle server stops spinning after the window); 0 is off (README "Inference API": measured).'),
    transport: z
      .enum(['lean', 'node-http'])
      .default('node-http')
      .describe("HTTP/1.1 transport of the API. 'node-http': node:http parses every request. 'lean': a strict parser on the accepted sockets for the common requests (Content-Length bodies, keep-alive, pipelining), handing anything else (chunked, Expect, Upgrade, absolute-form) to node:http on the same connection; it passes every server test but did not measure better than node:http on the 2-vCPU VM (README \"Inference API\": measured)."),
    batchMaxRows: z
      .union([z.literal('auto'), z.number().int().nonnegative().max(65536)], { error: "expected 'auto' or a row count from 0 to 65536" })
      .default('auto')
      .describe("Dynamic batching: requests that wait while the model runs are run together as one batch of up to this many rows (first-dimension entries), answers split per request; a batch holds at most concurrencyPerModel requests, and a lone request never waits. 'auto': up to 128 rows, only for models that pass the batch probe at load (each row of a batch must equal that row run alone; GET /v2/models/<name> shows parameters.batching and batching_reason). A number: batch every model whose inputs and outputs all have a free first dimension, unprobed (only for models whose rows do not affect each other); 0 or 1 is off (README \"Inference API\": measured)."),
  })
  .strict();

/** service: the systemd unit scripts/install.sh writes from this file (README "The daemon", installation). */
export const serviceConfigSchema = z
  .object({
    memoryMax: z
      .string()
      .refine((v) => parseSystemdMemoryMax(v) !== undefined, { message: "not a systemd MemoryMax= value: bytes with an optional K, M, G, T, P or E suffix (512M, 1.5G), a percentage up to 100% (60%), or 'infinity'" })
      .optional()
      .describe("MemoryMax= of the edgevolve unit (systemd syntax: 512M, 2G, 60%, infinity); the unit's own 75% when absent. Applied by re-running scripts/install.sh (a drop-in); the daemon warns at start when its cgroup's memory.max differs."),
  })
  .strict();

export const configSchema = z
  .object({
    stateDir: z.string().min(1).default('/var/lib/edgevolve').describe('Directory for the database, blobs and models.'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Least severe level logged (pino, JSON lines on stdout); SIGHUP applies a change.'),
      })
      .strict()
      .prefault({})
      .describe('Logging (pino JSON lines on stdout).'),
    onnx: z
      .object({ limits: onnxLimitsSchema.prefault({}) })
      .strict()
      .prefault({})
      .describe('ONNX model parsing.'),
    registry: registryConfigSchema.prefault({}).describe('OCI registry client: credentials, TLS, limits, signature policy.'),
    store: storeConfigSchema.prefault({}).describe('The model store under stateDir: space, retention, writes.'),
    daemon: daemonConfigSchema.prefault({}).describe('edgevolve run: desired models, start and stop, reconcile, watchdog.'),
    deploy: deployConfigSchema.prefault({}).describe('Safe deployment: trial and health gate, rollback, bounded re-entries, shadow mode, budget watch. SIGHUP applies every key.'),
    mqtt: mqttConfigSchema.prefault({}).describe('MQTT broker connection for telemetry and fleet commands; no urls: no broker.'),
    telemetry: telemetryConfigSchema.prefault({}).describe('Telemetry: metrics and events, kept in the outbox until the broker acknowledges them.'),
    control: controlConfigSchema.prefault({}).describe('Signed fleet commands over MQTT (README "Fleet commands").'),
    planner: plannerConfigSchema.prefault({}).describe('The planner: defaults of edgevolve optimize, and the search the daemon runs on the device.'),
    server: serverConfigSchema.prefault({}).describe('The local KServe v2 inference API (README "Inference API"); changes need a restart.'),
    coevolution: coevolutionConfigSchema.prefault({}).describe('Edge-cloud co-evolution, device side (README "Edge-cloud co-evolution"); off by default.'),
    service: serviceConfigSchema
      .prefault({})
      .describe("The systemd unit (scripts/install.sh writes it from these keys; re-run it after a change).\nmemoryMax: MemoryMax= of the unit (512M, 2G, 60%, infinity); absent: the unit's own 75%."),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
