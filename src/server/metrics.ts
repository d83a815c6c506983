/**
 * `GET /metrics` in the Prometheus text exposition format (version 0.0.4): per-model
 * inference counts, errors and latency buckets (from the slots), queue depth, the
 * version served, and HTTP requests by route and status.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import { LATENCY_BUCKETS_MS, type SlotMetrics } from '../runtime/serving/index.ts';

export interface ServerCounters {
  /** HTTP responses by `route` and `code`. */
  readonly responses: ReadonlyMap<string, { route: string; code: number; count: number }>;
  /** Per model: waiting requests and requests refused with 429. */
  readonly queues: ReadonlyMap<string, { queued: number; rejected: number }>;
  /** Per model: requests answered 500 because the model failed (a counted event). */
  readonly modelFailures: ReadonlyMap<string, number>;
  /** Wall time the event loop was kept awake after requests (server.busyPollMs), in milliseconds. */
  readonly busyPollMs: number;
}

export function renderMetrics(slots: readonly SlotMetrics[], counters: ServerCounters): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };

  family('edgevolve_model_info', 'gauge', 'The version each model serves (1), with its variant.');
  for (const s of slots) {
    if (s.loaded) lines.push(`edgevolve_model_info{model=${q(s.name)},version=${q(s.version ?? '')},variant=${q(s.variant ?? '')}} 1`);
  }
  family('edgevolve_model_loaded', 'gauge', '1 when the model serves a version, else 0.');
  for (const s of slots) lines.push(`edgevolve_model_loaded{model=${q(s.name)}} ${s.loaded ? 1 : 0}`);

  family('edgevolve_inferences_total', 'counter', 'Inferences run, successful or not, across versions.');
  for (const s of slots) lines.push(`edgevolve_inferences_total{model=${q(s.name)}} ${s.total.inferences}`);
  family('edgevolve_inference_errors_total', 'counter', 'Inferences the model failed (not counting malformed requests).');
  for (const s of slots) lines.push(`edgevolve_inference_errors_total{model=${q(s.name)}} ${s.total.errors}`);

  family('edgevolve_inference_duration_seconds', 'histogram', 'Model run time per inference.');
  for (const s of slots) {
    let cumulative = 0;
    for (let b = 0; b < LATENCY_BUCKETS_MS.length; b++) {
      cumulative += s.total.bucketCounts[b] ?? 0;
      lines.push(`edgevolve_inference_duration_seconds_bucket{model=${q(s.name)},le="${LATENCY_BUCKETS_MS[b]! / 1000}"} ${cumulative}`);
    }
    lines.push(`edgevolve_inference_duration_seconds_bucket{model=${q(s.name)},le="+Inf"} ${s.total.inferences}`);
    lines.push(`edgevolve_inference_duration_seconds_sum{model=${q(s.name)}} ${s.total.latencySumMs / 1000}`);
    lines.push(`edgevolve_inference_duration_seconds_count{model=${q(s.name)}} ${s.total.inferences}`);
  }

  family('edgevolve_inference_latency_seconds', 'gauge', 'Percentiles of the active version over its last 2048 inferences.');
  for (const s of slots) {
    const p = s.active?.latencyMs;
    if (p === undefined) continue;
    for (const [quantile, value] of [['0.5', p.p50], ['0.95', p.p95], ['0.99', p.p99]] as const) {
      lines.push(`edgevolve_inference_latency_seconds{model=${q(s.name)},quantile="${quantile}"} ${value / 1000}`);
    }
  }

  family('edgevolve_inflight_inferences', 'gauge', 'Inferences running now.');
  for (const s of slots) lines.push(`edgevolve_inflight_inferences{model=${q(s.name)}} ${s.inFlight}`);
  family('edgevolve_queue_depth', 'gauge', 'Requests waiting for a model.');
  for (const [model, c] of counters.queues) lines.push(`edgevolve_queue_depth{model=${q(model)}} ${c.queued}`);
  family('edgevolve_queue_rejected_total', 'counter', 'Requests refused with 429 because the queue was full.');
  for (const [model, c] of counters.queues) lines.push(`edgevolve_queue_rejected_total{model=${q(model)}} ${c.rejected}`);
  family('edgevolve_model_failures_total', 'counter', 'Requests answered 500 because the model failed.');
  for (const [model, n] of counters.modelFailures) lines.push(`edgevolve_model_failures_total{model=${q(model)}} ${n}`);

  family('edgevolve_inference_worker_restarts_total', 'counter', 'Inference worker threads of the active version that died and were replaced (server.inferenceWorkers).');
  for (const s of slots) lines.push(`edgevolve_inference_worker_restarts_total{model=${q(s.name)}} ${s.workerRestarts}`);

  family('edgevolve_model_swaps_total', 'counter', 'Version swaps by result.');
  for (const s of slots) {
    lines.push(`edgevolve_model_swaps_total{model=${q(s.name)},result="ok"} ${s.swaps}`);
    lines.push(`edgevolve_model_swaps_total{model=${q(s.name)},result="failed"} ${s.failedSwaps}`);
  }

  family('edgevolve_busy_poll_seconds_total', 'counter', 'Time the event loop was kept from sleeping after requests (server.busyPollMs): one core busy for that long.');
  lines.push(`edgevolve_busy_poll_seconds_total ${counters.busyPollMs / 1000}`);

  family('edgevolve_http_responses_total', 'counter', 'HTTP responses by route and status code.');
  for (const r of counters.responses.values()) lines.push(`edgevolve_http_responses_total{route=${q(r.route)},code="${r.code}"} ${r.count}`);
  return `${lines.join('\n')}\n`;
}

/** A label value, quoted and escaped as the exposition format requires. */
function q(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
