/**
 * The payloads edgevolve publishes, as zod schemas: the README documents them through
 * z.toJSONSchema, the tests validate what arrives at a real broker against them, and the
 * cloud side (src/control, src/coevolution) may parse with them. Every payload carries
 * `v` (the payload format version); a consumer refuses a `v` it does not know.
 *
 * De-duplication: `stream` names one outbox (a random id made when telemetry.db is
 * created) and `seq` increases by one per message of that outbox, over all topics, across
 * restarts. Delivery is at-least-once: a consumer keeps the highest `seq` per
 * (device, stream) and drops what it has seen. Within one topic messages arrive in `seq`
 * order; events may overtake a telemetry backlog.
 */
import { z } from 'zod';

export const PAYLOAD_VERSION = 1;

const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const version = z.literal(PAYLOAD_VERSION).describe('Payload format version.');
const epochMs = z.number().int().nonnegative().describe('Milliseconds since the Unix epoch.');

/** What every outbox message carries so the cloud can drop duplicates. */
const envelope = {
  v: version,
  device: id,
  stream: z.string().min(1).max(64).describe('The outbox that numbered this message (random per telemetry.db).'),
  seq: z.number().int().positive().describe('Per-device sequence number: +1 per message, over all topics, across restarts.'),
  ts: epochMs,
};

export const activeModelSchema = z
  .object({
    name: z.string(),
    version: z.string().optional(),
    variant: z.string().optional(),
    precision: z.string().optional().describe('fp32, fp16, int8, mixed...'),
  })
  .describe('The model being served.');

export const budgetsSchema = z
  .object({
    latencyP95Ms: z.number().positive().optional(),
    memoryMb: z.number().positive().optional(),
    sizeMb: z.number().positive().optional(),
    maxAccuracyDropPct: z.number().nonnegative().optional(),
  })
  .describe('The budgets the device must meet.');

export const hardwareSummarySchema = z
  .object({
    arch: z.string(),
    board: z.string().optional(),
    cpuModel: z.string().optional(),
    cores: z.number().int().positive().optional(),
    memoryBytes: z.number().nonnegative().optional(),
    accelerators: z.array(z.string()).optional(),
    executionProviders: z.array(z.string()).optional(),
    fingerprint: z.string().optional(),
  })
  .describe('A summary of the device profile (edgevolve profile has the whole).');

/** Retained on `state`: published on every connect. */
export const birthSchema = z
  .object({
    v: version,
    status: z.literal('online'),
    device: id,
    fleet: id,
    ts: epochMs,
    session: z.number().int().positive().describe('Connect counter, persisted: a death with the same session belongs to this birth.'),
    protocol: z.enum(['5', '3.1.1']),
    agentVersion: z.string(),
    hardware: hardwareSummarySchema,
    model: activeModelSchema.nullable(),
    budgets: budgetsSchema,
  })
  .describe('Birth: retained on state when the device connects.');

/** Retained on `state`: the Last Will (connection lost) or published on a clean shutdown. */
export const deathSchema = z
  .object({
    v: version,
    status: z.literal('offline'),
    device: id,
    fleet: id,
    ts: epochMs.describe('For a will: when the connection that registered it was made.'),
    session: z.number().int().positive(),
    reason: z.enum(['connection-lost', 'shutdown']),
  })
  .describe('Death: retained on state through the Last Will, or on a clean shutdown.');

export const statePayloadSchema = z.discriminatedUnion('status', [birthSchema, deathSchema]);

const histogramSchema = z
  .object({
    bounds: z.array(z.number()).describe('Upper bounds of the buckets; the last bucket is everything above the last bound.'),
    counts: z.array(z.number().int().nonnegative()).describe('bounds.length + 1 counts.'),
  })
  .describe('A fixed-bucket histogram over the interval.');

export const telemetryRecordSchema = z
  .object({
    ...envelope,
    kind: z.literal('metrics'),
    intervalMs: z.number().int().positive(),
    inference: z.object({
      count: z.number().int().nonnegative(),
      errors: z.number().int().nonnegative(),
      latencyMs: z.object({
        p50: z.number().nullable(),
        p95: z.number().nullable(),
        p99: z.number().nullable(),
        max: z.number().nullable(),
        mean: z.number().nullable(),
        histogram: histogramSchema,
      }),
    }),
    queueDepth: z.object({ last: z.number().int().nonnegative(), max: z.number().int().nonnegative() }),
    system: z.object({
      cpuPercent: z.number().nullable().describe('Busy share of all cores over the interval, 0-100.'),
      memoryUsedBytes: z.number().nullable(),
      memoryTotalBytes: z.number().nullable(),
      processRssBytes: z.number().nullable(),
      temperatureC: z.number().nullable().describe('Hottest thermal zone.'),
      throttled: z.boolean().nullable(),
      diskFreeBytes: z.number().nullable().describe('Free bytes on the state directory filesystem.'),
    }),
    model: activeModelSchema.nullable(),
    budgets: z.object({
      compliant: z.boolean().nullable().describe('null when no budget is set or nothing was measured.'),
      violations: z.array(z.string()),
    }),
    quality: z.object({
      confidence: histogramSchema,
      entropy: histogramSchema,
      hardSampleRate: z.number().min(0).max(1).nullable(),
      driftScore: z.number().nullable(),
    }),
    outbox: z.object({
      depth: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      droppedTotal: z.number().int().nonnegative().describe('Messages evicted since the outbox was created (events and metrics).'),
      degraded: z.boolean().describe('True while the disk is full and telemetry is being dropped.'),
    }),
  })
  .describe('Aggregated metrics of one interval.');

/** On `telemetry`: one record, or several when a backlog drains. */
export const telemetryBatchSchema = z
  .object({ v: version, batch: z.array(telemetryRecordSchema).min(1) })
  .describe('Several telemetry records in one publish (backlog drain).');

export const telemetryPayloadSchema = z.union([telemetryRecordSchema, telemetryBatchSchema]);

export const EVENT_TYPES = [
  'deploy',
  'rollback',
  'budget-violation',
  'error',
  'outbox-dropped',
  'storage-degraded',
  'storage-recovered',
  'agent-start',
  'drift',
  'local-optimize',
] as const;

export const eventSchema = z
  .object({
    ...envelope,
    kind: z.literal('event'),
    type: z.enum(EVENT_TYPES),
    severity: z.enum(['info', 'warning', 'error']),
    message: z.string().max(4096),
    data: z.record(z.string(), z.unknown()).describe('Type-specific fields (model, versions, counts, error code...).'),
  })
  .describe('Something that happened, published at once with high priority.');

export type Birth = z.infer<typeof birthSchema>;
export type Death = z.infer<typeof deathSchema>;
export type StatePayload = z.infer<typeof statePayloadSchema>;
export type TelemetryRecord = z.infer<typeof telemetryRecordSchema>;
export type TelemetryPayload = z.infer<typeof telemetryPayloadSchema>;
export type TelemetryEvent = z.infer<typeof eventSchema>;
export type EventType = (typeof EVENT_TYPES)[number];
export type ActiveModel = z.infer<typeof activeModelSchema>;
export type Budgets = z.infer<typeof budgetsSchema>;
export type HardwareSummary = z.infer<typeof hardwareSummarySchema>;

/** The JSON Schemas of every payload, for the README and for consumers in other languages. */
export function payloadJsonSchemas(): Record<string, unknown> {
  return {
    state: z.toJSONSchema(statePayloadSchema),
    telemetry: z.toJSONSchema(telemetryPayloadSchema),
    events: z.toJSONSchema(eventSchema),
  };
}
