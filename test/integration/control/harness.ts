/**
 * A device for control tests: a real mqtt.js client on the test's mosquitto, a real
 * command store file, the real channel, and handlers that count their calls.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import {
  CommandChannel,
  CommandStore,
  controlConfigSchema,
  controlSettings,
  mqttCommandTransport,
  parsePrivateKey,
  parsePublicKey,
  resultSchema,
  type CommandHandlers,
  type CommandResult,
  type ControlConfig,
  type FleetPublicKey,
  type FleetSigningKey,
} from '../../../src/control/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';

export const FLEET = 'fleet-a';

export function makeKeyPair(keyId: string, type: 'ed25519' | 'p256' = 'ed25519'): { signer: FleetSigningKey; publicKey: FleetPublicKey } {
  const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    signer: parsePrivateKey(keyId, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    publicKey: parsePublicKey(keyId, pair.publicKey.export({ type: 'spki', format: 'pem' }) as string),
  };
}

export async function connect(url: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, connectTimeout: 5000 });
}

export interface TestDevice {
  readonly device: string;
  readonly channel: CommandChannel;
  readonly store: CommandStore;
  readonly client: MqttClient;
  /** Closes the channel, the store and the client (a clean process exit). */
  close(): Promise<void>;
}

export async function startDevice(options: {
  url: string;
  dir: string;
  device: string;
  handlers: CommandHandlers;
  keys: readonly FleetPublicKey[];
  config?: Partial<ControlConfig>;
}): Promise<TestDevice> {
  const client = await connect(options.url, options.device);
  const store = CommandStore.open(join(options.dir, `${options.device}-control.db`));
  const channel = new CommandChannel({
    address: { fleet: FLEET, device: options.device },
    transport: await mqttCommandTransport(client, { fleet: FLEET, device: options.device }),
    store,
    handlers: options.handlers,
    keys: new Map(options.keys.map((k) => [k.keyId, k])),
    settings: controlSettings(controlConfigSchema.parse(options.config ?? {})),
    clock: systemClock,
    logger: silentLogger(),
  });
  await channel.start();
  return {
    device: options.device,
    channel,
    store,
    client,
    close: async () => {
      await channel.stop(1000);
      store.close();
      await client.endAsync();
    },
  };
}

/** Collects every result published under a device's cmd subtree, in arrival order. */
export async function watchResults(url: string, device: string): Promise<{ results: CommandResult[]; next(predicate: (r: CommandResult) => boolean, timeoutMs?: number): Promise<CommandResult>; close(): Promise<void> }> {
  const client = await connect(url, `watch-${device}`);
  const results: CommandResult[] = [];
  const waiters: { predicate: (r: CommandResult) => boolean; resolve: (r: CommandResult) => void }[] = [];
  client.on('message', (_topic, payload) => {
    const result = resultSchema.parse(JSON.parse(payload.toString('utf8')));
    results.push(result);
    for (const w of [...waiters]) {
      if (w.predicate(result)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(result);
      }
    }
  });
  await client.subscribeAsync(`edgevolve/v1/${FLEET}/${device}/cmd/+/result`, { qos: 1 });
  return {
    results,
    next: (predicate, timeoutMs = 5000) =>
      new Promise<CommandResult>((resolve, reject) => {
        const seen = results.find(predicate);
        if (seen !== undefined) {
          resolve(seen);
          return;
        }
        const timer = setTimeout(() => reject(new Error(`no matching result within ${timeoutMs} ms; got ${JSON.stringify(results)}`)), timeoutMs);
        waiters.push({
          predicate,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      }),
    close: () => client.endAsync(),
  };
}
