/**
 * Commands on the wire. A sender publishes `{ v, signed, keyId, sig }` where `signed` is
 * the envelope's JSON text and `sig` signs exactly its UTF-8 bytes, so the device verifies
 * the bytes it received and parses them only afterwards: no canonical JSON form is needed
 * and no reordering or re-escaping can change what was signed.
 *
 * `decodeCommand` is pure: bytes in, a command or a rejection out. Freshness, replay and
 * idempotency need the clock and the command store, so the channel checks those.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { EdgevolveError } from '../errors/index.ts';
import { signBytes, verifyBytes, type FleetPublicKey, type FleetSigningKey } from './keys.ts';
import { PAYLOAD_SCHEMAS, PROTOCOL_VERSION, envelopeSchema, isCommandType, wireSchema, type Command, type CommandType } from './schemas.ts';
import { FLEET_WIDE, ID_PATTERN, type DeviceAddress } from './topics.ts';

export interface DecodeOptions {
  /** Largest command accepted, in bytes; checked before anything is parsed. */
  readonly maxBytes: number;
  readonly keys: ReadonlyMap<string, FleetPublicKey>;
  /** Accept unsigned commands (the broker's ACL is the only authorization). */
  readonly trustBrokerAcl: boolean;
  /** This device. */
  readonly address: DeviceAddress;
  /** Which subscription the command arrived on. */
  readonly arrivedOn: 'device' | 'fleet';
}

export type Decoded =
  | { readonly ok: true; readonly command: Command; readonly bodySha256: string; readonly signedBy: string | undefined }
  | { readonly ok: false; readonly id: string | undefined; readonly type: string | undefined; readonly bodySha256: string | undefined; readonly error: EdgevolveError };

function reject(error: EdgevolveError, id?: string, type?: string, bodySha256?: string): Decoded {
  return { ok: false, id, type, bodySha256, error };
}

function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length === 0 ? '(root)' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    // RangeError from a nesting bomb lands here too.
    return { ok: false, reason: (err as Error).message };
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function decodeCommand(bytes: Buffer, options: DecodeOptions): Decoded {
  if (bytes.length > options.maxBytes) {
    return reject(new EdgevolveError('E_CONTROL_OVERSIZED', `command is ${bytes.length} bytes, over the ${options.maxBytes}-byte limit (control.maxCommandBytes)`, { context: { bytes: bytes.length, maxBytes: options.maxBytes } }));
  }
  const outer = parseJson(bytes.toString('utf8'));
  if (!outer.ok) return reject(new EdgevolveError('E_CONTROL_MALFORMED', `command is not JSON: ${outer.reason}`));
  const wire = wireSchema.safeParse(outer.value);
  if (!wire.success) return reject(new EdgevolveError('E_CONTROL_MALFORMED', `command is not {v: ${PROTOCOL_VERSION}, signed, keyId?, sig?}: ${issues(wire.error)}`));
  const { signed, keyId, sig } = wire.data;
  const bodySha256 = sha256Hex(signed);
  const inner = parseJson(signed);
  if (!inner.ok) return reject(new EdgevolveError('E_CONTROL_MALFORMED', `command.signed is not JSON: ${inner.reason}`), undefined, undefined, bodySha256);
  // Read the id and type first so that even a rejection can be answered on the right topic.
  const raw = inner.value;
  const rawId = typeof raw === 'object' && raw !== null && 'id' in raw && typeof raw.id === 'string' && ID_PATTERN.test(raw.id) ? raw.id : undefined;
  const rawType = typeof raw === 'object' && raw !== null && 'type' in raw && typeof raw.type === 'string' ? raw.type.slice(0, 64) : undefined;
  const envelope = envelopeSchema.safeParse(raw);
  if (!envelope.success) return reject(new EdgevolveError('E_CONTROL_MALFORMED', `command envelope is invalid: ${issues(envelope.error)}`), rawId, rawType, bodySha256);
  const env = envelope.data;
  if (!isCommandType(env.type)) {
    return reject(new EdgevolveError('E_CONTROL_UNKNOWN_TYPE', `unknown command type ${JSON.stringify(env.type.slice(0, 64))}`, { context: { type: env.type.slice(0, 64) } }), env.id, rawType, bodySha256);
  }

  // Authorization before anything else is believed; the target is inside the signed text.
  let signedBy: string | undefined;
  if (sig !== undefined || !options.trustBrokerAcl) {
    if (sig === undefined || keyId === undefined) {
      return reject(new EdgevolveError('E_CONTROL_UNSIGNED', 'command is not signed (keyId and sig missing) and control.trustBrokerAcl is false'), env.id, env.type, bodySha256);
    }
    const key = options.keys.get(keyId);
    if (key === undefined) {
      return reject(new EdgevolveError('E_CONTROL_UNKNOWN_KEY', `command is signed with key ${JSON.stringify(keyId)}, which is not in control.publicKeys`, { context: { keyId } }), env.id, env.type, bodySha256);
    }
    if (!verifyBytes(key, Buffer.from(signed, 'utf8'), Buffer.from(sig, 'base64'))) {
      return reject(new EdgevolveError('E_CONTROL_BAD_SIGNATURE', `command signature does not verify with key ${JSON.stringify(keyId)}`, { context: { keyId } }), env.id, env.type, bodySha256);
    }
    signedBy = keyId;
  }

  const { fleet, device } = env.target;
  const forUs = fleet === options.address.fleet && (options.arrivedOn === 'fleet' ? device === FLEET_WIDE : device === options.address.device);
  if (!forUs) {
    return reject(
      new EdgevolveError('E_CONTROL_WRONG_TARGET', `command is addressed to ${fleet}/${device} but arrived on the ${options.arrivedOn} topic of ${options.address.fleet}/${options.address.device}`, { context: { fleet, device } }),
      env.id,
      env.type,
      bodySha256,
    );
  }

  const payload = PAYLOAD_SCHEMAS[env.type].safeParse(env.payload);
  if (!payload.success) {
    return reject(new EdgevolveError('E_CONTROL_INVALID_PAYLOAD', `${env.type} payload is invalid: ${issues(payload.error)}`, { context: { type: env.type } }), env.id, env.type, bodySha256);
  }
  const command = { ...env, type: env.type, payload: payload.data } as Command;
  return { ok: true, command, bodySha256, signedBy };
}

/** What a sender fills in; `encodeCommand` adds the version, nonce and issue time. */
export interface CommandDraft<K extends CommandType = CommandType> {
  readonly id: string;
  readonly type: K;
  readonly target: { readonly fleet: string; readonly device: string };
  readonly payload: unknown;
  /** Lifetime after issue, ms; becomes `expiresAt`. */
  readonly ttlMs?: number;
}

export interface EncodedCommand {
  /** The wire document to publish. */
  readonly text: string;
  /** The signed text's sha256: answers carry it, so a sender can tell its command's answers from others. */
  readonly bodySha256: string;
}

/** Builds, and with a key signs, a command's wire document. */
export function encodeCommand(draft: CommandDraft, signer: FleetSigningKey | undefined, now: number): EncodedCommand {
  const envelope = {
    v: PROTOCOL_VERSION,
    id: draft.id,
    type: draft.type,
    target: draft.target,
    issuedAt: now,
    ...(draft.ttlMs === undefined ? {} : { expiresAt: now + draft.ttlMs }),
    nonce: randomBytes(18).toString('base64url'),
    payload: draft.payload,
  };
  const signed = JSON.stringify(envelope);
  const wire =
    signer === undefined
      ? { v: PROTOCOL_VERSION, signed }
      : { v: PROTOCOL_VERSION, signed, keyId: signer.keyId, sig: signBytes(signer, Buffer.from(signed, 'utf8')).toString('base64') };
  return { text: JSON.stringify(wire), bodySha256: sha256Hex(signed) };
}
