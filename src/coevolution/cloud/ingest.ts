import mqtt, { type MqttClient } from 'mqtt';
import { EdgevolveError, isEdgevolveError } from '../../errors/index.ts';
import type { FleetDatabase } from './fleet-db.ts';

export interface IngestOptions {
  readonly brokerUrl: string;
  /** Workers with the same group split the fleet's messages between them (MQTT 5 / mosquitto shared subscriptions). */
  readonly group: string;
  /** Fleet id, or `+` for every fleet. */
  readonly fleet: string;
  readonly clientId: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export interface IngestWorker {
  readonly stats: { received: number; stored: number; duplicates: number; invalid: number };
  close(): Promise<void>;
}

/** The three subscriptions of one worker: `$share/<group>/edgevolve/v1/<fleet>/+/{state,telemetry,events}`. */
export function ingestSubscriptions(group: string, fleet: string): string[] {
  return ['state', 'telemetry', 'events'].map((kind) => `$share/${group}/edgevolve/v1/${fleet}/+/${kind}`);
}

/**
 * A cloud ingest worker: subscribes with QoS 1 through a shared subscription and writes every
 * message into the fleet database. Invalid messages are counted and dropped (E_COEVO_MESSAGE
 * goes to `onError`), never stop the worker. Retained state messages are not delivered
 * through shared subscriptions, so a worker also reads them once with a plain subscription.
 */
export async function startIngest(db: FleetDatabase, options: IngestOptions, onError: (err: EdgevolveError) => void = () => {}): Promise<IngestWorker> {
  const stats = { received: 0, stored: 0, duplicates: 0, invalid: 0 };
  const client: MqttClient = mqtt.connect(options.brokerUrl, {
    clientId: options.clientId,
    protocolVersion: 5,
    clean: true,
    reconnectPeriod: 1000,
    ...(options.username === undefined ? {} : { username: options.username, password: options.password }),
  });
  client.on('message', (topic, payload) => {
    stats.received++;
    try {
      const outcome = db.ingest(topic, payload);
      if (outcome === 'stored') stats.stored++;
      else if (outcome === 'duplicate') stats.duplicates++;
    } catch (err) {
      stats.invalid++;
      onError(isEdgevolveError(err) ? err : new EdgevolveError('E_COEVO_MESSAGE', `${topic}: ${(err as Error).message}`, { cause: err }));
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync(ingestSubscriptions(options.group, options.fleet), { qos: 1 });
    await client.subscribeAsync(`edgevolve/v1/${options.fleet}/+/state`, { qos: 1, rh: 0 });
  } catch (err) {
    client.end(true);
    throw new EdgevolveError('E_COEVO_BROKER', `cannot subscribe at ${options.brokerUrl}: ${(err as Error).message}`, { cause: err });
  }
  return {
    stats,
    close: async () => {
      await client.endAsync();
    },
  };
}
