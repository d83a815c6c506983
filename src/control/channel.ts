/**
 * The device side of the command channel: receives commands, refuses anything invalid,
 * unauthorized, stale or replayed (with an error result and no state change), acks what
 * it accepts at once, runs it once through the handler registry, and publishes the
 * result. A repeated id gets the stored answer and runs nothing.
 *
 * INVARIANTS: everything from decoding to the store insert runs synchronously inside the
 * message callback, so two deliveries of one id can never both be accepted; state-changing
 * commands run one at a time in arrival order (the exclusive chain), and a timed-out
 * handler keeps its slot until it settles, so two deploys never overlap; read-only types
 * (ping, profile) run beside them.
 */
import type { Clock } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import { EdgevolveError, toEdgevolveError, type ErrorCode } from '../errors/index.ts';
import type { FleetPublicKey } from './keys.ts';
import {
  PROTOCOL_VERSION,
  READ_ONLY_TYPES,
  type Ack,
  type Command,
  type CommandPayloads,
  type CommandResult,
  type CommandState,
  type CommandType,
} from './schemas.ts';
import type { CommandStore, StoredCommand } from './store.ts';
import { INVALID_ID, commandTopics, type CommandTopics, type DeviceAddress } from './topics.ts';
import { decodeCommand, type Decoded } from './wire.ts';

/**
 * The MQTT link as the channel needs it. The telemetry service (src/telemetry
 * `MessageChannel`) has this shape: it subscribes the device's `cmd` and the fleet's
 * `$all/cmd` itself, its publish resolves once the message is committed to the outbox,
 * and it calls `onDelivered` on the broker's PUBACK. `mqttCommandTransport` is the plain
 * mqtt.js version (tests, fleet-sim), whose publish resolves on PUBACK.
 *
 * Why two signals: the outbox (telemetry.db) runs synchronous=NORMAL, so a power cut can
 * lose a committed result there. control.db (FULL) keeps the result and calls it
 * reported only on `onDelivered`; until then every start publishes it again.
 */
export interface CommandTransport {
  /** Delivers every message on the command topics to `handler`. */
  onCommand(handler: (topic: string, payload: Buffer) => void): void;
  /**
   * Resolves when the message is accepted for sending (outbox commit or PUBACK); rejects
   * when it is not. `onDelivered` runs once the broker acknowledged it (never, if the
   * process stops first).
   */
  publish(topic: string, payload: string, options: { qos: 0 | 1; retain?: boolean; onDelivered?: () => void }): Promise<void>;
}

/** What a handler knows about the command it runs. */
export interface CommandContext {
  readonly id: string;
  readonly type: CommandType;
  readonly issuedAt: number;
  /** keyId of the fleet key that signed it; undefined when trusted through the broker ACL. */
  readonly signedBy: string | undefined;
  /** Aborted when the handler's timeout passes; a handler should stop and undo what it can. */
  readonly signal: AbortSignal;
}

/** The JSON object a handler returns; it becomes the result's `result` field. */
export type HandlerOutput = Readonly<Record<string, unknown>>;

export type CommandHandler<K extends CommandType> = (payload: CommandPayloads[K], context: CommandContext) => Promise<HandlerOutput>;

/** type → handler; the daemon supplies the real ones. A type without a handler is refused as unsupported. */
export type CommandHandlers = { readonly [K in CommandType]?: CommandHandler<K> };

/** Checks a `config` command's patch against the daemon's schema; throws an EdgevolveError naming the bad keys. */
export type ConfigPatchValidator = (patch: Readonly<Record<string, unknown>>) => void;

export interface ControlSettings {
  readonly trustBrokerAcl: boolean;
  readonly maxCommandBytes: number;
  /** Commands issued longer ago than this are refused (and the store remembers nonces at least this long). */
  readonly maxAgeMs: number;
  /** How far in the future issuedAt may be (sender clock ahead of ours). */
  readonly maxClockSkewMs: number;
  /** Finished commands are forgotten after this; must exceed maxAgeMs + maxClockSkewMs. */
  readonly retentionMs: number;
  readonly timeoutMs: Readonly<Record<CommandType, number>>;
  /** Also listen on the fleet-wide topic. */
  readonly fleetWide: boolean;
  /** Error results for refused commands per minute; beyond it they are counted and dropped (a flood must not become our flood). */
  readonly maxRejectionsPerMinute: number;
}

export interface ChannelStats {
  accepted: number;
  duplicates: number;
  done: number;
  failed: number;
  rejected: Partial<Record<ErrorCode, number>>;
  /** Refusals that got no error result: over maxRejectionsPerMinute, or unauthenticated on the fleet-wide topic. */
  rejectionsUnanswered: number;
  /** Results whose publish failed; they stay unreported and are sent again by republishUnreported(). */
  publishFailures: number;
}

export interface CommandChannelOptions {
  readonly address: DeviceAddress;
  readonly transport: CommandTransport;
  readonly store: CommandStore;
  readonly handlers: CommandHandlers;
  readonly keys: ReadonlyMap<string, FleetPublicKey>;
  readonly settings: ControlSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly validateConfigPatch?: ConfigPatchValidator;
  /**
   * Called once for an accepted state-changing command that has to wait for the slot
   * (another one runs), before it waits: where waiting would defeat the command, the daemon
   * acts at once — a rollback or another deploy cancels the shadow a running deploy command
   * waits on (up to deploy.shadow.maxDurationMs), so that command finishes and frees the
   * slot. Runs inside the message callback: it must only start work; a throw is logged.
   */
  readonly onQueued?: (command: Command) => void;
}

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

/** Refusals decided before the signature was checked: anyone who can publish can cause them. */
const UNAUTHENTICATED_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_CONTROL_OVERSIZED',
  'E_CONTROL_MALFORMED',
  'E_CONTROL_UNKNOWN_TYPE',
  'E_CONTROL_UNSIGNED',
  'E_CONTROL_UNKNOWN_KEY',
  'E_CONTROL_BAD_SIGNATURE',
]);

export class CommandChannel {
  readonly #o: CommandChannelOptions;
  readonly #topics: CommandTopics;
  readonly #running = new Map<string, Running>();
  #exclusiveTail: Promise<void> = Promise.resolve();
  /** State-changing commands accepted and not yet finished (running or waiting for the slot). */
  #exclusiveQueued = 0;
  #accepting = false;
  #subscribed = false;
  #rejectionWindowStart = 0;
  #rejectionsInWindow = 0;
  readonly #stats: ChannelStats = { accepted: 0, duplicates: 0, done: 0, failed: 0, rejected: {}, rejectionsUnanswered: 0, publishFailures: 0 };

  constructor(options: CommandChannelOptions) {
    this.#o = options;
    this.#topics = commandTopics(options.address);
  }

  get topics(): CommandTopics {
    return this.#topics;
  }

  stats(): Readonly<ChannelStats> {
    return { ...this.#stats, rejected: { ...this.#stats.rejected } };
  }

  /**
   * Forgets old commands, reports commands that a previous process left unfinished as
   * failed "interrupted" (never re-runs them), subscribes, and publishes every result not
   * yet PUBACKed.
   */
  async start(): Promise<void> {
    // Recovery only on the first start of this process: after a stop() and start() in the
    // same process, a command still running is ours, not a previous process's.
    if (!this.#subscribed) {
      const now = this.#o.clock.now();
      const pruned = this.#o.store.prune(now - this.#o.settings.retentionMs);
      const interrupted = this.#o.store.failUnfinished((command) => this.#interruptedResult(command, now));
      this.#stats.failed += interrupted.length;
      for (const result of interrupted) {
        this.#o.logger.warn({ id: result.id, type: result.type }, 'command was unfinished when the agent stopped; reported as failed (interrupted), not re-run');
      }
      if (pruned > 0) this.#o.logger.debug({ pruned }, 'forgot old commands');
      this.#subscribed = true;
      this.#o.transport.onCommand((topic, payload) => this.handleMessage(topic, payload));
    }
    this.#accepting = true;
    await this.republishUnreported();
  }

  /** Sends every stored result that has no PUBACK yet (call after a reconnect). */
  async republishUnreported(): Promise<void> {
    for (const result of this.#o.store.unreported()) await this.#publishResult(result, true);
  }

  /**
   * Stops accepting commands and waits up to `graceMs` for running ones. A command still
   * running afterwards stays `running` in the store and is reported as interrupted by the
   * next start().
   */
  async stop(graceMs = 5000): Promise<void> {
    this.#accepting = false;
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /** The transport's message callback. Never throws: every failure becomes a result or a log line. */
  handleMessage(topic: string, payload: Buffer): void {
    if (!this.#accepting) return;
    const arrivedOn = topic === this.#topics.device ? 'device' : topic === this.#topics.fleet && this.#o.settings.fleetWide ? 'fleet' : undefined;
    if (arrivedOn === undefined) {
      this.#o.logger.warn({ topic }, 'message on a topic the command channel does not serve; ignored');
      return;
    }
    try {
      const decoded = decodeCommand(payload, {
        maxBytes: this.#o.settings.maxCommandBytes,
        keys: this.#o.keys,
        trustBrokerAcl: this.#o.settings.trustBrokerAcl,
        address: this.#o.address,
        arrivedOn,
      });
      if (!decoded.ok) {
        // One unauthenticated publish on $all would make every device of the fleet answer:
        // an amplifier. Refusals there are counted and logged, answered only once signed.
        this.#reject(decoded, !(arrivedOn === 'fleet' && UNAUTHENTICATED_REFUSALS.has(decoded.error.code)));
        return;
      }
      this.#accept(decoded.command, decoded.bodySha256, decoded.signedBy);
    } catch (err) {
      this.#o.logger.error({ err, topic }, 'command handling failed');
    }
  }

  #accept(command: Command, bodySha256: string, signedBy: string | undefined): void {
    const { store, settings, clock } = this.#o;
    const answer = (error: EdgevolveError): void => this.#reject({ ok: false, id: command.id, type: command.type, bodySha256, error });
    const existing = store.get(command.id);
    if (existing !== undefined) {
      if (existing.bodySha256 !== bodySha256) {
        answer(new EdgevolveError('E_CONTROL_ID_REUSED', `command id ${command.id} was used before for a different command; use a new id`, { context: { id: command.id } }));
        return;
      }
      this.#stats.duplicates += 1;
      this.#o.logger.info({ id: command.id, state: existing.state }, 'command id seen before; answering from the store, not running it again');
      void this.#publishAck(command.id, existing.type, existing.state, true);
      if (existing.result !== null) void this.#publishResult({ ...existing.result, duplicate: true }, existing.reportedAt === null);
      return;
    }
    const now = clock.now();
    if (command.expiresAt !== undefined && now > command.expiresAt) {
      answer(new EdgevolveError('E_CONTROL_EXPIRED', `command expired ${Math.round((now - command.expiresAt) / 1000)} s ago`, { context: { expiresAt: command.expiresAt, now } }));
      return;
    }
    if (now - command.issuedAt > settings.maxAgeMs) {
      answer(
        new EdgevolveError('E_CONTROL_EXPIRED', `command was issued ${Math.round((now - command.issuedAt) / 1000)} s ago, longer than control.maxCommandAgeSeconds (${settings.maxAgeMs / 1000} s)`, {
          context: { issuedAt: command.issuedAt, now },
        }),
      );
      return;
    }
    if (command.issuedAt - now > settings.maxClockSkewMs) {
      answer(
        new EdgevolveError('E_CONTROL_FUTURE', `command is issued ${Math.round((command.issuedAt - now) / 1000)} s in the future, more than control.maxClockSkewSeconds (${settings.maxClockSkewMs / 1000} s); check the clocks`, {
          context: { issuedAt: command.issuedAt, now },
        }),
      );
      return;
    }
    const nonceOwner = store.nonceOwner(command.nonce);
    if (nonceOwner !== undefined) {
      answer(new EdgevolveError('E_CONTROL_REPLAY', `command nonce was already used by command ${nonceOwner}; refusing a replay`, { context: { id: command.id, previous: nonceOwner } }));
      return;
    }
    const handler = this.#o.handlers[command.type] as CommandHandler<CommandType> | undefined;
    if (handler === undefined) {
      answer(new EdgevolveError('E_CONTROL_UNSUPPORTED', `this device has no handler for ${command.type} commands`, { context: { type: command.type } }));
      return;
    }
    if (command.type === 'config') {
      if (this.#o.validateConfigPatch === undefined) {
        answer(new EdgevolveError('E_CONTROL_UNSUPPORTED', 'this device accepts no config patches (no validator configured)'));
        return;
      }
      try {
        this.#o.validateConfigPatch(command.payload.patch);
      } catch (err) {
        const cause = toEdgevolveError(err, 'E_CONFIG_INVALID');
        answer(new EdgevolveError('E_CONTROL_INVALID_PAYLOAD', `config patch is invalid: ${cause.message}`, { cause }));
        return;
      }
    }
    const readOnly = READ_ONLY_TYPES.has(command.type);
    // A command that starts at once is inserted as running: one commit (and fsync) fewer.
    const startsNow = readOnly || this.#exclusiveQueued === 0;
    try {
      store.insert({ id: command.id, bodySha256, type: command.type, nonce: command.nonce }, startsNow ? 'running' : 'received', now);
    } catch (err) {
      answer(new EdgevolveError('E_STORE_DB', `cannot record the command: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.#stats.accepted += 1;
    // A daemon runs for months: forget old commands now and then, not only at start.
    if (this.#stats.accepted % 1000 === 0) store.prune(now - settings.retentionMs);
    void this.#publishAck(command.id, command.type, 'received', false);
    const run = (): Promise<void> => this.#run(command, handler, bodySha256, now, signedBy, !startsNow);
    if (readOnly) {
      void run();
    } else {
      this.#exclusiveQueued += 1;
      this.#exclusiveTail = this.#exclusiveTail.then(run).finally(() => {
        this.#exclusiveQueued -= 1;
      });
      if (!startsNow) {
        try {
          this.#o.onQueued?.(command);
        } catch (err) {
          this.#o.logger.warn({ id: command.id, type: command.type, err: (err as Error).message }, 'onQueued failed; the command waits for its turn');
        }
      }
    }
  }

  async #run(command: Command, handler: CommandHandler<CommandType>, bodySha256: string, receivedAt: number, signedBy: string | undefined, queued: boolean): Promise<void> {
    const { store, clock, settings, logger } = this.#o;
    const controller = new AbortController();
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.#running.set(command.id, { controller, done });
    const timeoutMs = settings.timeoutMs[command.type];
    let timer: NodeJS.Timeout | undefined;
    try {
      if (queued) store.markRunning(command.id, clock.now());
      const context: CommandContext = { id: command.id, type: command.type, issuedAt: command.issuedAt, signedBy, signal: controller.signal };
      const work = Promise.resolve().then(() => handler(command.payload, context));
      const timedOut = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          const error = new EdgevolveError('E_CONTROL_TIMEOUT', `${command.type} handler did not finish within ${timeoutMs / 1000} s; it was asked to stop`, { context: { timeoutMs } });
          controller.abort(error);
          reject(error);
        }, timeoutMs);
      });
      let result: CommandResult;
      try {
        const output = await Promise.race([work, timedOut]);
        result = this.#result(command, bodySha256, receivedAt, { status: 'done', result: toJsonObject(output) });
      } catch (err) {
        const error = toEdgevolveError(err, 'E_CONTROL_HANDLER');
        logger.warn({ id: command.id, type: command.type, code: error.code, err: error.message }, 'command failed');
        result = this.#result(command, bodySha256, receivedAt, { status: 'failed', error: { code: error.code, message: error.message } });
      }
      clearTimeout(timer);
      store.finish(result);
      if (result.status === 'done') this.#stats.done += 1;
      else this.#stats.failed += 1;
      await this.#publishResult(result, true);
      // Hold the exclusive slot until the handler has really stopped (see INVARIANTS).
      await work.then(
        () => undefined,
        () => undefined,
      );
    } catch (err) {
      // Only the store can get here (SQLITE_FULL, I/O): the row stays `running` and the next start reports it.
      logger.error({ err, id: command.id }, 'cannot record the command outcome');
    } finally {
      clearTimeout(timer);
      this.#running.delete(command.id);
      settle();
    }
  }

  #result(command: Command, bodySha256: string, receivedAt: number, outcome: Pick<CommandResult, 'status' | 'result' | 'error'>): CommandResult {
    return {
      v: PROTOCOL_VERSION,
      id: command.id,
      device: this.#o.address.device,
      type: command.type,
      ...outcome,
      bodySha256,
      duplicate: false,
      receivedAt,
      finishedAt: this.#o.clock.now(),
    };
  }

  #interruptedResult(command: StoredCommand, now: number): CommandResult {
    const started = command.state === 'running';
    return {
      v: PROTOCOL_VERSION,
      id: command.id,
      device: this.#o.address.device,
      type: command.type,
      status: 'failed',
      error: {
        code: 'E_CONTROL_INTERRUPTED',
        message: started
          ? 'the agent stopped while this command was running; it was not run again (its effect is unknown: check the device state and send a new command)'
          : 'the agent stopped before this command started; it was not run (send it again with a new id)',
      },
      bodySha256: command.bodySha256,
      duplicate: false,
      receivedAt: command.receivedAt,
      finishedAt: now,
    };
  }

  #reject(decoded: Extract<Decoded, { ok: false }>, answer = true): void {
    const code = decoded.error.code;
    this.#stats.rejected[code] = (this.#stats.rejected[code] ?? 0) + 1;
    this.#o.logger.warn({ id: decoded.id, code, reason: decoded.error.message }, 'command refused');
    if (!answer) {
      this.#stats.rejectionsUnanswered += 1;
      return;
    }
    const now = this.#o.clock.now();
    if (now - this.#rejectionWindowStart >= 60_000) {
      this.#rejectionWindowStart = now;
      this.#rejectionsInWindow = 0;
    }
    if (this.#rejectionsInWindow >= this.#o.settings.maxRejectionsPerMinute) {
      this.#stats.rejectionsUnanswered += 1;
      return;
    }
    this.#rejectionsInWindow += 1;
    const result: CommandResult = {
      v: PROTOCOL_VERSION,
      id: decoded.id ?? INVALID_ID,
      device: this.#o.address.device,
      ...(decoded.type === undefined ? {} : { type: decoded.type }),
      status: 'rejected',
      error: { code, message: decoded.error.message },
      ...(decoded.bodySha256 === undefined ? {} : { bodySha256: decoded.bodySha256 }),
      duplicate: false,
      finishedAt: now,
    };
    // Rejections are not stored (nothing changed), so they are not re-sent either.
    void this.#publishResult(result, false);
  }

  async #publishAck(id: string, type: string, state: CommandState, duplicate: boolean): Promise<void> {
    const ack: Ack = { v: PROTOCOL_VERSION, id, device: this.#o.address.device, type, state, duplicate, at: this.#o.clock.now() };
    try {
      await this.#o.transport.publish(this.#topics.ack(id), JSON.stringify(ack), { qos: 1 });
    } catch (err) {
      // An ack is a courtesy; the result is what the sender waits for, and it is stored.
      this.#o.logger.warn({ err, id }, 'cannot publish the ack');
    }
  }

  async #publishResult(result: CommandResult, stored: boolean): Promise<void> {
    try {
      const onDelivered = (): void => this.#markReported(result.id);
      await this.#o.transport.publish(this.#topics.result(result.id), JSON.stringify(result), { qos: 1, ...(stored ? { onDelivered } : {}) });
    } catch (err) {
      this.#stats.publishFailures += 1;
      this.#o.logger.warn({ err, id: result.id }, 'cannot publish the result; it stays stored and is sent again at the next start');
    }
  }

  /** After the result's PUBACK; the store may be closed by then (a PUBACK during shutdown): the next start sends it again. */
  #markReported(id: string): void {
    try {
      this.#o.store.markReported(id, this.#o.clock.now());
    } catch (err) {
      this.#o.logger.debug({ err, id }, 'cannot mark the result reported; it is sent again at the next start');
    }
  }
}

function toJsonObject(output: unknown): Record<string, unknown> {
  if (output === undefined || output === null) return {};
  if (typeof output !== 'object' || Array.isArray(output)) return { value: output };
  // Round trip once: a result that is not plain JSON (a cycle, a bigint) must fail here, not at publish.
  try {
    return JSON.parse(JSON.stringify(output)) as Record<string, unknown>;
  } catch (err) {
    throw new EdgevolveError('E_CONTROL_HANDLER', `handler result is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
