/**
 * The `mqtt` and `telemetry` config sections. src/config/schema.ts composes them; they
 * live here so the telemetry module owns its knobs and their defaults.
 */
import { z } from 'zod';

const id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of [A-Za-z0-9_-] (no +, #, /)');

export const mqttConfigSchema = z
  .object({
    urls: z
      .array(z.string().regex(/^(mqtt|mqtts|ws|wss):\/\//, 'must start with mqtt://, mqtts://, ws:// or wss://'))
      .default([])
      .describe('Broker URLs, tried in turn; empty: no broker, telemetry stays in the outbox.'),
    fleet: id.default('default').describe('Fleet id: the second topic level.'),
    deviceId: id.optional().describe('Device id, also the MQTT client id; default: the hardware fingerprint.'),
    username: z.string().optional().describe('Broker user name (MQTT CONNECT username).'),
    password: z.string().optional().describe('Broker password; redacted in logs.'),
    caFile: z.string().optional().describe('PEM CA bundle trusted for mqtts/wss instead of the system roots.'),
    certFile: z.string().optional().describe('PEM client certificate (mTLS).'),
    keyFile: z.string().optional().describe('PEM private key of certFile.'),
    protocol: z.enum(['auto', '5', '3.1.1']).default('auto').describe('auto: MQTT 5, falling back to 3.1.1 when the broker refuses 5.'),
    keepaliveSeconds: z.number().int().min(10).max(65535).default(60).describe('Keepalive in seconds (MQTT.js#1778: below 60 can loop on a lossy link).'),
    connectTimeoutMs: z.number().int().positive().default(10_000).describe('How long one connection attempt may take before it counts as failed and the backoff starts, ms.'),
    sessionExpirySeconds: z
      .number()
      .int()
      .nonnegative()
      .default(86_400)
      .describe('MQTT 5 session expiry: how long the broker keeps queued commands while the device is away (MQTT.js#1139: 0 ends the session at disconnect).'),
    reconnect: z
      .object({
        initialDelayMs: z.number().int().positive().default(1000).describe('Upper bound of the first wait, ms.'),
        maxDelayMs: z.number().int().positive().default(60_000).describe('Largest upper bound of a wait, ms.'),
        multiplier: z.number().min(1).default(2).describe('Growth of the upper bound per failed attempt.'),
      })
      .strict()
      .prefault({})
      .describe('Exponential backoff with full jitter: the wait is uniform in [0, min(max, initial * multiplier^attempt)].'),
    maxInflight: z.number().int().min(1).max(65535).default(64).describe('Unacknowledged QoS 1 publishes at a time.'),
    maxPayloadBytes: z.number().int().positive().default(1024 * 1024).describe('Largest message accepted into the outbox, in bytes.'),
    batchMaxMessages: z.number().int().min(1).max(1000).default(50).describe('Most telemetry records combined into one publish when a backlog drains.'),
    gzip: z.boolean().default(false).describe('Gzip payloads of at least gzipMinBytes (slow links); a gzipped payload starts with 0x1f 0x8b.'),
    gzipMinBytes: z.number().int().nonnegative().default(1024).describe('Smallest payload gzipped when gzip is on, in bytes (smaller ones gain nothing).'),
  })
  .strict();

export const telemetryConfigSchema = z
  .object({
    intervalMs: z.number().int().min(1000).default(30_000).describe('How often aggregated metrics are published, in ms.'),
    outbox: z
      .object({
        maxRows: z.number().int().positive().default(100_000).describe('Most messages kept.'),
        maxBytes: z.number().int().positive().default(64 * 1024 * 1024).describe('Most payload bytes kept.'),
        maxAgeHours: z.number().positive().default(168).describe('Older messages are dropped (and counted) whatever their priority.'),
      })
      .strict()
      .prefault({})
      .describe('Bounds of <stateDir>/telemetry.db; past them metrics are evicted before events, and the drops are reported.'),
    latencyBucketsMs: z
      .array(z.number().positive())
      .default([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])
      .describe('Upper bounds of the latency histogram buckets, ascending.'),
  })
  .strict();

export type MqttConfig = z.infer<typeof mqttConfigSchema>;
export type TelemetryConfig = z.infer<typeof telemetryConfigSchema>;
