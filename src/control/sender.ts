/**
 * The cloud side: sign a command, publish it to one device or the whole fleet, and
 * collect the acks and results that answer it. Answers are matched by command id and by
 * the sha256 of the signed text, so a forged rejection for the same id (anyone who can
 * publish to a device's cmd topic can provoke one) is not taken for the device's answer.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { EdgevolveError } from '../errors/index.ts';
import type { FleetSigningKey } from './keys.ts';
import { ackSchema, resultSchema, type Ack, type CommandResult, type CommandType } from './schemas.ts';
import { answerTopics, sendTopic } from './topics.ts';
import { encodeCommand } from './wire.ts';

export interface SendCommandOptions {
  readonly fleet: string;
  /** A device id, or `+` for every device of the fleet (one publish on the fleet-wide topic). */
  readonly device: string;
  readonly type: CommandType;
  readonly payload: unknown;
  readonly signer: FleetSigningKey | undefined;
  /** Default: a random UUID. */
  readonly id?: string;
  /** Command lifetime after issue, ms (the device refuses it afterwards). */
  readonly ttlMs?: number;
  /** How long to wait for answers, ms. */
  readonly timeoutMs: number;
  /** With `+`: stop once this many results arrived (default: wait the full timeout). */
  readonly expectResults?: number;
  /** Called with each result as it arrives, with the publish and arrival instants (the fleet simulator times them). */
  readonly onResult?: (result: CommandResult, timing: { readonly sentAt: number; readonly receivedAt: number }) => void;
  readonly now?: () => number;
}

export interface SendCommandOutcome {
  readonly id: string;
  readonly bodySha256: string;
  /** When the command was handed to the client, ms since the epoch. */
  readonly sentAt: number;
  readonly acks: ReadonlyMap<string, Ack>;
  /** device → its result (the first one; duplicates answer the same). */
  readonly results: ReadonlyMap<string, { readonly result: CommandResult; readonly receivedAt: number }>;
  /** True when the wait ended by timeout rather than by the expected answers. */
  readonly timedOut: boolean;
  /** Answers that were not JSON of the documented shape, or answered a different body. */
  readonly ignored: number;
}

export async function sendCommand(client: MqttClient, options: SendCommandOptions): Promise<SendCommandOutcome> {
  const now = options.now ?? Date.now;
  const id = options.id ?? randomUUID();
  const topics = answerTopics(options.fleet, options.device, id);
  const fleetWide = options.device === '+';
  const encoded = encodeCommand(
    { id, type: options.type, target: { fleet: options.fleet, device: fleetWide ? '$all' : options.device }, payload: options.payload, ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) },
    options.signer,
    now(),
  );
  const acks = new Map<string, Ack>();
  const results = new Map<string, { result: CommandResult; receivedAt: number }>();
  let ignored = 0;
  const expected = fleetWide ? options.expectResults : 1;
  const ackPattern = topicMatcher(topics.ack);
  const resultPattern = topicMatcher(topics.result);

  let sentAt = 0;
  let finish!: (timedOut: boolean) => void;
  const finished = new Promise<boolean>((resolve) => (finish = resolve));
  const onMessage = (topic: string, payload: Buffer): void => {
    const isAck = ackPattern(topic);
    if (!isAck && !resultPattern(topic)) return;
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch {
      ignored += 1;
      return;
    }
    if (isAck) {
      const ack = ackSchema.safeParse(value);
      if (ack.success && ack.data.id === id) acks.set(ack.data.device, ack.data);
      else ignored += 1;
      return;
    }
    const parsed = resultSchema.safeParse(value);
    if (!parsed.success || parsed.data.id !== id || parsed.data.bodySha256 !== encoded.bodySha256) {
      ignored += 1;
      return;
    }
    const receivedAt = now();
    if (!results.has(parsed.data.device)) {
      results.set(parsed.data.device, { result: parsed.data, receivedAt });
      options.onResult?.(parsed.data, { sentAt, receivedAt });
    }
    if (expected !== undefined && results.size >= expected) finish(false);
  };
  client.on('message', onMessage);
  const timer = setTimeout(() => finish(true), options.timeoutMs);
  try {
    await client.subscribeAsync([topics.ack, topics.result], { qos: 1 });
    sentAt = now();
    await client.publishAsync(sendTopic(options.fleet, options.device), encoded.text, { qos: 1 });
    const timedOut = await finished;
    return { id, bodySha256: encoded.bodySha256, sentAt, acks, results, timedOut, ignored };
  } catch (err) {
    throw new EdgevolveError('E_CONTROL_BROKER', `cannot send the command: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
    client.removeListener('message', onMessage);
    await client.unsubscribeAsync([topics.ack, topics.result]).catch(() => undefined);
  }
}

/** Matches a topic against a filter with single-level `+` wildcards (all our answer filters need). */
export function topicMatcher(filter: string): (topic: string) => boolean {
  const levels = filter.split('/');
  return (topic) => {
    const parts = topic.split('/');
    if (parts.length !== levels.length) return false;
    return levels.every((level, i) => level === '+' || level === parts[i]);
  };
}
