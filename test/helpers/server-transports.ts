import type { ServerTransport } from '../../src/server/index.ts';

/** Every HTTP transport of the inference server: the server tests run through each (as the registry's fault tests run through both readers). */
export const SERVER_TRANSPORTS: readonly ServerTransport[] = ['lean', 'node-http'];
