/** Server options from the validated `server` config section, for the composition root. */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { serverConfigSchema } from '../config/schema.ts';
import type { ModelSlots } from '../runtime/serving/index.ts';
import type { InferenceServerOptions } from './server.ts';

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export function inferenceServerOptions(config: ServerConfig, models: ModelSlots, logger?: Logger, serverVersion?: string): InferenceServerOptions {
  return {
    models,
    listen: config.socketPath !== undefined ? { socketPath: config.socketPath } : { host: config.host, port: config.port },
    ...(config.token !== undefined ? { token: config.token } : {}),
    limits: {
      maxBodyBytes: config.maxBodyBytes,
      concurrencyPerModel: config.concurrencyPerModel,
      maxQueuedRequests: config.maxQueuedRequests,
      requestTimeoutMs: config.requestTimeoutMs,
      retryAfterSeconds: config.retryAfterSeconds,
    },
    busyPollMs: config.busyPollMs,
    transport: config.transport,
    ...(logger !== undefined ? { logger: logger.child({ module: 'server' }) } : {}),
    ...(serverVersion !== undefined ? { serverVersion } : {}),
  };
}
