/**
 * The command channel against a real mosquitto: signed commands are acked, run once and
 * answered; repeats (also after a restart) get the stored result; hostile input on the
 * device's cmd topic gets error results, runs nothing and does not stop the channel.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ackSchema, encodeCommand, sendCommand, signBytes, type CommandDraft, type CommandHandlers, type HandlerOutput } from '../../../src/control/index.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { FLEET, connect, makeKeyPair, startDevice, watchResults, type TestDevice } from './harness.ts';

const fleetKey = makeKeyPair('fleet-2026');
const p256Key = makeKeyPair('ops-p256', 'p256');
const strangerKey = makeKeyPair('fleet-2026'); // same keyId, different key: a forged signature

describe.runIf(requireMosquitto())('command channel over mosquitto', () => {
  let broker: RunningMosquitto;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let cloud: MqttClient;
  let calls: { type: string; payload: unknown }[];
  let device: TestDevice | undefined;

  const handlers: CommandHandlers = {
    ping: (payload) => {
      calls.push({ type: 'ping', payload });
      return Promise.resolve({ pong: true, echo: payload.echo ?? null });
    },
    'set-budgets': (payload): Promise<HandlerOutput> => {
      calls.push({ type: 'set-budgets', payload });
      return Promise.resolve({ applied: payload.budgets });
    },
  };

  const start = async (): Promise<TestDevice> => {
    device = await startDevice({ url: broker.url, dir: tmp.dir, device: 'dev-1', handlers, keys: [fleetKey.publicKey, p256Key.publicKey] });
    return device;
  };

  beforeAll(async () => {
    broker = await startMosquitto();
    cloud = await connect(broker.url, 'cloud-1');
  });
  afterAll(async () => {
    await cloud.endAsync();
    await broker.close();
  });
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-control-');
    calls = [];
  });
  afterEach(async () => {
    await device?.close();
    device = undefined;
    await tmp.cleanup();
  });

  it('acks a signed command at once, runs it once, and publishes its result', async () => {
    await start();
    const outcome = await sendCommand(cloud, { fleet: FLEET, device: 'dev-1', type: 'set-budgets', payload: { budgets: { latencyP95Ms: 20 } }, signer: fleetKey.signer, timeoutMs: 5000 });
    expect(outcome.timedOut).toBe(false);
    const answer = outcome.results.get('dev-1');
    expect(answer?.result).toMatchObject({ id: outcome.id, status: 'done', type: 'set-budgets', result: { applied: { latencyP95Ms: 20 } }, duplicate: false, bodySha256: outcome.bodySha256 });
    expect(outcome.acks.get('dev-1')).toMatchObject({ id: outcome.id, state: 'received', duplicate: false });
    expect(calls).toEqual([{ type: 'set-budgets', payload: { budgets: { latencyP95Ms: 20 } } }]);
  });

  it('accepts an ECDSA P-256 signature as well as Ed25519', async () => {
    await start();
    const outcome = await sendCommand(cloud, { fleet: FLEET, device: 'dev-1', type: 'ping', payload: { echo: 'p256' }, signer: p256Key.signer, timeoutMs: 5000 });
    expect(outcome.results.get('dev-1')?.result).toMatchObject({ status: 'done', result: { pong: true, echo: 'p256' } });
  });

  it('answers the same id again from the store without running it again, also after a restart', async () => {
    await start();
    const watch = await watchResults(broker.url, 'dev-1');
    try {
      const command = encodeCommand({ id: 'cmd-repeat-1', type: 'set-budgets', target: { fleet: FLEET, device: 'dev-1' }, payload: { budgets: { memoryMb: 64 } } }, fleetKey.signer, Date.now());
      const topic = `edgevolve/v1/${FLEET}/dev-1/cmd`;
      await cloud.publishAsync(topic, command.text, { qos: 1 });
      const first = await watch.next((r) => r.id === 'cmd-repeat-1' && !r.duplicate);
      expect(first.status).toBe('done');

      await cloud.publishAsync(topic, command.text, { qos: 1 });
      const second = await watch.next((r) => r.id === 'cmd-repeat-1' && r.duplicate);
      expect({ ...second, duplicate: false }).toEqual(first);
      expect(calls).toHaveLength(1);

      // Restart: a new process opens the same store file.
      await device?.close();
      await start();
      const before = watch.results.length;
      await cloud.publishAsync(topic, command.text, { qos: 1 });
      const third = await watch.next((r, i = watch.results.indexOf(r)) => r.id === 'cmd-repeat-1' && r.duplicate && i >= before);
      expect({ ...third, duplicate: false }).toEqual(first);
      expect(calls).toHaveLength(1);
    } finally {
      await watch.close();
    }
  });

  it('refuses garbage, huge, forged, unknown-key, unsigned, expired, replayed and misaddressed commands with error results, runs nothing, and keeps serving', async () => {
    await start();
    const watch = await watchResults(broker.url, 'dev-1');
    const topic = `edgevolve/v1/${FLEET}/dev-1/cmd`;
    const draft = (id: string, extra: Partial<{ ttlMs: number; device: string }> = {}) => ({
      id,
      type: 'set-budgets' as const,
      target: { fleet: FLEET, device: extra.device ?? 'dev-1' },
      payload: { budgets: { sizeMb: 5 } },
      ...(extra.ttlMs === undefined ? {} : { ttlMs: extra.ttlMs }),
    });
    try {
      const valid = encodeCommand(draft('cmd-original'), fleetKey.signer, Date.now());
      await cloud.publishAsync(topic, valid.text, { qos: 1 });
      await watch.next((r) => r.id === 'cmd-original' && r.status === 'done');
      calls = [];

      // A replay: the same signed bytes under a new id cannot be made (the id is signed), so the
      // attacker re-sends the original nonce with a new id, signed by a key it does not have.
      const wire = JSON.parse(valid.text) as { v: number; signed: string; keyId: string; sig: string };
      const replayedNonce = JSON.parse(wire.signed) as { nonce: string };
      const expected: [string, string, string][] = [];
      const hostile: { text: string | Buffer; id: string; code: string }[] = [
        { text: 'not json at all {', id: '$invalid', code: 'E_CONTROL_MALFORMED' },
        { text: Buffer.alloc(200 * 1024, 0x7b), id: '$invalid', code: 'E_CONTROL_OVERSIZED' },
        // A nesting bomb just under the size cap.
        { text: JSON.stringify({ v: 1, signed: '['.repeat(30_000) + ']'.repeat(30_000) }), id: '$invalid', code: 'E_CONTROL_MALFORMED' },
        { text: encodeCommand(draft('cmd-forged'), strangerKey.signer, Date.now()).text, id: 'cmd-forged', code: 'E_CONTROL_BAD_SIGNATURE' },
        { text: encodeCommand(draft('cmd-unknown-key'), makeKeyPair('who-is-this').signer, Date.now()).text, id: 'cmd-unknown-key', code: 'E_CONTROL_UNKNOWN_KEY' },
        { text: encodeCommand(draft('cmd-unsigned'), undefined, Date.now()).text, id: 'cmd-unsigned', code: 'E_CONTROL_UNSIGNED' },
        { text: encodeCommand(draft('cmd-expired', { ttlMs: 1000 }), fleetKey.signer, Date.now() - 10_000).text, id: 'cmd-expired', code: 'E_CONTROL_EXPIRED' },
        { text: encodeCommand(draft('cmd-too-old'), fleetKey.signer, Date.now() - 2 * 3600_000).text, id: 'cmd-too-old', code: 'E_CONTROL_EXPIRED' },
        { text: encodeCommand(draft('cmd-future'), fleetKey.signer, Date.now() + 3600_000).text, id: 'cmd-future', code: 'E_CONTROL_FUTURE' },
        { text: encodeCommand(draft('cmd-for-dev-2', { device: 'dev-2' }), fleetKey.signer, Date.now()).text, id: 'cmd-for-dev-2', code: 'E_CONTROL_WRONG_TARGET' },
        { text: encodeCommand({ ...draft('cmd-bad-payload'), payload: { budgets: { latencyP95Ms: -1 } } }, fleetKey.signer, Date.now()).text, id: 'cmd-bad-payload', code: 'E_CONTROL_INVALID_PAYLOAD' },
        { text: encodeCommand({ ...draft('cmd-rm-rf'), type: 'shell' as never }, fleetKey.signer, Date.now()).text, id: 'cmd-rm-rf', code: 'E_CONTROL_UNKNOWN_TYPE' },
        { text: encodeCommand({ ...draft('cmd-no-handler'), type: 'deploy', payload: { ref: 'oci-layout:/x:1' } }, fleetKey.signer, Date.now()).text, id: 'cmd-no-handler', code: 'E_CONTROL_UNSUPPORTED' },
        // The original id with a different body, validly signed: an id must not be reused.
        { text: encodeCommand({ ...draft('cmd-original'), payload: { budgets: { sizeMb: 6 } } }, fleetKey.signer, Date.now()).text, id: 'cmd-original', code: 'E_CONTROL_ID_REUSED' },
        // The original nonce under a new id, validly signed (a sender bug or a leaked key replaying).
        { text: replayWithNonce(draft('cmd-replay'), replayedNonce.nonce), id: 'cmd-replay', code: 'E_CONTROL_REPLAY' },
      ];
      for (const h of hostile) {
        await cloud.publishAsync(topic, h.text, { qos: 1 });
        expected.push([h.id, 'rejected', h.code]);
      }
      // A valid ping after the flood still runs: the channel survived.
      const ping = encodeCommand({ id: 'cmd-ping-after', type: 'ping', target: { fleet: FLEET, device: 'dev-1' }, payload: {} }, fleetKey.signer, Date.now());
      await cloud.publishAsync(topic, ping.text, { qos: 1 });
      await watch.next((r) => r.id === 'cmd-ping-after' && r.status === 'done');

      const rejected = watch.results.filter((r) => r.status === 'rejected').map((r) => [r.id, r.status, r.error?.code]);
      expect(rejected).toEqual(expected);
      expect(calls).toEqual([{ type: 'ping', payload: {} }]);
      // Nothing refused reached the store.
      for (const h of hostile) if (h.id !== 'cmd-original' && h.id !== '$invalid') expect(device?.store.get(h.id)).toBeUndefined();
      expect(device?.store.get('cmd-original')?.result?.status).toBe('done');
      expect(device?.channel.stats().rejected).toMatchObject({ E_CONTROL_MALFORMED: 2, E_CONTROL_OVERSIZED: 1, E_CONTROL_REPLAY: 1 });
    } finally {
      await watch.close();
    }
  });

  it('runs a fleet-wide command on every device of the fleet, each answering under its own subtree', async () => {
    const devices = await Promise.all(['dev-a', 'dev-b', 'dev-c'].map((name) => startDevice({ url: broker.url, dir: tmp.dir, device: name, handlers, keys: [fleetKey.publicKey] })));
    try {
      const outcome = await sendCommand(cloud, { fleet: FLEET, device: '+', type: 'ping', payload: { echo: 'all' }, signer: fleetKey.signer, timeoutMs: 5000, expectResults: 3 });
      expect(outcome.timedOut).toBe(false);
      expect([...outcome.results.keys()].sort()).toEqual(['dev-a', 'dev-b', 'dev-c']);
      for (const { result } of outcome.results.values()) expect(result).toMatchObject({ status: 'done', result: { pong: true, echo: 'all' } });
      expect([...outcome.acks.values()].every((a) => ackSchema.safeParse(a).success)).toBe(true);
    } finally {
      await Promise.all(devices.map((d) => d.close()));
    }
  });
});

/** A validly signed command that reuses an earlier command's nonce. */
function replayWithNonce(draft: CommandDraft, nonce: string): string {
  const encoded = JSON.parse(encodeCommand(draft, fleetKey.signer, Date.now()).text) as { signed: string };
  const signed = JSON.stringify({ ...(JSON.parse(encoded.signed) as object), nonce });
  return JSON.stringify({ v: 1, signed, keyId: fleetKey.signer.keyId, sig: signBytes(fleetKey.signer, Buffer.from(signed, 'utf8')).toString('base64') });
}
