/**
 * Measures the serving targets of issue 8 and prints a markdown table, with the raw
 * in-process onnxruntime baseline and a bare node:http floor measured in the same run:
 *
 *   npx tsx scripts/bench-serve.ts [--threads 1] [--batch auto] [--workers 1] [--rounds 3] [--requests 300] [--rps 200] [--swap-seconds 5]
 *
 * The model is mnist-teacher (a 784-1024-512-10 MLP) at --batch, by default the smallest
 * batch whose raw p50 is at least 1 ms here. The servers run in this process; the client
 * (undici, keep-alive) runs in a forked child, so it does not compete for the servers'
 * event loop. The paths alternate round by round (this VM is shared: a load spike then
 * hits all of them), and each figure is the median over rounds.
 *
 * Rows:
 * - raw: `session.run` in-process (same session options), no HTTP.
 * - node:http floor: a bare node:http server in this process that reads the same request
 *   body and answers the bytes the API answers (encoded from a real inference), without
 *   inference, measured with the same client: what HTTP alone costs on this machine.
 * - node:http + session.run: the same bare server, but it decodes the request, runs the
 *   model with `session.run` and encodes the answer: the least any server that infers on
 *   the event loop does (no routing, admission, deadlines, slots, metrics).
 * - API, in-process: the KServe server with inference on the event loop.
 * - API, worker: the same server with each session in --workers worker threads
 *   (`createSession(bytes, { workers })`), so parsing overlaps inference (0 skips them).
 *
 * Columns: client-observed p50/p10 of one request at concurrency 1 (against raw p50),
 * server CPU per request (this process's CPU time over the phase: it runs the servers
 * and their workers; the client is the child), requests/s with 8 in flight against raw
 * runs/s with 8 concurrent in-process `session.run` calls (onnxruntime-node runs those
 * one at a time on the event loop), and the same per server CPU second.
 * Swap: an open-loop load of --rps requests/s for --swap-seconds on the in-process API;
 * a new version is swapped in at 40% of the window; every request must succeed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readNpy } from '../src/data/index.ts';
import { DataType, type TensorValue } from '../src/onnx/index.ts';
import { createSession, type Session, type SessionOptions } from '../src/runtime/index.ts';
import { ModelSlots, type ModelSlot } from '../src/runtime/serving/index.ts';
import { createInferenceServer, KserveClient, type InferenceServer } from '../src/server/index.ts';
import { decodeInferenceRequest } from '../src/server/decode.ts';
import { encodeInferenceResponse, type EncodedResponse } from '../src/server/encode.ts';

const root = path.resolve(import.meta.dirname, '..');
const MODEL = path.join(root, 'test/fixtures/models/mnist-teacher.onnx');
const IMAGES = path.join(root, 'test/fixtures/data/mnist-test/input.npy');

type Target = 'floor' | 'bare' | 'api' | 'worker';

type ClientTask =
  | { type: 'latency'; target: Target; n: number; binary: boolean }
  | { type: 'throughput'; target: Target; n: number; concurrency: number; binary: boolean }
  | { type: 'openloop'; target: Target; rps: number; durationMs: number; binary: boolean; batch: number };

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

async function clientMain(): Promise<void> {
  const urls = JSON.parse(process.env.BENCH_URLS!) as Partial<Record<Target, string>>;
  const input = await images(Number(process.env.BENCH_BATCH));
  const clients = new Map<Target, KserveClient>();
  for (const [target, url] of Object.entries(urls) as [Target, string][]) clients.set(target, new KserveClient({ url, connections: 16 }));
  const infer = (target: Target, binary: boolean, feeds: TensorValue = input) => clients.get(target)!.infer('teacher', { input: feeds }, { binary });
  process.on('message', (task: ClientTask) => {
    void run(task).then((result) => process.send!(result));
  });
  process.send!({ ready: true });

  async function run(task: ClientTask): Promise<unknown> {
    switch (task.type) {
      case 'latency': {
        for (let i = 0; i < 20; i++) await infer(task.target, task.binary);
        const times: number[] = [];
        for (let i = 0; i < task.n; i++) {
          const t = performance.now();
          await infer(task.target, task.binary);
          times.push(performance.now() - t);
        }
        return { p50: median(times), p10: percentile(times, 0.1) };
      }
      case 'throughput': {
        let next = 0;
        const t = performance.now();
        await Promise.all(
          Array.from({ length: task.concurrency }, async () => {
            while (next++ < task.n) await infer(task.target, task.binary);
          }),
        );
        return { perSecond: task.n / ((performance.now() - t) / 1000) };
      }
      case 'openloop': {
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
            infer(task.target, task.binary, swapInput).then(
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

/**
 * The floor: node:http reading the whole body (gathered as the API gathers it) and
 * answering the API's own response bytes with the API's headers; no decoding, no
 * inference. With `infer`, the body is decoded, run and the answer encoded instead.
 */
async function startFloor(
  responses: { binary: EncodedResponse; json: EncodedResponse },
  infer?: (body: Buffer, jsonLength: number | undefined, binary: boolean) => Promise<EncodedResponse>,
): Promise<{ server: Server; url: string }> {
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
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function startApi(bytes: Uint8Array, session: SessionOptions): Promise<{ slots: ModelSlots; slot: ModelSlot; server: InferenceServer; url: string }> {
  const slots = new ModelSlots({ warmupRuns: 3 });
  const slot = slots.add('teacher');
  await slot.swap({ version: '1', createSession: () => createSession(bytes, session) });
  const server = createInferenceServer({ models: slots, listen: { port: 0 }, limits: { concurrencyPerModel: 8, maxQueuedRequests: 1024 } });
  const { url } = await server.listen();
  return { slots, slot, server, url: url! };
}

function ask<T>(child: ChildProcess, task: ClientTask): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(task);
  });
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      threads: { type: 'string', default: '1' },
      batch: { type: 'string', default: 'auto' },
      workers: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      requests: { type: 'string', default: '300' },
      rps: { type: 'string', default: '200' },
      'swap-seconds': { type: 'string', default: '5' },
      'swap-batch': { type: 'string', default: '1' },
    },
  });
  const threads = Number(args.threads);
  const workers = Number(args.workers);
  const rounds = Number(args.rounds);
  const requests = Number(args.requests);
  const rps = Number(args.rps);
  const swapMs = Number(args['swap-seconds']) * 1000;
  const swapBatch = Number(args['swap-batch']);
  const bytes = readFileSync(MODEL);
  const raw = await createSession(bytes, { threads });

  // The smallest batch whose raw p50 reaches 1 ms on this machine, unless --batch says.
  let batch = 1;
  let feeds: Record<string, TensorValue> = { input: await images(1) };
  for (const b of args.batch === 'auto' ? [1, 2, 4, 6, 8, 12, 16, 24, 32] : [Number(args.batch)]) {
    batch = b;
    feeds = { input: await images(b) };
    if ((await rawLatency(raw, feeds, 100)).p50 >= 1) break;
  }
  process.stderr.write(`mnist-teacher at batch ${batch}, ${threads} intra-op thread(s), ${workers} inference worker(s)\n`);

  const outputs = await raw.run(feeds);
  const answer = (binary: boolean): EncodedResponse =>
    encodeInferenceResponse(
      { modelName: 'teacher', modelVersion: '1', id: undefined, parameters: { answered_by: 'local' } },
      Object.entries(outputs).map(([name, value]) => ({ name, value, binary })),
    );
  const floor = await startFloor({ binary: answer(true), json: answer(false) });
  const bare = await startFloor({ binary: answer(true), json: answer(false) }, async (body, jsonLength, binary) => {
    const request = decodeInferenceRequest(body, jsonLength);
    const result = await raw.run(request.feeds);
    return encodeInferenceResponse(
      { modelName: 'teacher', modelVersion: '1', id: undefined, parameters: { answered_by: 'local' } },
      Object.entries(result).map(([name, value]) => ({ name, value, binary })),
    );
  });
  const api = await startApi(bytes, { threads });
  const worker = workers > 0 ? await startApi(bytes, { threads, workers }) : undefined;
  const urls: Partial<Record<Target, string>> = { floor: floor.url, bare: bare.url, api: api.url, ...(worker !== undefined ? { worker: worker.url } : {}) };
  const child = fork(import.meta.filename, ['--client'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_URLS: JSON.stringify(urls), BENCH_BATCH: String(batch) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve));

  interface Row {
    readonly label: string;
    readonly target: Target | 'raw';
    readonly binary: boolean;
    readonly p50: number[];
    readonly p10: number[];
    readonly cpu: number[];
    readonly tput: number[];
    readonly tputCpu: number[];
  }
  const row = (label: string, target: Target | 'raw', binary: boolean): Row => ({ label, target, binary, p50: [], p10: [], cpu: [], tput: [], tputCpu: [] });
  const rawRow = row('raw onnxruntime, in-process', 'raw', true);
  const rows: Row[] = [
    rawRow,
    row('node:http floor, binary-sized (no inference)', 'floor', true),
    row('node:http floor, JSON-sized (no inference)', 'floor', false),
    row('node:http + decode + session.run + encode, binary', 'bare', true),
    row('API in-process, binary tensors', 'api', true),
    row('API in-process, JSON tensors', 'api', false),
  ];
  if (worker !== undefined) rows.push(row(`API ${workers} worker(s), binary tensors`, 'worker', true), row(`API ${workers} worker(s), JSON tensors`, 'worker', false));
  const latencyWarmup = 20;
  for (let round = 0; round < rounds; round++) {
    for (const r of rows) {
      const lat =
        r.target === 'raw'
          ? await cpuMs(() => rawLatency(raw, feeds, requests))
          : await cpuMs(() => ask<{ p50: number; p10: number }>(child, { type: 'latency', target: r.target as Target, n: requests, binary: r.binary }));
      r.p50.push(lat.value.p50);
      r.p10.push(lat.value.p10);
      r.cpu.push(lat.cpu / (requests + latencyWarmup));
    }
    for (const r of rows) {
      const tput =
        r.target === 'raw'
          ? await cpuMs(() => rawThroughput(raw, feeds, requests * 2, 8))
          : await cpuMs(async () => (await ask<{ perSecond: number }>(child, { type: 'throughput', target: r.target as Target, n: requests * 2, concurrency: 8, binary: r.binary })).perSecond);
      r.tput.push(tput.value);
      r.tputCpu.push(tput.cpu / (requests * 2));
    }
    process.stderr.write(`round ${round + 1}/${rounds}: p50 ${rows.map((r) => `${r.target}${r.binary ? '' : '/json'} ${r.p50.at(-1)!.toFixed(3)}`).join(', ')} ms\n`);
  }

  // Swap under an open-loop load: version 2 (the same model bytes, a new session) at 40% of the window.
  const load = ask<OpenLoopResult>(child, { type: 'openloop', target: 'api', rps, durationMs: swapMs, binary: true, batch: swapBatch });
  await new Promise((resolve) => setTimeout(resolve, swapMs * 0.4));
  const swap = await api.slot.swap({ version: '2', createSession: () => createSession(bytes, { threads }) });
  await swap.previousDrained;
  const swapResult = await load;

  child.kill();
  for (const s of [api, worker]) {
    if (s === undefined) continue;
    await s.server.close();
    await s.slots.close();
  }
  for (const s of [floor, bare]) await new Promise((resolve) => s.server.close(resolve));
  await raw.release();

  const m = median;
  const rawP50 = m(rawRow.p50);
  const rawTput = m(rawRow.tput);
  const pct = (value: number, base: number): string => `${value >= base ? '+' : ''}${(((value - base) / base) * 100).toFixed(0)}%`;
  const lines = [
    `mnist-teacher, batch ${batch} (request ${(batch * 784 * 4) / 1000} KB of FP32), ${threads} intra-op thread(s), ${rounds} rounds of ${requests} requests; load average ${loadavg()[0]!.toFixed(1)} on ${process.platform}/${process.arch}`,
    '',
    '| path | p50, concurrency 1 | vs raw p50 | p10 | server CPU / request | throughput, concurrency 8 | of raw | per server CPU second |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const isRaw = r.target === 'raw';
      return `| ${r.label} | ${m(r.p50).toFixed(3)} ms | ${isRaw ? '' : pct(m(r.p50), rawP50)} | ${m(r.p10).toFixed(3)} ms | ${m(r.cpu).toFixed(3)} ms | ${m(r.tput).toFixed(0)} /s | ${isRaw ? '' : `${((m(r.tput) / rawTput) * 100).toFixed(0)}%`} | ${(1000 / m(r.tputCpu)).toFixed(0)} /s |`;
    }),
    '',
  ];
  const floorBinary = rows.find((r) => r.target === 'floor' && r.binary)!;
  const apiBinary = rows.find((r) => r.target === 'api' && r.binary)!;
  const bareBinary = rows.find((r) => r.target === 'bare')!;
  const floorShare = m(floorBinary.p50) / rawP50;
  lines.push(
    `Floor: node:http alone takes ${m(floorBinary.p50).toFixed(3)} ms per binary-sized round trip, ${(floorShare * 100).toFixed(0)}% of raw p50; ` +
      (floorShare > 0.1
        ? `the <= 10% overhead target is BELOW the node:http floor on this machine (the best any HTTP server could do here is +${(floorShare * 100).toFixed(0)}%).`
        : 'the <= 10% overhead target is above the floor here.'),
    `The server layer (API in-process minus node:http + session.run, binary): ${(m(apiBinary.p50) - m(bareBinary.p50)).toFixed(3)} ms at p50, ${(m(apiBinary.cpu) - m(bareBinary.cpu)).toFixed(3)} ms of server CPU per request.`,
    `session.run between HTTP requests costs more CPU than back to back (node:http + session.run minus floor minus raw): ${(m(bareBinary.cpu) - m(floorBinary.cpu) - m(rawRow.cpu)).toFixed(3)} ms per request.`,
    '',
    `Swap at ${rps} req/s open loop for ${swapMs / 1000} s (batch ${swapBatch}, binary, in-process API): ${swapResult.sent} sent, ${swapResult.failed} failed (target 0); v1 ${swapResult.versions['1'] ?? 0}, v2 ${swapResult.versions['2'] ?? 0}, v1 after the first v2: ${swapResult.oldAfterNew}; p50 ${swapResult.p50.toFixed(2)} ms, p99 ${swapResult.p99.toFixed(2)} ms, max ${swapResult.max.toFixed(1)} ms.`,
  );
  if (swapResult.failures.length > 0) lines.push('', `failures: ${swapResult.failures.join('; ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv.includes('--client')) await clientMain();
else await main();
