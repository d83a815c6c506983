import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { KserveClient } from '../../../src/server/client.ts';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

// A real undici connection to a socket path nobody listens on: the error the operator reads.
describe('KserveClient, server unreachable', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-client-');
  });
  afterEach(() => tmp.cleanup());

  it('over a unix socket names the socket path and the request, not the placeholder http://localhost', async () => {
    const socketPath = join(tmp.dir, 'missing.sock');
    const client = new KserveClient({ socketPath });
    try {
      const err: unknown = await client.getJson('/v2/models/mnist').catch((e: unknown) => e);
      if (!isEdgevolveError(err, 'E_INFER_CLIENT')) throw new Error('expected E_INFER_CLIENT', { cause: err });
      expect(err.message.startsWith(`cannot reach the inference server on the unix socket ${socketPath} (GET /v2/models/mnist): `), err.message).toBe(true);
      expect(err.message).not.toContain('http://localhost');
      expect(err.context).toMatchObject({ socketPath, path: '/v2/models/mnist' });
    } finally {
      await client.close();
    }
  });

  it('over TCP names the URL', async () => {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    const client = new KserveClient({ url: 'http://127.0.0.1:9' });
    try {
      const err: unknown = await client.getJson('/v2/health/ready').catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^cannot reach the inference server at http:\/\/127\.0\.0\.1:9\/v2\/health\/ready: /);
    } finally {
      await client.close();
    }
  });

  it('edgevolve infer --socket prints the socket path first', async () => {
    const socketPath = join(tmp.dir, 'missing.sock');
    const r = await edgevolve('infer', 'mnist', '--input', 'test/fixtures/data/mnist-test/input.npy', '--socket', socketPath);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`cannot reach the inference server on the unix socket ${socketPath}`);
  });
});
