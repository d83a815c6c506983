/**
 * Measures the serving targets of issue 8 and prints a markdown table, with the raw
 * in-process onnxruntime baseline and the transport floors measured in the same run:
 *
 *   npx tsx scripts/bench-serve.ts [--batch auto] [--busy-poll 2] [--batch-rows 128] [--workers 1] [--threads 1] [--spinning 0|1] [--rows <regex>] [--no-pin] [--rounds 3] [--requests 300] [--rps 200] [--swap-seconds 5]
 *
 * The model is mnist-teacher (a 784-1024-512-10 MLP) at --batch, by default the smallest
 * batch whose raw p50 is at least 1 ms here. The servers run in this process; the client
 * runs in a forked child (an application is another process): a lean keep-alive undici
 * Pool per target that sends a request encoded once and decodes each answer. The paths
 * alternate round by round (a load spike then hits all of them), and each figure is the
 * median over rounds.
 *
 * Rows:
 * - raw: `session.run` in-process (same session options), back to back, no transport.
 * - transport floor: a bare `net` server answering, per request, as many bytes as the
 *   API answers to as many bytes as the client sends (bodies + HTTP headers), over TCP
 *   and over a unix socket: what any server on this machine pays to move the bytes.
 * - node:http floor: a bare node:http server that reads the same request body and answers
 *   the bytes the API answers (encoded from a real inference), without inference.
 * - lean transport floor: the same as the node:http floor through the API's lean HTTP/1.1
 *   transport (src/server/lean-transport.ts) instead of node:http.
 * - node:http + session.run: the same bare server, but it decodes the request, runs the
 *   model and encodes the answer (no routing, admission, deadlines, slots, metrics).
 * - API: the KServe server (one ModelSlots behind all of them) on TCP or a unix socket,
 *   through the node:http transport or the lean transport (`server.transport`),
 *   with `busyPollMs` 0 or --busy-poll; "pinned" rows move the server process to CPU 0
 *   and the client to CPU 1 with `taskset` for that row only (raw pinned to CPU 0);
 *   "client spins" has the client keep its own loop awake while it waits.
 * - API, worker: inference in --workers worker threads (0 skips it).
 * - API, dynamic batching: concurrent requests run as one batch of up to --batch-rows rows
 *   (`server.batchMaxRows`); the raw baseline stays 8 separate concurrent runs.
 *
 * Columns: client-observed p50/p10 of one request at concurrency 1 (against raw p50),
 * server CPU per request (this process's CPU time over the phase: servers, workers and
 * busy-poll spinning; the client is the child), requests/s with 8 in flight against raw
 * runs/s with 8 concurrent in-process `session.run` calls, and the same per server CPU
 * second. Idle: this process's CPU over the idle second after a busy-poll server's last
 * request. Swap: an open-loop load of --rps requests/s for --swap-seconds on the API; a
 * new version is swapped in at 40% of the window; every request must succeed.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { readNpy } from '../src/data/index.ts';
import { DataType, type TensorValue } from '../src/onnx/index.ts';
import { createSession, type Session, type SessionOptions } from '../src/runtime/index.ts';
import { ModelSlots, type ModelSlot } from '../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer, type ServerTransport } from '../src/server/index.ts';
import { BusyPoll } from '../src/server/busy-poll.ts';
import { LeanHttpTransport } from '../src/server/lean-transport.ts';
import { decodeInferenceRequest, decodeInferenceResponse } from '../src/server/decode.ts';
import { encodeInferenceRequest, encodeInferenceResponse, type EncodedResponse } from '../src/server/encode.ts';

const root = path.resolve(import.meta.dirname, '..');
const MODEL = path.join(root, 'test/fixtures/models/mnist-teacher.onnx');
const IMAGES = path.join(root, 'test/fixtures/data/mnist-test/input.npy');
/** Bytes of HTTP request/response head the transport floor adds to the bodies (what undici and node:http send here, rounded up). */
const HEAD_BYTES = 200;

/** Where the client reaches one path: HTTP (`url` or unix `socketPath`), or a bare byte echo. */
type Endpoint =
  | { readonly kind: 'http'; readonly url: string; readonly socketPath?: string }
  | { readonly kind: 'echo'; readonly port?: number; readonly socketPath?: string; readonly requestBytes: number; readonly responseBytes: number };

type ClientTask =
  | { type: 'latency'; target: string; n: number; binary: boolean; spin: boolean }
  | { type: 'throughput'; target: string; n: number; concurrency: number; binary: boolean }
  | { type: 'openloop'; target: string; rps: number; durationMs: number; binary: boolean; batch: number };

interface OpenLoopResult {
  sent: number;
  ok: number;
  failed: number;
  failures: string[];
  versions: Record<string, number>;
  /** Requests answered by version 1 after the first answer by version 2 (must be 0: the switch is atomic). */
  oldAfterNew: number;
  p50: number;
  p99: number;
  max: number;
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}
const median = (values: number[]): number => percentile(values, 0.5);

async function images(batch: number): Promise<TensorValue> {
  const npy = await readNpy(IMAGES);
  return { dataType: DataType.FLOAT, dims: [batch, 1, 28, 28], data: (npy.data as Float32Array).slice(0, batch * 784) };
}

// ---------------------------------------------------------------- client (forked child)

/** One request to one endpoint, everything that does not change between requests prepared once. */
type Call = () => Promise<void>;

function httpCall(endpoint: Extract<Endpoint, { kind: 'http' }>, input: TensorValue, binary: boolean): Call {
  const pool = new Pool(endpoint.url, { connections: 16, keepAliveTimeout: 60_000, ...(endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath } : {}) });
  const encoded = encodeInferenceRequest([{ name: 'input', value: input, binary }], { binaryDataOutput: binary });
  const headers: Record<string, string> = { 'content-type': binary ? 'application/octet-stream' : 'application/json' };
  if (encoded.jsonLength !== undefined) headers['inference-header-content-length'] = String(encoded.jsonLength);
  const options = { path: '/v2/models/teacher/infer', method: 'POST' as const, headers, body: encoded.body };
  return async () => {
    const response = await pool.request(options);
    const body = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${body.toString('utf8').slice(0, 200)}`);
    const length = response.headers['inference-header-content-length'];
    // What an application does with the answer: read its tensors.
    decodeInferenceResponse(body, typeof length === 'string' ? Number(length) : undefined);
  };
}

/** A connection of the byte echo: sends requestBytes, resolves when responseBytes came back. */
function echoConnection(endpoint: Extract<Endpoint, { kind: 'echo' }>): Promise<Call> {
  const request = Buffer.alloc(endpoint.requestBytes, 7);
  return new Promise((resolve, reject) => {
    const socket: Socket = endpoint.socketPath !== undefined ? connect(endpoint.socketPath) : connect(endpoint.port!, '127.0.0.1');
    socket.setNoDelay(true);
    let received = 0;
    let done: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= endpoint.responseBytes) {
        received -= endpoint.responseBytes;
        done?.();
      }
    });
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve(
        () =>
          new Promise<void>((r) => {
            done = r;
            socket.write(request);
          }),
      ),
    );
  });
}

async function clientMain(): Promise<void> {
  const endpoints = JSON.parse(process.env.BENCH_ENDPOINTS!) as Record<string, Endpoint>;
  const input = await images(Number(process.env.BENCH_BATCH));
  const calls = new Map<string, { binary: Call; json: Call }>();
  const echoes = new Map<string, Call[]>();
  for (const [target, endpoint] of Object.entries(endpoints)) {
    if (endpoint.kind === 'http') calls.set(target, { binary: httpCall(endpoint, input, true), json: httpCall(endpoint, input, false) });
    else echoes.set(target, await Promise.all(Array.from({ length: 8 }, () => echoConnection(endpoint))));
  }
  const call = (target: string, binary: boolean, lane = 0): Call => {
    const echo = echoes.get(target);
    if (echo !== undefined) return echo[lane]!;
    const c = calls.get(target)!;
    return binary ? c.binary : c.json;
  };
  // The swap check reads the model version of each answer: the full client.
  const swapClients = new Map<string, KserveClient>();
  process.on('message', (task: ClientTask) => {
    void run(task).then((result) => process.send!(result));
  });
  process.send!({ ready: true });

  async function run(task: ClientTask): Promise<unknown> {
    switch (task.type) {
      case 'latency': {
        const one = call(task.target, task.binary);
        // A latency-sensitive client keeps its own loop awake while it waits for the answer.
        const spin = new BusyPoll(task.spin ? 5 : 0);
        for (let i = 0; i < 20; i++) await one();
        const times: number[] = [];
        for (let i = 0; i < task.n; i++) {
          spin.touch();
          const t = performance.now();
          await one();
          times.push(performance.now() - t);
        }
        spin.stop();
        return { p50: median(times), p10: percentile(times, 0.1) };
      }
      case 'throughput': {
        let next = 0;
        const t = performance.now();
        await Promise.all(
          Array.from({ length: task.concurrency }, async (_, lane) => {
            const one = call(task.target, task.binary, lane);
            while (next++ < task.n) await one();
          }),
        );
        return { perSecond: task.n / ((performance.now() - t) / 1000) };
      }
      case 'openloop': {
        const endpoint = endpoints[task.target] as Extract<Endpoint, { kind: 'http' }>;
        let client = swapClients.get(task.target);
        if (client === undefined) swapClients.set(task.target, (client = new KserveClient({ url: endpoint.url, connections: 16 })));
        const result: OpenLoopResult = { sent: 0, ok: 0, failed: 0, failures: [], versions: {}, oldAfterNew: 0, p50: 0, p99: 0, max: 0 };
        const latencies: number[] = [];
        const pending: Promise<void>[] = [];
        let sawNew = false;
        const interval = 1000 / task.rps;
        const swapInput = await images(task.batch);
        const start = performance.now();
        for (let i = 0; start + i * interval < start + task.durationMs; i++) {
          const due = start + i * interval;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          // Open loop: send on schedule whether or not earlier requests have answered.
          const sentAt = performance.now();
          result.sent++;
          pending.push(
            client.infer('teacher', { input: swapInput }, { binary: task.binary }).then(
              (r) => {
                latencies.push(performance.now() - sentAt);
                result.ok++;
                const v = r.modelVersion ?? '?';
                result.versions[v] = (result.versions[v] ?? 0) + 1;
                if (v === '2') sawNew = true;
                else if (sawNew) result.oldAfterNew++;
              },
              (err: unknown) => {
                result.failed++;
                if (result.failures.length < 5) result.failures.push(err instanceof Error ? err.message : String(err));
              },
            ),
          );
        }
        await Promise.all(pending);
        result.p50 = percentile(latencies, 0.5);
        result.p99 = percentile(latencies, 0.99);
        result.max = Math.max(...latencies);
        return result;
      }
    }
  }
}

// ---------------------------------------------------------------- servers and baseline (this process)

async function rawLatency(session: Session, feeds: Record<string, TensorValue>, n: number): Promise<{ p50: number; p10: number }> {
  for (let i = 0; i < 20; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  return { p50: median(times), p10: percentile(times, 0.1) };
}

/** CPU time (user + system) this process spends in `work`, in milliseconds: what the servers do, whatever the machine's load. */
async function cpuMs<T>(work: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const before = process.cpuUsage();
  const value = await work();
  const used = process.cpuUsage(before);
  return { value, cpu: (used.user + used.system) / 1000 };
}

async function rawThroughput(session: Session, feeds: Record<string, TensorValue>, n: number, concurrency: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await session.run(feeds);
    }),
  );
  return n / ((performance.now() - t) / 1000);
}

/** The transport floor: answers `responseBytes` for every `requestBytes` received, nothing else. */
async function startEcho(requestBytes: number, responseBytes: number, busyPollMs: number, socketPath?: string): Promise<{ server: NetServer; endpoint: Endpoint; poll: BusyPoll }> {
  const response = Buffer.alloc(responseBytes, 9);
  const poll = new BusyPoll(busyPollMs);
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      while (received >= requestBytes) {
        received -= requestBytes;
        socket.write(response);
        poll.touch();
      }
    });
    socket.on('error', () => undefined);
  });
  if (socketPath !== undefined) {
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return { server, poll, endpoint: { kind: 'echo', socketPath, requestBytes, responseBytes } };
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, poll, endpoint: { kind: 'echo', port: (server.address() as AddressInfo).port, requestBytes, responseBytes } };
}

/**
 * The node:http floor: reading the whole body (gathered as the API gathers it) and
 * answering the API's own response bytes with the API's headers; no decoding, no
 * inference. With `infer`, the body is decoded, run and the answer encoded instead.
 */
async function startFloor(
  responses: { binary: EncodedResponse; json: EncodedResponse },
  infer?: (body: Buffer, jsonLength: number | undefined, binary: boolean) => Promise<EncodedResponse>,
  listen: { busyPollMs: number; socketPath?: string } = { busyPollMs: 0 },
): Promise<{ server: Server; endpoint: Endpoint; poll: BusyPoll }> {
  const poll = new BusyPoll(listen.busyPollMs);
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const binary = req.headers['inference-header-content-length'] !== undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => void answer());
    const answer = async (): Promise<void> => {
      const jsonLength = binary ? Number(req.headers['inference-header-content-length']) : undefined;
      // The API gathers a binary body into one buffer, aligned so the tensors are viewed in place: the same copy.
      const pad = jsonLength === undefined ? 0 : (8 - (jsonLength % 8)) % 8;
      const body = Buffer.from(new ArrayBuffer(size + pad), pad, size);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      const response = infer !== undefined ? await infer(body, jsonLength, binary) : binary ? responses.binary : responses.json;
      const headers: Record<string, string> = { 'content-type': binary ? 'application/octet-stream' : 'application/json', 'content-length': String(response.body.length) };
      if (response.jsonLength !== undefined) headers['inference-header-content-length'] = String(response.jsonLength);
      res.writeHead(200, headers);
      res.end(response.body);
      poll.touch();
    };
  });
  if (listen.socketPath !== undefined) {
    await new Promise<void>((resolve) => server.listen(listen.socketPath, resolve));
    return { server, poll, endpoint: { kind: 'http', url: 'http://localhost', socketPath: listen.socketPath } };
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, poll, endpoint: { kind: 'http', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } };
}

/** The lean transport floor: the same as the node:http floor (body read into one aligned buffer, the API's answer bytes), through the API's lean transport. */
async function startLeanFloor(responses: { binary: EncodedResponse; json: EncodedResponse }): Promise<{ server: Server; endpoint: Endpoint; transport: LeanHttpTransport }> {
  const server = createServer({ keepAliveTimeout: 65_000 });
  const nodeConnection = server.listeners('connection')[0] as (socket: Socket) => void;
  server.removeListener('connection', nodeConnection);
  const transport = new LeanHttpTransport(
    (req, res) => {
      const jsonLength = req.inferenceHeaderLength !== undefined ? Number(req.inferenceHeaderLength) : undefined;
      void req.body(Number.MAX_SAFE_INTEGER, jsonLength).then(() => {
        const response = jsonLength !== undefined ? responses.binary : responses.json;
        const headers: Record<string, string> = { 'content-type': jsonLength !== undefined ? 'application/octet-stream' : 'application/json' };
        if (response.jsonLength !== undefined) headers['inference-header-content-length'] = String(response.jsonLength);
        res.send(200, headers, response.body);
      });
    },
    { started: () => undefined, finished: () => undefined },
    { maxBodyBytes: 64 * 1024 * 1024, headersTimeoutMs: 60_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 65_000 },
    (socket) => nodeConnection.call(server, socket),
  );
  server.on('connection', (socket: Socket) => transport.accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, transport, endpoint: { kind: 'http', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } };
}

async function startSlots(bytes: Uint8Array, session: SessionOptions, batchRows = 0): Promise<{ slots: ModelSlots; slot: ModelSlot }> {
  const slots = new ModelSlots({ warmupRuns: 3, ...(batchRows > 1 ? { batching: { maxRows: batchRows, maxInFlight: Math.max(1, session.workers ?? 0) } } : {}) });
  const slot = slots.add('teacher');
  await slot.swap({ version: '1', createSession: async () => timed(await createSession(bytes, session)) });
  return { slots, slot };
}

async function startApi(slots: ModelSlots, busyPollMs: number, socketPath?: string, concurrencyPerModel = 8, transport: ServerTransport = 'node-http'): Promise<{ server: InferenceServer; endpoint: Endpoint }> {
  const server = createInferenceServer({
    models: slots,
    listen: socketPath !== undefined ? { socketPath } : { port: 0 },
    limits: { concurrencyPerModel, maxQueuedRequests: 1024 },
    busyPollMs,
    transport,
  });
  const { url } = await server.listen();
  return { server, endpoint: { kind: 'http', url: url ?? 'http://localhost', ...(socketPath !== undefined ? { socketPath } : {}) } };
}

/** Run times of `session.run` inside the servers, cleared per latency phase: how long the model itself takes when served. */
const servedRunMs: number[] = [];
function timed(session: Session): Session {
  return {
    inputs: session.inputs,
    outputs: session.outputs,
    run: async (feeds, outputNames) => {
      const t = performance.now();
      const result = await session.run(feeds, outputNames);
      servedRunMs.push(performance.now() - t);
      return result;
    },
    release: () => session.release(),
  };
}

function ask<T>(child: ChildProcess, task: ClientTask): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(task);
  });
}

/** Moves every thread of a process to `cpus` (taskset syntax). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      threads: { type: 'string', default: '1' },
      spinning: { type: 'string', default: 'default' },
      batch: { type: 'string', default: 'auto' },
      'busy-poll': { type: 'string', default: '2' },
      'batch-rows': { type: 'string', default: '128' },
      workers: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      requests: { type: 'string', default: '300' },
      rps: { type: 'string', default: '200' },
      'swap-seconds': { type: 'string', default: '5' },
      'swap-batch': { type: 'string', default: '1' },
      'no-pin': { type: 'boolean', default: false },
      rows: { type: 'string' },
    },
  });
  const threads = Number(args.threads);
  const sessionOptions: SessionOptions = { threads, ...(args.spinning === 'default' ? {} : { intraOpSpinning: args.spinning === '1' }) };
  const busyPollMs = Number(args['busy-poll']);
  const batchRows = Number(args['batch-rows']);
  const workers = Number(args.workers);
  const rounds = Number(args.rounds);
  const requests = Number(args.requests);
  const rps = Number(args.rps);
  const swapMs = Number(args['swap-seconds']) * 1000;
  const swapBatch = Number(args['swap-batch']);
  const cpus = (() => {
    try {
      return execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' }).split(':').at(-1)!.trim();
    } catch {
      return undefined;
    }
  })();
  const pinning = !args['no-pin'] && cpus !== undefined && cpus !== '0';
  const bytes = readFileSync(MODEL);
  const raw = await createSession(bytes, sessionOptions);

  // The smallest batch whose raw p50 reaches 1 ms on this machine, unless --batch says.
  let batch = 1;
  let feeds: Record<string, TensorValue> = { input: await images(1) };
  for (const b of args.batch === 'auto' ? [1, 2, 4, 6, 8, 12, 16, 24, 32] : [Number(args.batch)]) {
    batch = b;
    feeds = { input: await images(b) };
    if ((await rawLatency(raw, feeds, 100)).p50 >= 1) break;
  }
  process.stderr.write(`mnist-teacher at batch ${batch}, ${threads} intra-op thread(s), busy-poll ${busyPollMs} ms, ${workers} inference worker(s)\n`);

  const outputs = await raw.run(feeds);
  const answer = (binary: boolean): EncodedResponse =>
    encodeInferenceResponse(
      { modelName: 'teacher', modelVersion: '1', id: undefined, parameters: { answered_by: 'local' } },
      Object.entries(outputs).map(([name, value]) => ({ name, value, binary })),
    );
  const requestBytes = encodeInferenceRequest([{ name: 'input', value: feeds.input!, binary: true }], { binaryDataOutput: true }).body.length + HEAD_BYTES;
  const responseBytes = answer(true).body.length + HEAD_BYTES;
  const socketDir = path.join(tmpdir(), `bench-serve-${process.pid}`);
  execFileSync('mkdir', ['-p', socketDir]);
  const echoTcp = await startEcho(requestBytes, responseBytes, 0);
  const echoUnix = await startEcho(requestBytes, responseBytes, 0, path.join(socketDir, 'echo.sock'));
  const echoPollUnix = await startEcho(requestBytes, responseBytes, busyPollMs, path.join(socketDir, 'echo-poll.sock'));
  const floor = await startFloor({ binary: answer(true), json: answer(false) });
  const leanFloor = await startLeanFloor({ binary: answer(true), json: answer(false) });
  const floorPollUnix = await startFloor({ binary: answer(true), json: answer(false) }, undefined, { busyPollMs, socketPath: path.join(socketDir, 'floor-poll.sock') });
  const timedRaw = timed(raw);
  const bare = await startFloor({ binary: answer(true), json: answer(false) }, async (body, jsonLength, binary) => {
    const request = decodeInferenceRequest(body, jsonLength);
    const result = await timedRaw.run(request.feeds);
    return encodeInferenceResponse(
      { modelName: 'teacher', modelVersion: '1', id: undefined, parameters: { answered_by: 'local' } },
      Object.entries(result).map(([name, value]) => ({ name, value, binary })),
    );
  });
  const inProcess = await startSlots(bytes, sessionOptions);
  const api = await startApi(inProcess.slots, 0);
  const apiUnix = await startApi(inProcess.slots, 0, path.join(socketDir, 'api.sock'));
  const apiPoll = await startApi(inProcess.slots, busyPollMs);
  const apiPollUnix = await startApi(inProcess.slots, busyPollMs, path.join(socketDir, 'api-poll.sock'));
  const lean = await startApi(inProcess.slots, 0, undefined, 8, 'lean');
  const leanUnix = await startApi(inProcess.slots, 0, path.join(socketDir, 'lean.sock'), 8, 'lean');
  const batchedSlots = await startSlots(bytes, sessionOptions, batchRows);
  const batched = await startApi(batchedSlots.slots, 0);
  const leanBatched = await startApi(batchedSlots.slots, 0, undefined, 8, 'lean');
  const leanBatchedUnix = await startApi(batchedSlots.slots, 0, path.join(socketDir, 'lean-batched.sock'), 8, 'lean');
  // The default server.concurrencyPerModel (4): a batch holds only admitted requests.
  const batchedC4 = await startApi(batchedSlots.slots, 0, undefined, 4);
  const workerSlots = workers > 0 ? await startSlots(bytes, { ...sessionOptions, workers }) : undefined;
  const worker = workerSlots !== undefined ? await startApi(workerSlots.slots, 0) : undefined;
  const workerBatchedSlots = workers > 0 ? await startSlots(bytes, { ...sessionOptions, workers }, batchRows) : undefined;
  const workerBatched = workerBatchedSlots !== undefined ? await startApi(workerBatchedSlots.slots, 0) : undefined;
  const endpoints: Record<string, Endpoint> = {
    'echo-tcp': echoTcp.endpoint,
    'echo-unix': echoUnix.endpoint,
    'echo-poll-unix': echoPollUnix.endpoint,
    floor: floor.endpoint,
    'lean-floor': leanFloor.endpoint,
    'floor-poll-unix': floorPollUnix.endpoint,
    bare: bare.endpoint,
    api: api.endpoint,
    'api-unix': apiUnix.endpoint,
    'api-poll': apiPoll.endpoint,
    'api-poll-unix': apiPollUnix.endpoint,
    lean: lean.endpoint,
    'lean-unix': leanUnix.endpoint,
    'lean-batched': leanBatched.endpoint,
    'lean-batched-unix': leanBatchedUnix.endpoint,
    ...(worker !== undefined ? { worker: worker.endpoint } : {}),
    ...(workerBatched !== undefined ? { 'worker-batched': workerBatched.endpoint } : {}),
    batched: batched.endpoint,
    'batched-c4': batchedC4.endpoint,
  };
  const child = fork(import.meta.filename, ['--client'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_ENDPOINTS: JSON.stringify(endpoints), BENCH_BATCH: String(batch) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve));

  interface Row {
    readonly label: string;
    readonly target: string;
    readonly binary: boolean;
    readonly pinned: boolean;
    readonly spin: boolean;
    readonly p50: number[];
    readonly p10: number[];
    readonly run: number[];
    readonly cpu: number[];
    readonly tput: number[];
    readonly tputCpu: number[];
    readonly perRun: number[];
  }
  const row = (label: string, target: string, options: { binary?: boolean; pinned?: boolean; spin?: boolean } = {}): Row => ({
    label,
    target,
    binary: options.binary ?? true,
    pinned: options.pinned ?? false,
    spin: options.spin ?? false,
    p50: [],
    p10: [],
    run: [],
    cpu: [],
    tput: [],
    tputCpu: [],
    perRun: [],
  });
  const rawRow = row('raw onnxruntime, in-process', 'raw');
  const poll = `busy-poll ${busyPollMs} ms`;
  // Defaults first (every loop sleeps when it waits), then latency-tuned: the server busy-polls, the client spins while it waits.
  const rows: Row[] = [
    rawRow,
    row('transport floor: bytes echo, TCP', 'echo-tcp'),
    row('transport floor: bytes echo, unix socket', 'echo-unix'),
    row('node:http floor, TCP (no inference)', 'floor'),
    row('lean transport floor, TCP (no inference)', 'lean-floor'),
    row('node:http + decode + session.run + encode, TCP', 'bare'),
    row('API, TCP, node:http transport', 'api'),
    row('API, TCP, node:http transport, JSON tensors', 'api', { binary: false }),
    row('API, unix socket, node:http transport', 'api-unix'),
    row('API, TCP, lean transport', 'lean'),
    row('API, TCP, lean transport, JSON tensors', 'lean', { binary: false }),
    row('API, unix socket, lean transport', 'lean-unix'),
    ...(worker !== undefined ? [row(`API, TCP, ${workers} inference worker(s)`, 'worker')] : []),
    row(`API, TCP, node:http transport, dynamic batching (batchMaxRows ${batchRows})`, 'batched'),
    row(`API, TCP, lean transport, dynamic batching (batchMaxRows ${batchRows})`, 'lean-batched'),
    row(`API, unix socket, lean transport, dynamic batching (batchMaxRows ${batchRows})`, 'lean-batched-unix'),
    row(`API, TCP, dynamic batching (batchMaxRows ${batchRows}), concurrencyPerModel 4`, 'batched-c4'),
    ...(workerBatched !== undefined ? [row(`API, TCP, ${workers} inference worker(s) + dynamic batching`, 'worker-batched')] : []),
    row(`API, TCP, ${poll}`, 'api-poll'),
    row(`API, unix socket, ${poll}`, 'api-poll-unix'),
    row(`transport floor: bytes echo, unix socket, ${poll}, client spins`, 'echo-poll-unix', { spin: true }),
    row(`node:http floor, unix socket, ${poll}, client spins`, 'floor-poll-unix', { spin: true }),
    row(`API, unix socket, ${poll}, client spins`, 'api-poll-unix', { spin: true }),
  ];
  if (pinning) {
    rows.push(
      row('raw onnxruntime, pinned to CPU 0', 'raw', { pinned: true }),
      row(`API, unix socket, ${poll}, client spins, pinned (server CPU 0, client CPU 1)`, 'api-poll-unix', { pinned: true, spin: true }),
    );
  }
  // --rows <regex>: measure only the rows whose label matches (raw always), for a shorter experiment.
  if (args.rows !== undefined) {
    const keep = new RegExp(args.rows);
    rows.splice(0, rows.length, ...rows.filter((r) => r === rawRow || keep.test(r.label)));
  }
  const withPin = async <T>(r: Row, work: () => Promise<T>): Promise<T> => {
    if (!r.pinned) return work();
    pin(process.pid, '0');
    pin(child.pid!, '1');
    try {
      return await work();
    } finally {
      pin(process.pid, cpus!);
      pin(child.pid!, cpus!);
    }
  };
  const latencyWarmup = 20;
  for (let round = 0; round < rounds; round++) {
    for (const r of round % 2 === 0 ? rows : [...rows].reverse()) {
      servedRunMs.length = 0;
      const lat = await withPin(r, () =>
        r.target === 'raw'
          ? cpuMs(() => rawLatency(raw, feeds, requests))
          : cpuMs(() => ask<{ p50: number; p10: number }>(child, { type: 'latency', target: r.target, n: requests, binary: r.binary, spin: r.spin })),
      );
      r.p50.push(lat.value.p50);
      r.p10.push(lat.value.p10);
      // Warm-up requests excluded: the last `requests` runs.
      if (r.target === 'raw') r.run.push(lat.value.p50);
      else if (servedRunMs.length > 0) r.run.push(median(servedRunMs.slice(-requests)));
      r.cpu.push(lat.cpu / (requests + latencyWarmup));
      const runsBefore = servedRunMs.length;
      const tput = await withPin(r, () =>
        r.target === 'raw'
          ? cpuMs(() => rawThroughput(raw, feeds, requests * 2, 8))
          : cpuMs(async () => (await ask<{ perSecond: number }>(child, { type: 'throughput', target: r.target, n: requests * 2, concurrency: 8, binary: r.binary })).perSecond),
      );
      r.tput.push(tput.value);
      r.tputCpu.push(tput.cpu / (requests * 2));
      // Requests answered per model run at concurrency 8 (above 1 only with dynamic batching).
      if (r.target !== 'raw' && servedRunMs.length > runsBefore) r.perRun.push((requests * 2) / (servedRunMs.length - runsBefore));
    }
    process.stderr.write(`round ${round + 1}/${rounds} (load ${loadavg()[0]!.toFixed(1)}): p50 ${rows.map((r) => `${r.target}${r.binary ? '' : '/json'}${r.pinned ? '/pin' : ''}${r.spin ? '/spin' : ''} ${r.p50.at(-1)!.toFixed(3)}`).join(', ')} ms\n`);
  }

  // Busy-poll at idle: one request, the window passes, then this process's CPU over an idle second.
  await ask(child, { type: 'latency', target: 'api-poll', n: 1, binary: true, spin: false });
  await new Promise((resolve) => setTimeout(resolve, busyPollMs + 50));
  const idle = await cpuMs(() => new Promise((resolve) => setTimeout(resolve, 1000)));

  // Swap under an open-loop load: version 2 (the same model bytes, a new session) at 40% of the window.
  const load = ask<OpenLoopResult>(child, { type: 'openloop', target: 'api', rps, durationMs: swapMs, binary: true, batch: swapBatch });
  await new Promise((resolve) => setTimeout(resolve, swapMs * 0.4));
  const swap = await inProcess.slot.swap({ version: '2', createSession: () => createSession(bytes, sessionOptions) });
  await swap.previousDrained;
  const swapResult = await load;

  child.kill();
  for (const s of [api, apiUnix, apiPoll, apiPollUnix, lean, leanUnix, leanBatched, leanBatchedUnix, worker, workerBatched, batched, batchedC4]) await s?.server.close();
  await workerBatchedSlots?.slots.close();
  await inProcess.slots.close();
  await batchedSlots.slots.close();
  await workerSlots?.slots.close();
  leanFloor.transport.closeAll();
  await new Promise((resolve) => leanFloor.server.close(resolve));
  for (const s of [floor, floorPollUnix, bare, echoTcp, echoUnix, echoPollUnix]) {
    s.poll.stop();
    await new Promise((resolve) => s.server.close(resolve));
  }
  rmSync(socketDir, { recursive: true, force: true });
  await raw.release();

  const m = median;
  const rawP50 = m(rawRow.p50);
  const rawTput = m(rawRow.tput);
  const pct = (value: number, base: number): string => `${value >= base ? '+' : ''}${(((value - base) / base) * 100).toFixed(0)}%`;
  const lines = [
    `mnist-teacher, batch ${batch} (request ${requestBytes} B, response ${responseBytes} B with ${HEAD_BYTES} B of head each), ${threads} intra-op thread(s)${args.spinning === 'default' ? '' : `, intra-op spinning ${args.spinning === '1' ? 'on' : 'off'}`}, ${rounds} rounds of ${requests} requests; load average ${loadavg()[0]!.toFixed(1)} on ${process.platform}/${process.arch}`,
    '',
    '| path | p50, concurrency 1 | vs raw p50 | p10 | session.run p50 inside | server CPU / request | throughput, concurrency 8 | of raw | per server CPU second | requests / run |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const isRaw = r === rawRow;
      return `| ${r.label} | ${m(r.p50).toFixed(3)} ms | ${isRaw ? '' : pct(m(r.p50), rawP50)} | ${m(r.p10).toFixed(3)} ms | ${r.run.length > 0 ? `${m(r.run).toFixed(3)} ms` : ''} | ${m(r.cpu).toFixed(3)} ms | ${m(r.tput).toFixed(0)} /s | ${isRaw ? '' : `${((m(r.tput) / rawTput) * 100).toFixed(0)}%`} | ${(1000 / m(r.tputCpu)).toFixed(0)} /s | ${r.perRun.length > 0 ? m(r.perRun).toFixed(2) : ''} |`;
    }),
    '',
  ];
  const p50Of = (target: string, spin = false): number => m(rows.find((r) => r.target === target && r.binary && !r.pinned && r.spin === spin)?.p50 ?? []);
  const share = (ms: number): string => `${ms.toFixed(3)} ms (${((ms / rawP50) * 100).toFixed(0)}% of raw p50)`;
  const tunedEcho = p50Of('echo-poll-unix', true);
  const tunedFloor = p50Of('floor-poll-unix', true);
  const tunedApi = p50Of('api-poll-unix', true);
  const runOf = (target: string, spin = false): number => m(rows.find((r) => r.target === target && r.binary && !r.pinned && r.spin === spin)?.run ?? []);
  lines.push(
    `session.run inside the server at p50: ${share(runOf('api'))} in the API (node:http), ${share(runOf('lean'))} in the API (lean), ${share(runOf('api-poll-unix', true))} latency-tuned, ${share(runOf('bare'))} in node:http + session.run; raw back to back ${rawP50.toFixed(3)} ms.`,
    `Floors at p50, defaults: bytes echo TCP ${share(p50Of('echo-tcp'))}, unix ${share(p50Of('echo-unix'))}; node:http TCP ${share(p50Of('floor'))}; lean transport TCP ${share(p50Of('lean-floor'))}.`,
    `Latency-tuned (unix socket, server busy-polls, client spins): API ${pct(tunedApi, rawP50)} over raw = transport ${share(tunedEcho)} + node:http over transport ${share(tunedFloor - tunedEcho)} + session.run served ${share(runOf('api-poll-unix', true))} + the rest (decode, slot, encode, and what the floor does not do) ${share(tunedApi - tunedFloor - runOf('api-poll-unix', true))}.`,
    `Busy-poll ${busyPollMs} ms at idle: ${idle.cpu.toFixed(1)} ms of server CPU over the idle second after the last request (window passed).`,
    '',
    `Swap at ${rps} req/s open loop for ${swapMs / 1000} s (batch ${swapBatch}, binary, API in-process, busy-poll off): ${swapResult.sent} sent, ${swapResult.failed} failed (target 0); v1 ${swapResult.versions['1'] ?? 0}, v2 ${swapResult.versions['2'] ?? 0}, v1 after the first v2: ${swapResult.oldAfterNew}; p50 ${swapResult.p50.toFixed(2)} ms, p99 ${swapResult.p99.toFixed(2)} ms, max ${swapResult.max.toFixed(1)} ms.`,
  );
  if (swapResult.failures.length > 0) lines.push('', `failures: ${swapResult.failures.join('; ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv.includes('--client')) await clientMain();
else await main();
