import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../../src/data/index.ts';
import { DataType, type TensorValue } from '../../../src/onnx/index.ts';
import { createSession, type Session } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer, type InferenceServerOptions } from '../../../src/server/index.ts';
import { gatherModelBytes } from '../../helpers/onnx-builders.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { SERVER_TRANSPORTS } from '../../helpers/server-transports.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = readFileSync(`${ROOT}test/fixtures/models/mnist-mlp.onnx`);
const CNN = readFileSync(`${ROOT}test/fixtures/models/mnist-cnn.onnx`);

const GATHER = gatherModelBytes();

const BINARY_HEADER = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 } }] });

let images: Float32Array;
beforeAll(async () => {
  images = (await readNpy(`${ROOT}test/fixtures/data/mnist-test/input.npy`)).data as Float32Array;
});

function image(i: number, count = 1): { dataType: number; dims: number[]; data: Float32Array } {
  return { dataType: DataType.FLOAT, dims: [count, 1, 28, 28], data: images.subarray(i * 784, (i + count) * 784) };
}

async function start(options: Partial<InferenceServerOptions> & { models: ModelSlots }): Promise<{ server: InferenceServer; url: string }> {
  const server = createInferenceServer({ listen: { port: 0 }, ...options });
  const address = await server.listen();
  return { server, url: address.url ?? '' };
}

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: { error?: string; code?: string }; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.text();
  return { status: response.status, json: JSON.parse(text) as { error?: string; code?: string }, headers: response.headers };
}

/** Waits (without a time bound of its own) until the condition holds; the test timeout catches a hang. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

/** Holds every run of a real session at a gate: a model that is slow on purpose, so requests pile up deterministically (fault injection). */
function gated(session: Session): { session: Session; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return {
    session: { inputs: session.inputs, outputs: session.outputs, run: async (f, n) => (await gate, session.run(f, n)), release: () => session.release() },
    open,
  };
}

describe.each(SERVER_TRANSPORTS)('inference server: results (%s transport)', (transport) => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let url: string;
  let reference: Session;
  let client: KserveClient;
  beforeAll(async () => {
    slots = new ModelSlots({ warmupRuns: 1 });
    await slots.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) });
    ({ server, url } = await start({ transport, models: slots }));
    reference = await createSession(MLP);
    client = new KserveClient({ url });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
    await slots.close();
    await reference.release();
  });

  it('binary-data requests and responses carry the same logits as an in-process session, and JSON agrees', async () => {
    const batch = image(10, 8);
    const expected = (await reference.run({ input: batch })).logits!;
    const binary = await client.infer('mnist', { input: batch }, { binary: true, id: 'b1' });
    const json = await client.infer('mnist', { input: batch }, { binary: false });
    expect(binary).toMatchObject({ modelName: 'mnist', modelVersion: '1', id: 'b1', parameters: { answered_by: 'local' } });
    expect(binary.outputs.logits).toEqual(expected);
    expect(json.outputs.logits).toEqual(expected);
  });

  it('answers a binary response with Inference-Header-Content-Length and octet-stream', async () => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 784 * 4 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
    const response = await fetch(`${url}/v2/models/mnist/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(header.length) },
      body: Buffer.concat([header, Buffer.from(image(3).data.slice().buffer)]),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    const length = Number(response.headers.get('inference-header-content-length'));
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(length + 40);
    const logits = new Float32Array(body.buffer.slice(body.byteOffset + length, body.byteOffset + length + 40));
    expect(logits).toEqual((await reference.run({ input: image(3) })).logits!.data);
  });

  it('serves GET /v2, live, ready, model ready, a versioned metadata URL, and /metrics after traffic', async () => {
    expect(await (await fetch(`${url}/v2`)).json()).toMatchObject({ name: 'edgevolve', extensions: ['binary_tensor_data'] });
    expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/mnist/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/mnist/versions/1`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/mnist/versions/1/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^edgevolve_model_info\{model="mnist",version="1",variant=""\} 1$/m);
    expect(metrics).toMatch(/^edgevolve_inferences_total\{model="mnist"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^edgevolve_inference_duration_seconds_bucket\{model="mnist",le="\+Inf"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^edgevolve_http_responses_total\{route="\/v2\/models\/:name\/infer",code="200"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^edgevolve_queue_depth\{model="mnist"\} 0$/m);
  });

  it.each([
    ['a body that is not JSON', '/v2/models/mnist/infer', '{"inputs":', {}, 400, /not valid JSON/],
    ['an unknown input name', '/v2/models/mnist/infer', JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 784], datatype: 'FP32', data: new Array(784).fill(0) }] }), {}, 400, /no input 'pixels'/],
    ['the wrong datatype', '/v2/models/mnist/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP64', data: new Array(784).fill(0) }] }), {}, 400, /input 'input' is FLOAT, the request sends DOUBLE/],
    ['a wrong fixed dimension', '/v2/models/mnist/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 14, 56], datatype: 'FP32', data: new Array(784).fill(0) }] }), {}, 400, /dimension 2 must be 28/],
    ['an element count that disagrees with the shape', '/v2/models/mnist/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2] }] }), {}, 400, /"data" has 2 elements, the shape needs 784/],
    ['an unknown output', '/v2/models/mnist/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }], outputs: [{ name: 'probs' }] }), {}, 400, /no output 'probs'/],
    ['binary sizes that do not add up', '/v2/models/mnist/infer', `${BINARY_HEADER}xyz`, { 'inference-header-content-length': String(BINARY_HEADER.length) }, 400, /binary_data_size 3136 runs past the end of the body \(3 bytes left\)/],
    ['a non-numeric header length', '/v2/models/mnist/infer', '{}', { 'inference-header-content-length': 'ten' }, 400, /must be a non-negative integer, got "ten"/],
    ['an unknown model', '/v2/models/resnet/infer', '{}', {}, 404, /model 'resnet' is not served here \(models: mnist\)/],
    ['a version that is not served', '/v2/models/mnist/versions/7/infer', JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0) }] }), {}, 404, /version 7 is not loaded \(serving 1\)/],
    ['an unknown endpoint', '/v2/models/mnist/explain', '{}', {}, 404, /no endpoint/],
    ['POST to a GET endpoint', '/v2/health/ready', '{}', {}, 405, /POST is not supported here/],
  ])('refuses %s with %s naming the problem in KServe error JSON', async (_label, path, body, headers, status, message) => {
    const response = await post(`${url}${path}`, body, headers);
    expect(response.status).toBe(status);
    expect(response.json.error).toMatch(message);
  });

  it('a GET to the infer endpoint is 405', async () => {
    expect((await fetch(`${url}/v2/models/mnist/infer`)).status).toBe(405);
  });
});

describe.each(SERVER_TRANSPORTS)('inference server: limits, failures, transports (%s transport)', (transport) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function serve(options: Partial<InferenceServerOptions>, load: (slots: ModelSlots) => Promise<void>): Promise<{ server: InferenceServer; url: string; slots: ModelSlots }> {
    const slots = new ModelSlots({ warmupRuns: 0 });
    await load(slots);
    const started = await start({ transport, ...options, models: slots });
    cleanups.push(async () => {
      await started.server.close(1000);
      await slots.close();
    });
    return { ...started, slots };
  }

  it('refuses a body over maxBodyBytes with 413, by Content-Length and while streaming', async () => {
    const { url } = await serve({ limits: { maxBodyBytes: 1000 } }, (s) => s.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) }).then(() => undefined));
    const big = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) }] });
    const declared = await post(`${url}/v2/models/mnist/infer`, big);
    expect(declared.status).toBe(413);
    expect(declared.json).toMatchObject({ code: 'E_SERVER_BODY_TOO_LARGE' });
    // Chunked: no Content-Length, so the limit must hold while the body streams in.
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/v2/models/mnist/infer`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write(big.slice(i * 100, (i + 1) * 100));
      req.end();
    });
    expect(streamed).toBe(413);
  });

  it('answers 429 with Retry-After when the queue is full, then serves the queued requests', async () => {
    const held = gated(await createSession(MLP));
    const { url, server } = await serve({ limits: { concurrencyPerModel: 1, maxQueuedRequests: 1, retryAfterSeconds: 2 } }, async (s) => {
      await s.add('mnist').swap({ version: '1', createSession: () => Promise.resolve(held.session) });
    });
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(image(0).data) }] });
    const first = post(`${url}/v2/models/mnist/infer`, body);
    await until(() => /edgevolve_inflight_inferences\{model="mnist"\} 1/.test(server.metricsText()));
    const second = post(`${url}/v2/models/mnist/infer`, body);
    await until(() => /edgevolve_queue_depth\{model="mnist"\} 1/.test(server.metricsText()));
    const third = await post(`${url}/v2/models/mnist/infer`, body);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('2');
    expect(third.json.code).toBe('E_SERVER_QUEUE_FULL');
    held.open();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(server.metricsText()).toMatch(/edgevolve_queue_rejected_total\{model="mnist"\} 1/);
  });

  it('answers 503 for a request still queued at its deadline and 504 for one still running', async () => {
    const held = gated(await createSession(MLP));
    const { url } = await serve({ limits: { concurrencyPerModel: 1, maxQueuedRequests: 4, requestTimeoutMs: 300 } }, async (s) => {
      await s.add('mnist').swap({ version: '1', createSession: () => Promise.resolve(held.session) });
    });
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(image(0).data) }] });
    const [running, queued] = await Promise.all([post(`${url}/v2/models/mnist/infer`, body), post(`${url}/v2/models/mnist/infer`, body)]);
    expect(running.status).toBe(504);
    expect(queued.status).toBe(503);
    expect(queued.json.error).toMatch(/still waiting in the queue/);
    held.open();
    // The model frees its permit when the held run ends; the server serves again.
    const after = await post(`${url}/v2/models/mnist/infer`, body);
    expect(after.status).toBe(200);
  });

  it('answers 500 with the error when a model fails, counts it, and keeps serving that model and the others', async () => {
    const { url, server } = await serve({}, async (s) => {
      await s.add('gather').swap({ version: '1', createSession: () => createSession(GATHER) });
      await s.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) });
    });
    const bad = await post(`${url}/v2/models/gather/infer`, JSON.stringify({ inputs: [{ name: 'i', shape: [1], datatype: 'INT64', data: [100] }] }));
    expect(bad.status).toBe(500);
    expect(bad.json.code).toBe('E_RUNTIME_RUN');
    expect(bad.json.error).toMatch(/onnxruntime failed to run the model/);
    const good = await fetch(`${url}/v2/models/gather/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'i', shape: [2], datatype: 'INT64', data: [2, 0] }] }) });
    expect(((await good.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([30, 10]);
    expect((await post(`${url}/v2/models/mnist/infer`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(image(0).data) }] }))).status).toBe(200);
    const metrics = server.metricsText();
    expect(metrics).toMatch(/edgevolve_model_failures_total\{model="gather"\} 1/);
    expect(metrics).toMatch(/edgevolve_inference_errors_total\{model="gather"\} 1/);
  });

  it('is not ready until every configured model is loaded, and a model without a version answers 503', async () => {
    const { url, slots } = await serve({}, async (s) => {
      await s.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) });
      s.add('later');
    });
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(503);
    expect((await fetch(`${url}/v2/models/later/ready`)).status).toBe(503);
    expect((await post(`${url}/v2/models/later/infer`, '{"inputs":[{"name":"i","shape":[1],"datatype":"INT64","data":[0]}]}')).status).toBe(503);
    await slots.get('later')!.swap({ version: '1', createSession: () => createSession(GATHER) });
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
  });

  it('requires the bearer token on everything but health, compared in full', async () => {
    const token = 'correct-horse-battery-staple';
    const { url } = await serve({ token }, (s) => s.add('gather').swap({ version: '1', createSession: () => createSession(GATHER) }).then(() => undefined));
    const body = JSON.stringify({ inputs: [{ name: 'i', shape: [1], datatype: 'INT64', data: [1] }] });
    const none = await post(`${url}/v2/models/gather/infer`, body);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(`${url}/v2/models/gather/infer`, body, { authorization: `Bearer ${token.slice(0, -1)}` })).status).toBe(401);
    expect((await post(`${url}/v2/models/gather/infer`, body, { authorization: `Basic ${token}` })).status).toBe(401);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await post(`${url}/v2/models/gather/infer`, body, { authorization: `Bearer ${token}` })).status).toBe(200);
    const client = new KserveClient({ url, token });
    expect((await client.infer('gather', { i: { dataType: DataType.INT64, dims: [1], data: new BigInt64Array([1n]) } })).outputs.y!.data).toEqual(new Float32Array([20]));
    await client.close();
  });

  it('serves on a unix socket: refuses one a live server holds, replaces one a killed process left, removes its own on close', async () => {
    const tmp = await makeTempDir('edgevolve-sock-');
    cleanups.push(tmp.cleanup);
    const socketPath = join(tmp.dir, 'kserve.sock');
    const slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('gather').swap({ version: '1', createSession: () => createSession(GATHER) });
    // A socket another live server holds is not taken over.
    const first = createInferenceServer({ transport, models: slots, listen: { socketPath } });
    await first.listen();
    const second = createInferenceServer({ transport, models: slots, listen: { socketPath } });
    await expect(second.listen()).rejects.toMatchObject({ code: 'E_SERVER_LISTEN' });
    await first.close();
    // A process killed with SIGKILL leaves its socket file behind: that one is replaced.
    const crashed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => crashed.stdout.once('data', resolve));
    crashed.kill('SIGKILL');
    await new Promise((resolve) => crashed.once('exit', resolve));
    expect((await stat(socketPath)).isSocket()).toBe(true);
    const server = createInferenceServer({ transport, models: slots, listen: { socketPath } });
    expect(await server.listen()).toMatchObject({ socketPath, url: undefined });
    const client = new KserveClient({ socketPath });
    const result = await client.infer('gather', { i: { dataType: DataType.INT64, dims: [2], data: new BigInt64Array([0n, 2n]) } }, { binary: true });
    expect(result.outputs.y!.data).toEqual(new Float32Array([10, 30]));
    await client.close();
    await server.close();
    await slots.close();
    await expect(stat(socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('close() stops accepting, lets the in-flight request finish with 200, then resolves', async () => {
    const held = gated(await createSession(MLP));
    const slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('mnist').swap({ version: '1', createSession: () => Promise.resolve(held.session) });
    const { server, url } = await start({ transport, models: slots });
    cleanups.push(() => slots.close());
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(image(0).data) }] });
    const inFlight = post(`${url}/v2/models/mnist/infer`, body);
    await until(() => slots.get('mnist')!.metrics().inFlight === 1);
    let closed = false;
    const closing = server.close(30_000).then(() => (closed = true));
    await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
    expect(closed).toBe(false);
    held.open();
    expect((await inFlight).status).toBe(200);
    await closing;
  });

  it('answers with parameters.answered_by "cloud" when the interceptor replaces the local answer', async () => {
    const slots = new ModelSlots({
      warmupRuns: 0,
      interceptor: {
        intercept: (req) =>
          Promise.resolve(req.requestId === 'hard' ? { outputs: { y: { dataType: DataType.FLOAT, dims: [1], data: new Float32Array([-1]) } }, answeredBy: 'cloud' as const } : undefined),
      },
    });
    await slots.add('gather').swap({ version: '1', createSession: () => createSession(GATHER) });
    const { server, url } = await start({ transport, models: slots });
    cleanups.push(async () => {
      await server.close();
      await slots.close();
    });
    const ask = async (id: string): Promise<{ parameters: { answered_by: string }; outputs: { data: number[] }[] }> =>
      (await (await fetch(`${url}/v2/models/gather/infer`, { method: 'POST', body: JSON.stringify({ id, inputs: [{ name: 'i', shape: [1], datatype: 'INT64', data: [1] }] }) })).json()) as never;
    expect(await ask('easy')).toMatchObject({ parameters: { answered_by: 'local' }, outputs: [{ data: [20] }] });
    expect(await ask('hard')).toMatchObject({ parameters: { answered_by: 'cloud' }, outputs: [{ data: [-1] }] });
  });

  it('hands binary input tensors to the model as views into the request body, aligned, not copies', async () => {
    const seen: TensorValue[] = [];
    const slots = new ModelSlots({ warmupRuns: 0, observers: [{ onInference: (e) => seen.push(e.inputs.input!) }] });
    await slots.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) });
    const { server, url } = await start({ transport, models: slots });
    const client = new KserveClient({ url });
    cleanups.push(async () => {
      await client.close();
      await server.close();
      await slots.close();
    });
    // Ids of different lengths move the binary part to every offset modulo 8.
    for (const id of ['a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg', 'abcdefgh']) await client.infer('mnist', { input: image(0) }, { binary: true, id });
    expect(seen).toHaveLength(8);
    for (const input of seen) {
      const data = input.data as Float32Array;
      expect(data).toEqual(image(0).data);
      expect(data.buffer.byteLength).toBeGreaterThan(data.byteLength);
      expect(data.byteOffset % 8).toBe(0);
    }
  });

  it('the client fails with E_INFER_CLIENT when nothing listens', async () => {
    const tmp = await makeTempDir('edgevolve-nosock-');
    cleanups.push(tmp.cleanup);
    const client = new KserveClient({ socketPath: join(tmp.dir, 'none.sock') });
    cleanups.push(() => client.close());
    await expect(client.infer('m', { i: { dataType: DataType.INT64, dims: [1], data: new BigInt64Array(1) } })).rejects.toMatchObject({ code: 'E_INFER_CLIENT' });
  });

  it('a swap under continuous concurrent load fails no request and responses switch version', async () => {
    const { url, slots } = await serve({ limits: { concurrencyPerModel: 4, maxQueuedRequests: 64 } }, (s) => s.add('mnist').swap({ version: '1', createSession: () => createSession(MLP) }).then(() => undefined));
    const [mlp, cnn] = await Promise.all([createSession(MLP), createSession(CNN)]);
    cleanups.push(async () => {
      await mlp.release();
      await cnn.release();
    });
    const expected = { '1': (await mlp.run({ input: image(0, 4) })).logits!.data, '2': (await cnn.run({ input: image(0, 4) })).logits!.data };
    const client = new KserveClient({ url, connections: 8 });
    cleanups.push(() => client.close());
    let swapped = false;
    let afterSwap = 0;
    const seen: Record<string, number> = {};
    const failures: string[] = [];
    const worker = async (w: number): Promise<void> => {
      // Each worker keeps going until it has seen enough answers from after the switch.
      while (afterSwap < 40) {
        const startedAfterSwap = swapped;
        try {
          const r = await client.infer('mnist', { input: image(0, 4) }, { binary: w % 2 === 0 });
          const version = r.modelVersion ?? '?';
          seen[version] = (seen[version] ?? 0) + 1;
          if (startedAfterSwap) {
            afterSwap++;
            if (version !== '2') failures.push(`request started after the swap answered by ${version}`);
          }
          if (version !== '1' && version !== '2') failures.push(`unknown version ${version}`);
          else if (!r.outputs.logits!.data.every((v, i) => v === expected[version][i])) failures.push(`version ${version} returned other logits`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await until(() => (seen['1'] ?? 0) >= 40);
    const swap = await slots.get('mnist')!.swap({ version: '2', variant: 'cnn', createSession: () => createSession(CNN) });
    swapped = true;
    await Promise.all(workers);
    await swap.previousDrained;
    expect(failures).toEqual([]);
    expect(seen['1']).toBeGreaterThanOrEqual(40);
    expect(seen['2']).toBeGreaterThanOrEqual(40);
    expect(slots.get('mnist')!.metrics()).toMatchObject({ version: '2', swaps: 2, failedSwaps: 0, total: { errors: 0 } });
  });
});
