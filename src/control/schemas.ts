/**
 * The command API as data: the envelope every command carries, one payload schema per
 * command type, and the ack and result a device publishes. Every document has a version
 * field `v`; a device refuses a `v` it does not know rather than guessing.
 */
import { z } from 'zod';
import { FLEET_WIDE, ID_PATTERN } from './topics.ts';

export const PROTOCOL_VERSION = 1;

const id = z.string().regex(ID_PATTERN, 'must be 1-64 characters of [A-Za-z0-9_-]');
const epochMs = z.number().int().nonnegative().max(8.64e15);
const modelName = z.string().min(1).max(128).regex(/^[A-Za-z0-9._-]+$/, 'must be [A-Za-z0-9._-]');

/** Budgets a model variant must meet on this device; units in the key names. */
export const budgetsSchema = z
  .object({
    latencyP95Ms: z.number().positive().max(3_600_000).optional(),
    memoryMb: z.number().positive().max(1_048_576).optional(),
    sizeMb: z.number().positive().max(1_048_576).optional(),
    maxAccuracyDropPct: z.number().min(0).max(100).optional(),
  })
  .strict();

export const deployPayloadSchema = z
  .object({
    ref: z.string().min(1).max(512).describe('Registry reference: host[:port]/repo:tag, host/repo@sha256:..., or oci-layout:<dir>:tag.'),
    variant: z.string().min(1).max(128).optional(),
    budgets: budgetsSchema.optional(),
    rollout: z
      .object({
        activate: z.boolean().default(true).describe('Make the pulled version active (false: only download and verify).'),
        trialSeconds: z.number().int().positive().max(86_400).optional().describe('How long the new model stays on trial before it is marked good.'),
        maxAccuracyDropPct: z.number().min(0).max(100).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const rollbackPayloadSchema = z
  .object({
    model: modelName.optional(),
    toVersion: z.string().min(1).max(64).regex(/^[0-9]+(\.[0-9]+)*$/, 'must be dot-separated numbers').optional(),
    variant: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a variant name ([a-z0-9][a-z0-9._-]{0,63})')
      .optional()
      .describe('With toVersion: the exact variant (a variant built on the device shares its parent\'s version); without it, the variant of toVersion that served last.'),
  })
  .refine((p) => p.variant === undefined || p.toVersion !== undefined, { message: 'variant needs toVersion', path: ['variant'] })
  .strict();

export const setBudgetsPayloadSchema = z.object({ model: modelName.optional(), budgets: budgetsSchema }).strict();

export const profilePayloadSchema = z.object({ refresh: z.boolean().default(false) }).strict();

export const optimizePayloadSchema = z
  .object({
    model: modelName.optional(),
    budgets: budgetsSchema.optional(),
    methods: z.array(z.enum(['int8-dynamic', 'int8-static', 'fp16', 'mixed', 'prune', 'prune-channels'])).max(8).optional(),
  })
  .strict();

export const collectSamplesPayloadSchema = z
  .object({
    count: z.number().int().positive().max(100_000),
    criterion: z.enum(['low-confidence', 'high-entropy', 'random']).default('low-confidence'),
    maxBytes: z.number().int().positive().optional(),
  })
  .strict();

/** The patch is checked by the daemon's config validator; here only its shape (an object). */
export const configPayloadSchema = z.object({ patch: z.record(z.string(), z.unknown()) }).strict();

export const pingPayloadSchema = z.object({ echo: z.string().max(256).optional() }).strict();

export const PAYLOAD_SCHEMAS = {
  deploy: deployPayloadSchema,
  rollback: rollbackPayloadSchema,
  'set-budgets': setBudgetsPayloadSchema,
  profile: profilePayloadSchema,
  optimize: optimizePayloadSchema,
  'collect-samples': collectSamplesPayloadSchema,
  config: configPayloadSchema,
  ping: pingPayloadSchema,
} as const;

export type CommandType = keyof typeof PAYLOAD_SCHEMAS;
export const COMMAND_TYPES = Object.keys(PAYLOAD_SCHEMAS) as readonly CommandType[];

/** Payload type of each command type, after defaults are applied. */
export type CommandPayloads = { [K in CommandType]: z.output<(typeof PAYLOAD_SCHEMAS)[K]> };

/**
 * Types that only read: they may run while a state-changing command runs. Every other
 * type changes the device and runs one at a time, in arrival order.
 */
export const READ_ONLY_TYPES: ReadonlySet<CommandType> = new Set<CommandType>(['ping', 'profile']);

export function isCommandType(value: unknown): value is CommandType {
  return typeof value === 'string' && Object.hasOwn(PAYLOAD_SCHEMAS, value);
}

/**
 * The signed command. It travels as the exact JSON text of the wire document's `signed`
 * field, so the signature covers those bytes and nothing needs canonicalizing.
 */
export const envelopeSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id,
    type: z.string(),
    target: z.object({ fleet: id, device: z.union([id, z.literal(FLEET_WIDE)]) }).strict(),
    issuedAt: epochMs.describe('When the sender signed it, ms since the Unix epoch.'),
    expiresAt: epochMs.optional().describe('After this instant (ms since the Unix epoch) the device refuses it.'),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'must be 16-128 characters of [A-Za-z0-9_-]'),
    payload: z.unknown(),
  })
  .strict();

export type Envelope = z.output<typeof envelopeSchema>;

/** What is published on a device's `cmd` topic. */
export const wireSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    signed: z.string().min(2),
    keyId: z.string().min(1).max(64).optional(),
    sig: z.string().max(512).regex(/^[A-Za-z0-9+/=_-]*$/, 'must be base64').optional(),
  })
  .strict();

export type WireCommand = z.output<typeof wireSchema>;

/** A command as the device stores and runs it: the envelope with its payload parsed. */
export type Command = { [K in CommandType]: Omit<Envelope, 'type' | 'payload'> & { type: K; payload: CommandPayloads[K] } }[CommandType];

export const commandStates = ['received', 'running', 'done', 'failed'] as const;
export type CommandState = (typeof commandStates)[number];

export const ackSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id,
    device: id,
    type: z.string(),
    state: z.enum(commandStates),
    duplicate: z.boolean().describe('True when this id was seen before; the command is not run again.'),
    at: epochMs,
  })
  .strict();

export type Ack = z.output<typeof ackSchema>;

export const resultStatuses = ['done', 'failed', 'rejected'] as const;
/** done: ran and succeeded; failed: ran (or was interrupted) and failed; rejected: never accepted, nothing changed. */
export type ResultStatus = (typeof resultStatuses)[number];

export const resultSchema = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    id: z.string(),
    device: id,
    type: z.string().optional(),
    status: z.enum(resultStatuses),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).strict().optional(),
    bodySha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional()
      .describe('sha256 of the signed text this answers; a sender ignores answers to bodies it did not send.'),
    duplicate: z.boolean(),
    receivedAt: epochMs.optional(),
    finishedAt: epochMs,
  })
  .strict();

export type CommandResult = z.output<typeof resultSchema>;
