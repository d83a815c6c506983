import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { Command } from 'commander';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { assertId, isCommandType, parsePrivateKey, sendCommand, COMMAND_TYPES, type SendCommandOutcome } from '../../control/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import { printJson, runAction, usageError } from '../output.ts';

interface CommandFlags {
  payload?: string;
  key?: string;
  keyId?: string;
  unsigned?: boolean;
  broker: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  clientKey?: string;
  timeout: string;
  ttl?: string;
  expect?: string;
  id?: string;
  json?: boolean;
}

export function registerCommand(program: Command): void {
  program
    .command('command')
    .description('Sign a fleet command, send it to one device or the whole fleet over MQTT, and wait for the acks and results (cloud side).')
    .argument('<target>', '<fleet>/<device>, or <fleet>/+ for every device of the fleet')
    .argument('<type>', `command type: ${COMMAND_TYPES.join(', ')}`)
    .option('--payload <json>', 'the command payload as JSON', '{}')
    .option('--key <pem>', 'fleet signing key (Ed25519 or ECDSA P-256 private key, PEM)')
    .option('--key-id <id>', 'keyId the devices know the key by (default: the key file name without extension)')
    .option('--unsigned', 'send without a signature (only devices with control.trustBrokerAcl accept it)')
    .requiredOption('--broker <url>', 'MQTT broker URL (mqtt://, mqtts://, ws://, wss://)')
    .option('--username <name>', 'MQTT username')
    .option('--password <secret>', 'MQTT password (or EDGEVOLVE_MQTT_PASSWORD)')
    .option('--ca <pem>', 'CA certificate for mqtts')
    .option('--cert <pem>', 'client certificate for mTLS')
    .option('--client-key <pem>', 'private key of --cert')
    .option('--timeout <s>', 'how long to wait for answers, seconds', '30')
    .option('--ttl <s>', 'command lifetime: devices refuse it this long after issue (default: --timeout)')
    .option('--expect <n>', 'with <fleet>/+: stop once this many devices answered; fewer is a failure')
    .option('--id <id>', 'command id (default: a random UUID); re-sending an id returns the stored result')
    .option('--json', 'print one JSON document')
    .action(async (target: string, type: string, opts: CommandFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const [fleet, device, ...rest] = target.split('/');
        if (fleet === undefined || device === undefined || rest.length > 0) throw usageError(`target ${target} is not <fleet>/<device> or <fleet>/+`);
        assertId('fleet', fleet);
        if (device !== '+') assertId('device', device);
        if (opts.id !== undefined) assertId('command', opts.id);
        if (!isCommandType(type)) throw usageError(`unknown command type ${type}; one of ${COMMAND_TYPES.join(', ')}`);
        let payload: unknown;
        try {
          payload = JSON.parse(opts.payload ?? '{}');
        } catch (err) {
          throw usageError(`--payload is not JSON: ${(err as Error).message}`);
        }
        const timeoutMs = seconds('--timeout', opts.timeout);
        const ttlMs = opts.ttl === undefined ? timeoutMs : seconds('--ttl', opts.ttl);
        const expectResults = opts.expect === undefined ? undefined : count('--expect', opts.expect);
        if (opts.key === undefined && opts.unsigned !== true) throw usageError('give --key <pem> to sign the command, or --unsigned');
        const signer =
          opts.key === undefined ? undefined : parsePrivateKey(opts.keyId ?? basename(opts.key, extname(opts.key)), await readText(opts.key, '--key'));

        const client = await connectBroker(opts);
        let outcome: SendCommandOutcome;
        try {
          outcome = await sendCommand(client, {
            fleet,
            device,
            type,
            payload,
            signer,
            ...(opts.id === undefined ? {} : { id: opts.id }),
            ttlMs,
            timeoutMs,
            ...(expectResults === undefined ? {} : { expectResults }),
          });
        } finally {
          await client.endAsync();
        }
        const results = [...outcome.results.entries()].map(([, r]) => ({ ...r.result, latencyMs: r.receivedAt - outcome.sentAt }));
        const noAnswer = device !== '+' ? outcome.results.size === 0 : expectResults !== undefined && outcome.results.size < expectResults;
        const failed = results.filter((r) => r.status !== 'done');
        if (opts.json === true) {
          printJson({ ok: !noAnswer && failed.length === 0, id: outcome.id, type, target, noAnswer, acks: outcome.acks.size, results, ignored: outcome.ignored });
        } else {
          console.log(`command ${outcome.id} (${type}) to ${target}: ${outcome.acks.size} ack(s), ${results.length} result(s)`);
          for (const r of results) {
            const detail = r.status === 'done' ? JSON.stringify(r.result ?? {}) : `${r.error?.code}: ${r.error?.message}`;
            console.log(`  ${r.device}  ${r.status}${r.duplicate ? ' (stored result, not run again)' : ''}  ${r.latencyMs} ms  ${detail}`);
          }
        }
        if (opts.json === true) {
          // One JSON document only: it already says ok:false and why.
          if (noAnswer || failed.length > 0) process.exitCode = 1;
          return;
        }
        if (noAnswer) {
          throw new EdgevolveError('E_CONTROL_NO_ANSWER', `${device === '+' ? `only ${outcome.results.size} of ${expectResults} devices answered` : `device ${device} did not answer`} within ${timeoutMs / 1000} s (command ${outcome.id})`, {
            context: { id: outcome.id, results: outcome.results.size },
          });
        }
        if (failed.length > 0) {
          const first = failed[0];
          throw new EdgevolveError('E_CONTROL_HANDLER', `${failed.length} device(s) did not run command ${outcome.id}: ${first?.device}: ${first?.error?.code}: ${first?.error?.message}`, {
            context: { id: outcome.id },
          });
        }
      });
    });
}

function seconds(flag: string, text: string): number {
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) throw usageError(`${flag} ${text} is not a positive number of seconds`);
  return Math.round(value * 1000);
}

function count(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw usageError(`${flag} ${text} is not a positive integer`);
  return value;
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new EdgevolveError('E_IO', `${flag} ${path}: ${(err as Error).message}`, { cause: err, context: { path } });
  }
}

async function connectBroker(opts: CommandFlags): Promise<MqttClient> {
  const password = opts.password ?? process.env.EDGEVOLVE_MQTT_PASSWORD;
  const options: IClientOptions = {
    clientId: `edgevolve-cli-${process.pid}-${Date.now().toString(36)}`,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ...(opts.username === undefined ? {} : { username: opts.username }),
    ...(password === undefined ? {} : { password }),
    ...(opts.ca === undefined ? {} : { ca: await readText(opts.ca, '--ca') }),
    ...(opts.cert === undefined ? {} : { cert: await readText(opts.cert, '--cert') }),
    ...(opts.clientKey === undefined ? {} : { key: await readText(opts.clientKey, '--client-key') }),
  };
  try {
    return await mqtt.connectAsync(opts.broker, options);
  } catch (err) {
    throw new EdgevolveError('E_CONTROL_BROKER', `cannot connect to ${opts.broker}: ${(err as Error).message}`, { cause: err, context: { broker: opts.broker } });
  }
}
