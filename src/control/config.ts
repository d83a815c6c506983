/**
 * The `control` section of the configuration and the settings the channel runs with.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { ControlSettings } from './channel.ts';
import { COMMAND_TYPES, type CommandType } from './schemas.ts';

const timeoutSeconds = z.number().positive().max(7 * 86_400);

/** Handler timeouts by type, seconds; long for the types that download or compress models. */
export const DEFAULT_TIMEOUT_SECONDS: Readonly<Record<CommandType, number>> = {
  deploy: 1800,
  rollback: 300,
  'set-budgets': 60,
  profile: 300,
  optimize: 3600,
  'collect-samples': 600,
  config: 60,
  ping: 10,
};

export const controlConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Listen for fleet commands on the MQTT link.'),
    trustBrokerAcl: z
      .boolean()
      .default(false)
      .describe('Accept unsigned commands: the broker ACL is the only authorization. Only for brokers that admit nobody but the fleet operator to cmd topics.'),
    publicKeys: z
      .record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), z.string().min(1))
      .default({})
      .describe('Fleet command keys by keyId: PEM text or the path of a PEM file (Ed25519 or ECDSA P-256 public key).'),
    maxCommandBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024).describe('Largest command accepted, in bytes (checked before parsing).'),
    maxCommandAgeSeconds: z.number().int().positive().default(3600).describe('Commands issued longer ago are refused as expired (bounds replay and queued-while-offline delivery).'),
    maxClockSkewSeconds: z.number().int().nonnegative().default(300).describe('How far in the future a command\'s issuedAt may be.'),
    retentionHours: z.number().positive().default(7 * 24).describe('Finished commands (ids, nonces, results) are kept this long; must exceed maxCommandAgeSeconds + maxClockSkewSeconds.'),
    timeoutSeconds: z
      .object(Object.fromEntries(COMMAND_TYPES.map((type) => [type, timeoutSeconds.optional().describe(`Timeout of the ${type} handler, seconds (default ${DEFAULT_TIMEOUT_SECONDS[type]}).`)])) as Record<CommandType, z.ZodOptional<typeof timeoutSeconds>>)
      .strict()
      .default({})
      .describe(`Handler timeout by command type, seconds (defaults: ${Object.entries(DEFAULT_TIMEOUT_SECONDS).map(([k, v]) => `${k} ${v}`).join(', ')}).`),
    fleetWide: z.boolean().default(true).describe('Also accept commands sent to the whole fleet (edgevolve/v1/<fleet>/$all/cmd).'),
    maxRejectionsPerMinute: z.number().int().nonnegative().default(60).describe('Error results for refused commands per minute; more are counted, not answered.'),
  })
  .strict()
  .refine((c) => c.retentionHours * 3600 > c.maxCommandAgeSeconds + c.maxClockSkewSeconds, {
    message: 'retentionHours must exceed maxCommandAgeSeconds + maxClockSkewSeconds, or a replay could outlive the memory of its nonce',
    path: ['retentionHours'],
  });

export type ControlConfig = z.output<typeof controlConfigSchema>;

export function controlSettings(config: ControlConfig): ControlSettings {
  const timeoutMs = Object.fromEntries(COMMAND_TYPES.map((type) => [type, (config.timeoutSeconds[type] ?? DEFAULT_TIMEOUT_SECONDS[type]) * 1000])) as Record<CommandType, number>;
  return {
    trustBrokerAcl: config.trustBrokerAcl,
    maxCommandBytes: config.maxCommandBytes,
    maxAgeMs: config.maxCommandAgeSeconds * 1000,
    maxClockSkewMs: config.maxClockSkewSeconds * 1000,
    retentionMs: config.retentionHours * 3_600_000,
    timeoutMs,
    fleetWide: config.fleetWide,
    maxRejectionsPerMinute: config.maxRejectionsPerMinute,
  };
}

/** The command store's file: its own database, apart from telemetry and model state. */
export function controlStorePath(stateDir: string): string {
  return join(stateDir, 'control.db');
}
