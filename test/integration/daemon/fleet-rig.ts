/**
 * A daemon started in-process behind a real mosquitto, with an operator client that sends
 * Ed25519-signed fleet commands the way the cloud does: the set-up the command tests share.
 * `prepare` writes what the daemon should serve (OCI layouts in `dir`) and returns the rest
 * of its configuration; the rig adds the broker, the device identity and the fleet key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { parsePrivateKey, sendCommand, type CommandResult, type CommandType, type FleetSigningKey } from '../../../src/control/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';

const NOTIFIER = { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() };

export interface FleetRig {
  readonly dir: string;
  readonly broker: RunningMosquitto;
  readonly client: MqttClient;
  readonly signer: FleetSigningKey;
  /** The running daemon; `restart` replaces it. */
  readonly handle: DaemonHandle;
  /** Sends a signed command to the device and resolves with its result, or fails naming the command when none comes within `timeoutMs`. */
  send(type: CommandType, payload: unknown, timeoutMs?: number): Promise<CommandResult>;
  /** Stops the daemon and starts it again from the same configuration file and state directory. */
  restart(): Promise<DaemonHandle>;
  close(): Promise<void>;
}

export async function startFleetRig(prefix: string, prepare: (dir: string) => Promise<Record<string, unknown>>): Promise<FleetRig> {
  const tmp = await makeTempDir(prefix);
  const broker = await startMosquitto();
  const pair = generateKeyPairSync('ed25519');
  const signer = parsePrivateKey('fleet-key', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const configFile = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), {
    ...(await prepare(tmp.dir)),
    mqtt: { urls: [broker.url], fleet: 'f1', deviceId: 'dev1' },
    control: { publicKeys: { 'fleet-key': pair.publicKey.export({ type: 'spki', format: 'pem' }) as string } },
  });
  const start = () => startDaemon({ configFile, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: NOTIFIER });
  let handle = await start();
  const client = await connectAsync(broker.url, { clientId: 'operator' });
  return {
    dir: tmp.dir,
    broker,
    client,
    signer,
    get handle() {
      return handle;
    },
    async send(type, payload, timeoutMs = 30_000) {
      const outcome = await sendCommand(client, { fleet: 'f1', device: 'dev1', type, payload, signer, timeoutMs });
      const result = outcome.results.get('dev1')?.result;
      if (result === undefined) throw new Error(`no result for ${type} ${JSON.stringify(payload)} within ${timeoutMs} ms`);
      return result;
    },
    async restart() {
      await handle.stop();
      handle = await start();
      return handle;
    },
    async close() {
      await client.endAsync();
      await handle.stop();
      await broker.close();
      await tmp.cleanup();
    },
  };
}
