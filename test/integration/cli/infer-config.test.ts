import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../../src/data/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, type InferenceServer } from '../../../src/server/index.ts';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const MLP = readFileSync('test/fixtures/models/mnist-mlp.onnx');

// A real KServe server on mnist-mlp, once on a unix socket and once on TCP, both requiring a token:
// `edgevolve infer` without --url/--socket/--token finds them from the configuration the daemon would run with.
describe('edgevolve infer: the address and token from the configuration', () => {
  const token = 'the-token-from-the-config';
  let slots: ModelSlots;
  let tcp: InferenceServer;
  let unix: InferenceServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let port: number;
  let socketPath: string;
  let input: string;
  const env = { ...process.env };

  beforeAll(async () => {
    delete process.env.EDGEVOLVE_URL;
    delete process.env.EDGEVOLVE_TOKEN;
    tmp = await makeTempDir('edgevolve-infer-config-');
    slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('mnist').swap({ version: '7', createSession: () => createSession(MLP) });
    tcp = createInferenceServer({ models: slots, listen: { host: '127.0.0.1', port: 0 }, token });
    port = Number(new URL((await tcp.listen()).url!).port);
    socketPath = join(tmp.dir, 'api.sock');
    unix = createInferenceServer({ models: slots, listen: { socketPath }, token });
    await unix.listen();
    const all = await readNpy('test/fixtures/data/mnist-test/input.npy');
    input = join(tmp.dir, 'one.npy');
    await writeNpy(input, { dtype: 'float32', shape: [1, 1, 28, 28], data: (all.data as Float32Array).slice(0, 784) });
  });
  afterAll(async () => {
    process.env = env;
    await tcp.close();
    await unix.close();
    await slots.close();
    await tmp.cleanup();
  });

  const config = async (name: string, text: string): Promise<string> => {
    const file = join(tmp.dir, name);
    await writeFile(file, text);
    return file;
  };

  it('uses server.socketPath and server.token', async () => {
    const file = await config('socket.yaml', `server:\n  socketPath: ${socketPath}\n  token: ${token}\n`);
    const r = await edgevolve('infer', 'mnist', '--input', input, '--config', file, '--top', '1');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('model mnist version 7 (answered by local)');
    expect(r.stdout).toMatch(/row 0: 0 \(/);
  });

  it('uses host and port, reaching a daemon that listens on every address over loopback', async () => {
    const file = await config('tcp.yaml', `server:\n  host: 0.0.0.0\n  port: ${port}\n  token: ${token}\n`);
    const r = await edgevolve('infer', 'mnist', '--input', input, '--config', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, version: '7' });
  });

  it('does not send the configured token to an address given with --url', async () => {
    const file = await config('tcp-url.yaml', `server:\n  port: ${port}\n  token: ${token}\n`);
    const r = await edgevolve('infer', 'mnist', '--input', input, '--config', file, '--url', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_INFER_REMOTE: HTTP 401/);
  });

  it('names the configuration problem when the file is invalid', async () => {
    const file = await config('bad.yaml', 'server:\n  port: eighty\n');
    const r = await edgevolve('infer', 'mnist', '--input', input, '--config', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/E_CONFIG_INVALID: invalid configuration in .*bad\.yaml:\n {2}server\.port:/);
  });
});
