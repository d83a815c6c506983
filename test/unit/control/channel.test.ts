/**
 * Channel behaviour that does not depend on the broker: ordering of state-changing
 * commands, timeouts, restart recovery, failed publishes, config patches, the rejection
 * budget. The transport is an in-memory twin of the narrow CommandTransport interface (a
 * broker cannot be told to fail one publish, nor to hold a handler's timing still); the
 * store is a real SQLite file. The same claims over real mosquitto are in
 * test/integration/control/.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import {
  CommandChannel,
  CommandStore,
  controlConfigSchema,
  controlSettings,
  encodeCommand,
  parsePrivateKey,
  parsePublicKey,
  resultSchema,
  type Command,
  type CommandDraft,
  type CommandHandlers,
  type CommandResult,
  type CommandTransport,
  type ConfigPatchValidator,
  type ControlConfig,
} from '../../../src/control/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import type { MessageChannel } from '../../../src/telemetry/service.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const kp = generateKeyPairSync('ed25519');
const signer = parsePrivateKey('k', kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
const publicKey = parsePublicKey('k', kp.publicKey.export({ type: 'spki', format: 'pem' }) as string);
const DEVICE_TOPIC = 'edgevolve/v1/f/d/cmd';

class MemoryTransport implements CommandTransport {
  readonly published: { topic: string; payload: string }[] = [];
  failPublishes = false;
  #onMessage: ((topic: string, payload: Buffer) => void) | undefined;

  onCommand(handler: (topic: string, payload: Buffer) => void): void {
    this.#onMessage = handler;
  }

  /** Answers as a broker would at once: accepted and acknowledged (onDelivered) unless told to fail. */
  publish(topic: string, payload: string, options: { onDelivered?: () => void } = {}): Promise<void> {
    if (this.failPublishes) return Promise.reject(new Error('broker unreachable (injected)'));
    this.published.push({ topic, payload });
    if (this.holdDeliveries) this.undelivered.push(options.onDelivered ?? (() => undefined));
    else options.onDelivered?.();
    return Promise.resolve();
  }

  /** While true, publishes are accepted (an outbox commit) but not acknowledged until deliverHeld(). */
  holdDeliveries = false;
  readonly undelivered: (() => void)[] = [];

  deliverHeld(): void {
    for (const callback of this.undelivered.splice(0)) callback();
  }

  deliver(text: string | Buffer, topic = DEVICE_TOPIC): void {
    this.#onMessage?.(topic, Buffer.isBuffer(text) ? text : Buffer.from(text));
  }

  results(): CommandResult[] {
    return this.published.filter((p) => p.topic.endsWith('/result')).map((p) => resultSchema.parse(JSON.parse(p.payload)));
  }
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never happened: ${what}`);
}

let sequence = 0;
const command = (over: Partial<CommandDraft> = {}): string =>
  encodeCommand({ id: `c${++sequence}`, type: 'ping', target: { fleet: 'f', device: 'd' }, payload: {}, ...over }, signer, Date.now()).text;

describe('CommandTransport', () => {
  it('is satisfied by the telemetry service, so the daemon passes it as is (checked by tsc)', () => {
    expectTypeOf<MessageChannel>().toExtend<CommandTransport>();
  });
});

describe('CommandChannel', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let store: CommandStore;
  let transport: MemoryTransport;
  beforeEach(async () => {
    tmp = await makeTempDir();
    store = CommandStore.open(join(tmp.dir, 'control.db'));
    transport = new MemoryTransport();
  });
  afterEach(async () => {
    store.close();
    await tmp.cleanup();
  });

  const channel = async (handlers: CommandHandlers, config: Partial<ControlConfig> = {}, validateConfigPatch?: ConfigPatchValidator, onQueued?: (command: Command) => void): Promise<CommandChannel> => {
    const c = new CommandChannel({
      address: { fleet: 'f', device: 'd' },
      transport,
      store,
      handlers,
      keys: new Map([['k', publicKey]]),
      settings: controlSettings(controlConfigSchema.parse(config)),
      clock: systemClock,
      logger: silentLogger(),
      ...(validateConfigPatch === undefined ? {} : { validateConfigPatch }),
      ...(onQueued === undefined ? {} : { onQueued }),
    });
    await c.start();
    return c;
  };

  it('runs state-changing commands one at a time in arrival order, while a ping runs beside them', async () => {
    const gates = [deferred(), deferred()];
    const log: string[] = [];
    let n = 0;
    await channel({
      'set-budgets': async () => {
        const mine = n++;
        log.push(`start ${mine}`);
        await gates[mine]?.promise;
        log.push(`end ${mine}`);
        return {};
      },
      ping: () => {
        log.push('ping');
        return Promise.resolve({});
      },
    });
    transport.deliver(command({ type: 'set-budgets', payload: { budgets: {} } }));
    transport.deliver(command({ type: 'set-budgets', payload: { budgets: {} } }));
    await until(() => log.includes('start 0'), 'first started');
    transport.deliver(command({ type: 'ping' }));
    await until(() => log.includes('ping'), 'ping ran');
    expect(log).toEqual(['start 0', 'ping']);
    gates[0]?.resolve();
    await until(() => log.includes('start 1'), 'second started');
    expect(log).toEqual(['start 0', 'ping', 'end 0', 'start 1']);
    gates[1]?.resolve();
    await until(() => transport.results().length === 3, 'three results');
    expect(transport.results().map((r) => r.status)).toEqual(['done', 'done', 'done']);
  });

  it('tells onQueued about a state-changing command that has to wait for the slot, at once, and only about that one', async () => {
    const gate = deferred();
    const queued: string[] = [];
    let ran = 0;
    await channel(
      {
        deploy: async () => {
          ran++;
          await gate.promise;
          return {};
        },
        rollback: () => Promise.resolve({ rolledBack: true }),
        ping: () => Promise.resolve({}),
      },
      {},
      undefined,
      (c) => queued.push(`${c.type} ${c.id}`),
    );
    transport.deliver(command({ id: 'running', type: 'deploy', payload: { ref: 'r/m:2' } }));
    await until(() => ran === 1, 'deploy started');
    transport.deliver(command({ id: 'pinged', type: 'ping' }));
    transport.deliver(command({ id: 'waiting', type: 'rollback', payload: {} }));
    // Called while the deploy still holds the slot: that is the point (the daemon cancels the shadow the deploy waits on).
    expect(queued).toEqual(['rollback waiting']);
    gate.resolve();
    await until(() => transport.results().length === 3, 'three results');
    expect(transport.results().find((r) => r.id === 'waiting')).toMatchObject({ status: 'done', result: { rolledBack: true } });
    expect(queued).toEqual(['rollback waiting']);
  });

  it('fails a handler past its timeout with E_CONTROL_TIMEOUT, aborts its signal, and holds the slot until it settles', async () => {
    const release = deferred();
    let aborted = false;
    const log: string[] = [];
    await channel(
      {
        'set-budgets': async (_payload, ctx) => {
          log.push(`start ${ctx.id}`);
          if (log.length === 1) {
            ctx.signal.addEventListener('abort', () => (aborted = true));
            await release.promise;
          }
          return {};
        },
      },
      { timeoutSeconds: { 'set-budgets': 0.05 } },
    );
    transport.deliver(command({ id: 'slow', type: 'set-budgets', payload: { budgets: {} } }));
    transport.deliver(command({ id: 'next', type: 'set-budgets', payload: { budgets: {} } }));
    await until(() => transport.results().length === 1, 'timeout result');
    expect(transport.results()[0]).toMatchObject({ id: 'slow', status: 'failed', error: { code: 'E_CONTROL_TIMEOUT' } });
    expect(aborted).toBe(true);
    expect(store.get('slow')?.state).toBe('failed');
    // The hung handler still holds the exclusive slot.
    await new Promise((r) => setTimeout(r, 50));
    expect(log).toEqual(['start slow']);
    release.resolve();
    await until(() => transport.results().length === 2, 'next result');
    expect(log).toEqual(['start slow', 'start next']);
  });

  it('after a restart reports a command that was running as failed "interrupted", never re-runs it, and answers its id from the store', async () => {
    const never = deferred();
    let calls = 0;
    await channel({
      deploy: async () => {
        calls++;
        await never.promise;
        return {};
      },
    });
    const text = command({ id: 'dep-1', type: 'deploy', payload: { ref: 'oci-layout:/models:1' } });
    transport.deliver(text);
    await until(() => store.get('dep-1')?.state === 'running', 'deploy running');
    // The process dies here: no stop(), the store is simply reopened by a new channel.
    store.close();
    store = CommandStore.open(join(tmp.dir, 'control.db'));
    transport = new MemoryTransport();
    await channel({
      deploy: () => {
        calls++;
        return Promise.resolve({});
      },
    });
    expect(transport.results()).toMatchObject([{ id: 'dep-1', status: 'failed', error: { code: 'E_CONTROL_INTERRUPTED' }, duplicate: false }]);
    transport.deliver(text);
    await until(() => transport.results().length === 2, 'duplicate answer');
    expect(transport.results()[1]).toMatchObject({ id: 'dep-1', status: 'failed', error: { code: 'E_CONTROL_INTERRUPTED' }, duplicate: true });
    expect(calls).toBe(1);
  });

  it('keeps a result whose publish failed and sends it on republishUnreported (and marks it reported then)', async () => {
    const c = await channel({ ping: () => Promise.resolve({ pong: true }) });
    transport.failPublishes = true;
    transport.deliver(command({ id: 'lost' }));
    await until(() => store.get('lost')?.state === 'done', 'ping done');
    await until(() => c.stats().publishFailures === 1, 'publish failure counted');
    expect(store.get('lost')?.reportedAt).toBeNull();
    transport.failPublishes = false;
    await c.republishUnreported();
    expect(transport.results()).toMatchObject([{ id: 'lost', status: 'done', result: { pong: true } }]);
    expect(store.get('lost')?.reportedAt).not.toBeNull();
  });

  it('calls a result reported only once the broker acknowledged it, not when the transport accepted it', async () => {
    const c = await channel({ ping: () => Promise.resolve({ pong: true }) });
    transport.holdDeliveries = true;
    transport.deliver(command({ id: 'queued' }));
    await until(() => transport.results().length === 1, 'result accepted by the transport');
    expect(store.get('queued')?.reportedAt).toBeNull();
    expect(store.unreported().map((r) => r.id)).toEqual(['queued']);
    transport.deliverHeld();
    expect(store.get('queued')?.reportedAt).not.toBeNull();
    expect(c.stats().publishFailures).toBe(0);
  });

  it('checks a config patch with the daemon validator before accepting it, and refuses config without one', async () => {
    const applied: unknown[] = [];
    const validator: ConfigPatchValidator = (patch) => {
      if ('log' in patch) return;
      throw new EdgevolveError('E_CONFIG_INVALID', `unknown key ${Object.keys(patch).join(', ')}`);
    };
    await channel({ config: (payload) => (applied.push(payload.patch), Promise.resolve({ applied: true })) }, {}, validator);
    transport.deliver(command({ id: 'bad-cfg', type: 'config', payload: { patch: { stateDir: '/' } } }));
    transport.deliver(command({ id: 'good-cfg', type: 'config', payload: { patch: { log: { level: 'debug' } } } }));
    await until(() => transport.results().length === 2, 'two answers');
    expect(transport.results().map((r) => [r.id, r.status, r.error?.code])).toEqual([
      ['bad-cfg', 'rejected', 'E_CONTROL_INVALID_PAYLOAD'],
      ['good-cfg', 'done', undefined],
    ]);
    expect(transport.results()[0]?.error?.message).toContain('unknown key stateDir');
    expect(applied).toEqual([{ log: { level: 'debug' } }]);
    expect(store.get('bad-cfg')).toBeUndefined();
  });

  it('refuses config commands when the daemon gave no validator', async () => {
    await channel({ config: () => Promise.resolve({}) });
    transport.deliver(command({ id: 'cfg', type: 'config', payload: { patch: {} } }));
    expect(transport.results()).toMatchObject([{ id: 'cfg', status: 'rejected', error: { code: 'E_CONTROL_UNSUPPORTED' } }]);
  });

  it('answers at most maxRejectionsPerMinute refusals and counts the rest', async () => {
    const c = await channel({}, { maxRejectionsPerMinute: 3 });
    for (let i = 0; i < 10; i++) transport.deliver('garbage');
    expect(transport.results()).toHaveLength(3);
    expect(c.stats()).toMatchObject({ rejected: { E_CONTROL_MALFORMED: 10 }, rejectionsUnanswered: 7 });
  });

  it('does not answer unauthenticated refusals on the fleet-wide topic (no amplification), but answers signed ones', async () => {
    const c = await channel({ ping: () => Promise.resolve({}) });
    const FLEET_TOPIC = 'edgevolve/v1/f/$all/cmd';
    transport.deliver('garbage', FLEET_TOPIC);
    transport.deliver(encodeCommand({ id: 'forged', type: 'ping', target: { fleet: 'f', device: '$all' }, payload: {} }, parsePrivateKey('k', generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), Date.now()).text, FLEET_TOPIC);
    transport.deliver(encodeCommand({ id: 'stale', type: 'ping', target: { fleet: 'f', device: '$all' }, payload: {} }, signer, Date.now() - 7_200_000).text, FLEET_TOPIC);
    await until(() => transport.results().length === 1, 'one answer');
    expect(transport.results()).toMatchObject([{ id: 'stale', status: 'rejected', error: { code: 'E_CONTROL_EXPIRED' } }]);
    expect(c.stats()).toMatchObject({ accepted: 0, rejected: { E_CONTROL_MALFORMED: 1, E_CONTROL_BAD_SIGNATURE: 1, E_CONTROL_EXPIRED: 1 }, rejectionsUnanswered: 2 });
  });

  it('reports a handler error with its code, and a non-JSON handler result as E_CONTROL_HANDLER', async () => {
    await channel({
      rollback: () => Promise.reject(new EdgevolveError('E_STORE_NOT_FOUND', 'no previous version')),
      ping: () => Promise.resolve({ big: 1n } as unknown as Record<string, unknown>),
    });
    transport.deliver(command({ id: 'rb', type: 'rollback', payload: {} }));
    transport.deliver(command({ id: 'pg', type: 'ping' }));
    await until(() => transport.results().length === 2, 'two results');
    const byId = new Map(transport.results().map((r) => [r.id, r]));
    expect(byId.get('rb')).toMatchObject({ status: 'failed', error: { code: 'E_STORE_NOT_FOUND', message: 'no previous version' } });
    expect(byId.get('pg')).toMatchObject({ status: 'failed', error: { code: 'E_CONTROL_HANDLER' } });
  });

  it('ignores messages on topics it does not serve and stops accepting after stop()', async () => {
    let calls = 0;
    const c = await channel({ ping: () => (calls++, Promise.resolve({})) });
    transport.deliver(command(), 'edgevolve/v1/f/other/cmd');
    await c.stop();
    transport.deliver(command());
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(0);
    expect(transport.published).toEqual([]);
  });
});
