import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../../src/data/index.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, type InferenceServer } from '../../../src/server/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { SERVER_TRANSPORTS } from '../../helpers/server-transports.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);

/** Runs the CLI asynchronously: the server it talks to lives in this process's event loop. */
function edgevolve(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe.each(SERVER_TRANSPORTS)('edgevolve infer (%s transport)', (transport) => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let socketServer: InferenceServer;
  let url: string;
  let socketPath: string;
  let inputFile: string;
  let expected: Float32Array;
  let cleanup: () => Promise<void>;
  const token = 'a-token-of-some-length';

  beforeAll(async () => {
    const tmp = await makeTempDir('edgevolve-infer-cli-');
    cleanup = tmp.cleanup;
    slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('mnist').swap({ version: '3', createSession: () => createSession(MLP) });
    server = createInferenceServer({ transport, models: slots, listen: { port: 0 }, token });
    url = (await server.listen()).url!;
    socketPath = join(tmp.dir, 's.sock');
    socketServer = createInferenceServer({ transport, models: slots, listen: { socketPath } });
    await socketServer.listen();
    const all = await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`);
    const two = (all.data as Float32Array).slice(0, 2 * 784);
    inputFile = join(tmp.dir, 'two.npy');
    await writeNpy(inputFile, { dtype: 'float32', shape: [2, 1, 28, 28], data: two });
    const session = await createSession(MLP);
    expected = (await session.run({ input: { dataType: 1, dims: [2, 1, 28, 28], data: two } })).logits!.data as Float32Array;
    await session.release();
  });
  afterAll(async () => {
    await server.close();
    await socketServer.close();
    await slots.close();
    await cleanup();
  });

  it('--json prints the outputs the model computes, naming the only input from the server\'s metadata', async () => {
    const r = await edgevolve(['infer', 'mnist', '--input', inputFile, '--url', url, '--token', token, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; model: string; version: string; answeredBy: string; outputs: { logits: { shape: number[]; data: number[] } } };
    expect(doc).toMatchObject({ ok: true, model: 'mnist', version: '3', answeredBy: 'local' });
    expect(doc.outputs.logits.shape).toEqual([2, 10]);
    expect(Float32Array.from(doc.outputs.logits.data)).toEqual(expected);
  });

  it('prints the top classes per row in human mode, with --binary over a unix socket and a named input', async () => {
    const r = await edgevolve(['infer', 'mnist', '--input', `input=${inputFile}`, '--socket', socketPath, '--binary', '--top', '2']);
    expect(r.status, r.stderr).toBe(0);
    const argmax = (row: number): number => {
      const scores = Array.from(expected.subarray(row * 10, row * 10 + 10));
      return scores.indexOf(Math.max(...scores));
    };
    expect(r.stdout).toContain('model mnist version 3 (answered by local)');
    expect(r.stdout).toMatch(new RegExp(`row 0: ${argmax(0)} \\(`));
    expect(r.stdout).toMatch(new RegExp(`row 1: ${argmax(1)} \\(`));
  });

  it('fails with exit 1 and the server\'s error for a missing token', async () => {
    const denied = await edgevolve(['infer', 'mnist', '--input', `input=${inputFile}`, '--url', url]);
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/E_INFER_REMOTE: HTTP 401: a bearer token is required/);
  });
});
