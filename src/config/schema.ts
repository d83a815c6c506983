import { z } from 'zod';
import { onnxLimitsSchema } from '../onnx/limits-schema.ts';

export { onnxLimitsSchema, DEFAULT_ONNX_LIMITS, type OnnxLimits } from '../onnx/limits-schema.ts';

/**
 * The configuration schema: one source for the types, the defaults (units in the
 * key names or descriptions) and `config/schema.json`. Later issues extend it
 * section by section (registry, mqtt, server, budgets...).
 */

/** registry/: how to reach registries and what to trust (README "Registry and store"). */
export const registryConfigSchema = z
  .object({
    auth: z
      .record(z.string(), z.object({ username: z.string(), password: z.string() }).strict())
      .default({})
      .describe('Credentials per registry host[:port] (basic auth, or the basic credentials a bearer token service asks for).'),
    plainHttp: z.array(z.string()).default([]).describe('Registry hosts spoken to over http:// (loopback test registries only).'),
    caFile: z.string().optional().describe('PEM CA bundle trusted for registry TLS instead of the system roots.'),
    certFile: z.string().optional().describe('PEM client certificate for mTLS to the registry.'),
    keyFile: z.string().optional().describe('PEM private key of certFile.'),
    maxManifestBytes: z.number().int().positive().default(4 * 1024 * 1024).describe('Largest manifest or index accepted, in bytes.'),
    maxBlobBytes: z.number().int().positive().default(16 * 1024 ** 3).describe('Largest blob (model layer) accepted, in bytes.'),
    concurrency: z.number().int().positive().max(64).default(4).describe('Concurrent blob transfers per registry repository.'),
    retryAttempts: z.number().int().positive().max(20).default(5).describe('Attempts per request or blob download (resumed each time).'),
    preferPrecisions: z.array(z.string()).optional().describe('Precisions this device runs best, best first; default by CPU architecture.'),
    trust: z
      .object({
        requireSignature: z.boolean().default(false).describe('Refuse artifacts without a cosign signature from one of publicKeys.'),
        publicKeys: z.array(z.string()).default([]).describe('Paths of PEM ECDSA P-256 public keys (cosign.pub) pinned for verification.'),
        allowSignedDowngrade: z.boolean().default(false).describe('Accept an older version when it is signed and annotated dev.edgevolve.downgrade=true.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** store/: the local blob store and state database under stateDir. */
export const storeConfigSchema = z
  .object({
    maxBytes: z.number().int().positive().optional().describe('Cap on the blob store size, in bytes (downloads over it are refused).'),
    reserveBytes: z.number().int().nonnegative().default(64 * 1024 * 1024).describe('Free space a download must leave on the filesystem, in bytes.'),
    keepPrevious: z.number().int().nonnegative().default(2).describe('Previous versions of each model kept for rollback.'),
  })
  .strict();

export const configSchema = z
  .object({
    stateDir: z.string().min(1).default('/var/lib/edgevolve').describe('Directory for the database, blobs and models.'),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    onnx: z
      .object({ limits: onnxLimitsSchema.prefault({}) })
      .strict()
      .prefault({}),
    registry: registryConfigSchema.prefault({}),
    store: storeConfigSchema.prefault({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
