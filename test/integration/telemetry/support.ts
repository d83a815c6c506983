/** Test support for the telemetry integration tests: a cloud-side collector and service options. */
import { gunzipSync } from 'node:zlib';
import mqtt, { type MqttClient } from 'mqtt';
import { silentLogger } from '../../../src/log/index.ts';
import { mqttConfigSchema, telemetryConfigSchema, type MqttConfig, type TelemetryConfig } from '../../../src/telemetry/config.ts';
import type { TelemetryOptions } from '../../../src/telemetry/service.ts';
import type { SystemSampler } from '../../../src/telemetry/system.ts';
import { systemClock, systemRandom } from '../../../src/host/index.ts';

export interface Received {
  readonly topic: string;
  readonly payload: Buffer;
  readonly retain: boolean;
  /** The JSON document (gunzipped when needed), or undefined for non-JSON payloads. */
  readonly json: unknown;
}

/** A cloud-side subscriber with a persistent session, so broker restarts do not lose what it was sent. */
export interface Collector {
  readonly client: MqttClient;
  readonly messages: Received[];
  /** Every seq seen on a topic, in arrival order (batches expanded). */
  seqs(topic: string): number[];
  /** Resolves when `predicate` holds over the messages (polled on each arrival). */
  until(predicate: (messages: readonly Received[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function decodePayload(payload: Buffer): unknown {
  const text = payload[0] === 0x1f && payload[1] === 0x8b ? gunzipSync(payload).toString() : payload.toString();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function seqsOf(json: unknown): number[] {
  if (typeof json !== 'object' || json === null) return [];
  const doc = json as { seq?: unknown; batch?: unknown };
  if (Array.isArray(doc.batch)) return doc.batch.flatMap((r) => seqsOf(r));
  return typeof doc.seq === 'number' ? [doc.seq] : [];
}

export async function startCollector(url: string, filter: string, options: mqtt.IClientOptions = {}): Promise<Collector> {
  const client = await mqtt.connectAsync(url, {
    clientId: `collector-${Math.random().toString(16).slice(2, 10)}`,
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 100,
    ...options,
  });
  const messages: Received[] = [];
  const waiters = new Set<() => void>();
  // Kept per topic as messages arrive: predicates run on every message, so seqs() must be cheap.
  const seqsByTopic = new Map<string, number[]>();
  client.on('message', (topic, payload, packet) => {
    const json = decodePayload(payload);
    messages.push({ topic, payload, retain: packet.retain, json });
    const list = seqsByTopic.get(topic) ?? [];
    list.push(...seqsOf(json));
    seqsByTopic.set(topic, list);
    for (const w of [...waiters]) w();
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    messages,
    seqs: (topic) => seqsByTopic.get(topic) ?? [],
    until: (predicate, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (predicate(messages)) {
          resolve();
          return;
        }
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`collector timed out after ${timeoutMs} ms with ${messages.length} messages`));
        }, timeoutMs);
        const check = (): void => {
          if (!predicate(messages)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      }),
    close: async () => {
      await client.endAsync(true);
    },
  };
}

/** Asserts the at-least-once contract: first occurrences strictly increase, and every expected seq is there. */
export function checkOrderedComplete(seqs: readonly number[], expected: readonly number[]): { missing: number[]; outOfOrder: number; duplicates: number } {
  const seen = new Set<number>();
  let last = 0;
  let outOfOrder = 0;
  let duplicates = 0;
  for (const s of seqs) {
    if (seen.has(s)) {
      duplicates += 1;
      continue;
    }
    seen.add(s);
    if (s < last) outOfOrder += 1;
    last = s;
  }
  return { missing: expected.filter((s) => !seen.has(s)), outOfOrder, duplicates };
}

export const nullSampler: SystemSampler = {
  sample: () =>
    Promise.resolve({ cpuPercent: null, memoryUsedBytes: null, memoryTotalBytes: null, processRssBytes: null, temperatureC: null, throttled: null, diskFreeBytes: null }),
};

export function testMqttConfig(overrides: Partial<MqttConfig> & { urls: string[] }): MqttConfig {
  return mqttConfigSchema.parse({ fleet: 'fleet-t', reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, connectTimeoutMs: 3000, ...overrides });
}

export function testTelemetryConfig(overrides: Partial<TelemetryConfig> = {}): TelemetryConfig {
  return telemetryConfigSchema.parse({ intervalMs: 60_000, ...overrides });
}

export function serviceOptions(stateDir: string, device: string, mqttConfig: MqttConfig, telemetry: TelemetryConfig = testTelemetryConfig()): TelemetryOptions {
  return {
    mqtt: mqttConfig,
    telemetry,
    stateDir,
    device,
    clock: systemClock,
    random: systemRandom,
    logger: silentLogger(),
    sampler: nullSampler,
    birth: () => ({ agentVersion: '0.1.0-test', hardware: { arch: process.arch }, model: { name: 'mnist-mlp', precision: 'int8' }, budgets: { latencyP95Ms: 10 } }),
  };
}
