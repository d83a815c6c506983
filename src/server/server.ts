/**
 * The local inference API: the KServe v2 Open Inference Protocol (REST) over HTTP/1.1,
 * on 127.0.0.1 or a unix socket, with health, metadata, inference (JSON tensors and
 * the binary-data extension) and Prometheus metrics. Routing and handling are
 * transport-agnostic (exchange.ts); node:http carries the requests (node-transport.ts),
 * or with `transport: 'lean'` the lean transport (lean-transport.ts) carries the common
 * ones and hands the rest to node:http.
 * https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
 *
 * Robustness: the body is capped while it streams (413); each model admits a bounded
 * number of concurrent and waiting requests (429 with Retry-After beyond); a request
 * past its deadline gets 503 (still queued) or 504 (running); a malformed request a 400
 * naming the problem; a failing model a 500 that is counted; no error escapes to crash
 * the process.
 */
import { createServer, type Server } from 'node:http';
import { lstat, unlink } from 'node:fs/promises';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { EdgevolveError, toEdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/tensor.ts';
import type { ModelSlot, ModelSlots } from '../runtime/serving/index.ts';
import { Admission } from './admission.ts';
import { bearerTokenMatcher } from './auth.ts';
import { BusyPoll } from './busy-poll.ts';
import { kserveDatatypeOf } from './datatypes.ts';
import { decodeInferenceRequest } from './decode.ts';
import { encodeInferenceResponse, type ResponseOutput } from './encode.ts';
import type { ApiRequest, ApiResponder, ExchangeHooks } from './exchange.ts';
import { LeanHttpTransport } from './lean-transport.ts';
import { renderMetrics, type ServerCounters } from './metrics.ts';
import { nodeHttpListener } from './node-transport.ts';
import { httpStatusOf } from './status.ts';

export interface InferenceServerLimits {
  /** Largest request body, in bytes (413 beyond). Default 64 MiB. */
  readonly maxBodyBytes?: number;
  /** Inferences running at once per model. Default 8 (with dynamic batching, a batch holds only admitted requests). */
  readonly concurrencyPerModel?: number;
  /** Requests waiting per model before 429. Default 64. */
  readonly maxQueuedRequests?: number;
  /** Deadline from the request's arrival to its answer, in milliseconds (503 queued / 504 running). Default 30000. */
  readonly requestTimeoutMs?: number;
  /** Retry-After sent with 429, in seconds. Default 1. */
  readonly retryAfterSeconds?: number;
}

export type ListenAddress = { readonly host?: string; readonly port?: number } | { readonly socketPath: string };

export interface InferenceServerOptions {
  readonly models: ModelSlots;
  /** Default 127.0.0.1 on port 8080. Port 0 picks a free port. */
  readonly listen?: ListenAddress;
  /** When set, every endpoint but /v2/health/* requires `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly limits?: InferenceServerLimits;
  readonly logger?: Logger;
  /** Reported by GET /v2. */
  readonly serverVersion?: string;
  /**
   * Keep the event loop awake this many milliseconds after each request (busy-poll.ts),
   * so the next request does not pay a sleeping core's wake-up; 0 or absent: off.
   */
  readonly busyPollMs?: number;
  /**
   * 'node-http' (default): node:http parses every request; 'lean': the lean HTTP/1.1
   * transport parses the common requests itself and hands the others to node:http.
   */
  readonly transport?: ServerTransport;
}

export type ServerTransport = 'lean' | 'node-http';

/** Where the server listens once started. */
export interface ListeningAddress {
  /** http://host:port for TCP; undefined for a unix socket. */
  readonly url: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly socketPath: string | undefined;
}

export interface InferenceServer {
  listen(): Promise<ListeningAddress>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`, default 10 s), then closes connections. */
  close(graceMs?: number): Promise<void>;
  /** Live: the process answers. Ready: every model slot serves a version. */
  health(): { live: boolean; ready: boolean };
  metricsText(): string;
}

const DEFAULTS = {
  maxBodyBytes: 64 * 1024 * 1024,
  concurrencyPerModel: 8,
  maxQueuedRequests: 64,
  requestTimeoutMs: 30_000,
  retryAfterSeconds: 1,
} as const;

export function createInferenceServer(options: InferenceServerOptions): InferenceServer {
  return new KserveServer(options);
}

interface RequestContext {
  route: string;
  /** Set once the answer was sent (the deadline may answer before the inference ends). */
  answered: boolean;
}

class KserveServer implements InferenceServer {
  readonly #options: InferenceServerOptions;
  readonly #limits: Required<InferenceServerLimits>;
  readonly #tokenMatches: ((authorization: string | undefined) => boolean) | undefined;
  readonly #admissions = new Map<string, Admission>();
  readonly #responses = new Map<string, { route: string; code: number; count: number }>();
  readonly #modelFailures = new Map<string, number>();
  #server: Server | undefined;
  #lean: LeanHttpTransport | undefined;
  #socketPath: string | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  readonly #busyPoll: BusyPoll;

  constructor(options: InferenceServerOptions) {
    this.#options = options;
    this.#busyPoll = new BusyPoll(options.busyPollMs ?? 0);
    this.#limits = { ...DEFAULTS, ...definedOnly(options.limits ?? {}) };
    this.#tokenMatches = options.token === undefined ? undefined : bearerTokenMatcher(options.token);
  }

  async listen(): Promise<ListeningAddress> {
    if (this.#server !== undefined) throw new EdgevolveError('E_INTERNAL', 'the inference server is already listening');
    const hooks: ExchangeHooks = {
      started: () => this.#inFlight++,
      finished: () => {
        this.#inFlight--;
        if (this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
      },
    };
    const handler = (request: ApiRequest, responder: ApiResponder): void => this.#handle(request, responder);
    // requestTimeout bounds receiving a request (headers and body): a client trickling its body (slowloris) is answered 408 and dropped.
    const timeouts = { keepAliveTimeout: 65_000, headersTimeout: Math.min(60_000, this.#limits.requestTimeoutMs), requestTimeout: this.#limits.requestTimeoutMs };
    const server = createServer(timeouts, nodeHttpListener(handler, hooks));
    if (this.#options.transport === 'lean') {
      // One listening server for both transports: node:http's own connection listener becomes the fallback, so a
      // connection handed to it keeps node:http's timeouts, and close()/closeAllConnections() reach it.
      const nodeConnection = server.listeners('connection')[0] as ((socket: Socket) => void) | undefined;
      if (nodeConnection === undefined) throw new EdgevolveError('E_INTERNAL', 'node:http registered no connection listener to fall back to');
      server.removeListener('connection', nodeConnection);
      const lean = new LeanHttpTransport(
        handler,
        hooks,
        { maxBodyBytes: this.#limits.maxBodyBytes, headersTimeoutMs: timeouts.headersTimeout, requestTimeoutMs: timeouts.requestTimeout, keepAliveTimeoutMs: timeouts.keepAliveTimeout },
        (socket) => nodeConnection.call(server, socket),
      );
      server.on('connection', (socket: Socket) => lean.accept(socket));
      this.#lean = lean;
    }
    // A client error (bad request line, reset) must never become an uncaught exception.
    server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy(err);
    });
    const listen = this.#options.listen ?? {};
    const socketPath = 'socketPath' in listen ? listen.socketPath : undefined;
    if (socketPath !== undefined) await removeStaleSocket(socketPath);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new EdgevolveError('E_SERVER_LISTEN', `cannot listen on ${socketPath ?? describeTcp(listen)}: ${err.code ?? err.message}`, { cause: err, context: { socketPath, code: err.code } }));
      };
      server.once('error', onError);
      const done = (): void => {
        server.off('error', onError);
        resolve();
      };
      if (socketPath !== undefined) server.listen(socketPath, done);
      else if (!('socketPath' in listen)) server.listen(listen.port ?? 8080, listen.host ?? '127.0.0.1', done);
    });
    server.on('error', (err) => this.#options.logger?.error({ err: err.message }, 'inference server error'));
    this.#server = server;
    this.#socketPath = socketPath;
    if (socketPath !== undefined) return { url: undefined, host: undefined, port: undefined, socketPath };
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return { url: `http://${host}:${address.port}`, host: address.address, port: address.port, socketPath: undefined };
  }

  async close(graceMs = 10_000): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#busyPoll.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    this.#lean?.closeIdle();
    if (this.#inFlight > 0) {
      const idle = new Promise<void>((resolve) => (this.#idle = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([idle, timeout]);
      clearTimeout(timer);
    }
    server.closeAllConnections();
    this.#lean?.closeAll();
    this.#lean = undefined;
    await closed;
    if (this.#socketPath !== undefined) await unlink(this.#socketPath).catch(() => undefined);
  }

  health(): { live: boolean; ready: boolean } {
    return { live: true, ready: this.#options.models.allLoaded() };
  }

  metricsText(): string {
    const queues = new Map<string, { queued: number; rejected: number }>();
    for (const [model, admission] of this.#admissions) queues.set(model, { queued: admission.queued, rejected: admission.rejected });
    const counters: ServerCounters = { responses: this.#responses, queues, modelFailures: this.#modelFailures, busyPollMs: this.#busyPoll.spunMs };
    return renderMetrics(
      this.#options.models.all().map((s) => s.metrics()),
      counters,
    );
  }

  #handle(req: ApiRequest, res: ApiResponder): void {
    const ctx: RequestContext = { route: 'unknown', answered: false };
    this.#route(req, res, ctx).catch((err: unknown) => {
      const error = toEdgevolveError(err);
      if (httpStatusOf(error) === 500 && error.code === 'E_INTERNAL') this.#options.logger?.error({ err: error.message, route: ctx.route }, 'request handler failed');
      this.#sendError(res, ctx, error);
    });
  }

  async #route(req: ApiRequest, res: ApiResponder, ctx: RequestContext): Promise<void> {
    const url = req.target;
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const parts = path.split('/').filter((p) => p.length > 0).map(safeDecode);
    const method = req.method;

    if (parts[0] === 'v2' && parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready')) {
      ctx.route = `/v2/health/${parts[2]}`;
      requireMethod(method, 'GET', 'HEAD');
      const ok = parts[2] === 'live' ? true : this.#options.models.allLoaded();
      // KServe health: 200 when true; the body is informational.
      this.#sendJson(res, ctx, ok ? 200 : 503, parts[2] === 'live' ? { live: true } : { ready: ok });
      req.skipBody();
      return;
    }
    this.#authorize(req);

    if (parts.length === 1 && parts[0] === 'metrics') {
      ctx.route = '/metrics';
      requireMethod(method, 'GET', 'HEAD');
      this.#send(res, ctx, 200, Buffer.from(this.metricsText(), 'utf8'), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      req.skipBody();
      return;
    }
    if (parts[0] !== 'v2') throw notFound(path);
    if (parts.length === 1) {
      ctx.route = '/v2';
      requireMethod(method, 'GET', 'HEAD');
      this.#sendJson(res, ctx, 200, { name: 'edgevolve', version: this.#options.serverVersion ?? '0.1.0', extensions: ['binary_tensor_data'] });
      req.skipBody();
      return;
    }
    if (parts[1] !== 'models' || parts.length < 3) throw notFound(path);
    const slot = this.#options.models.get(parts[2]!);
    if (slot === undefined) throw new EdgevolveError('E_SERVER_NOT_FOUND', `model '${parts[2]}' is not served here (models: ${this.#options.models.names().join(', ') || 'none'})`, { context: { model: parts[2] } });
    let rest = parts.slice(3);
    let version: string | undefined;
    if (rest[0] === 'versions') {
      if (rest.length < 2) throw notFound(path);
      version = rest[1];
      rest = rest.slice(2);
    }
    if (rest.length === 0) {
      ctx.route = '/v2/models/:name';
      requireMethod(method, 'GET', 'HEAD');
      this.#sendJson(res, ctx, 200, modelMetadata(slot, version));
      req.skipBody();
      return;
    }
    if (rest.length === 1 && rest[0] === 'ready') {
      ctx.route = '/v2/models/:name/ready';
      requireMethod(method, 'GET', 'HEAD');
      const active = slot.active;
      const ready = active !== undefined && (version === undefined || version === active.version);
      this.#sendJson(res, ctx, ready ? 200 : 503, { name: slot.name, ready });
      req.skipBody();
      return;
    }
    if (rest.length === 1 && rest[0] === 'infer') {
      ctx.route = '/v2/models/:name/infer';
      requireMethod(method, 'POST');
      await this.#infer(req, res, ctx, slot, version);
      return;
    }
    throw notFound(path);
  }

  #authorize(req: ApiRequest): void {
    if (this.#tokenMatches === undefined) return;
    if (!this.#tokenMatches(req.authorization)) {
      throw new EdgevolveError('E_SERVER_UNAUTHORIZED', 'a bearer token is required: send Authorization: Bearer <token>');
    }
  }

  async #infer(req: ApiRequest, res: ApiResponder, ctx: RequestContext, slot: ModelSlot, version: string | undefined): Promise<void> {
    const arrived = performance.now();
    const headerLength = parseHeaderLength(req.inferenceHeaderLength);
    const body = await req.body(this.#limits.maxBodyBytes, headerLength);
    const request = decodeInferenceRequest(body, headerLength);

    const admission = this.#admission(slot.name);
    const ticket = admission.acquire(slot.name);
    const remaining = this.#limits.requestTimeoutMs - (performance.now() - arrived);
    let phase: 'queued' | 'running' = 'queued';
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        // Still queued means not granted: a grant resolves `ready` and sets phase in microtasks, which run before any timer.
        if (phase === 'queued') ticket.cancel();
        reject(new EdgevolveError('E_SERVER_TIMEOUT', `model '${slot.name}': no answer within ${this.#limits.requestTimeoutMs} ms (${phase === 'queued' ? 'still waiting in the queue' : 'still running'})`, {
          context: { model: slot.name, phase, timeoutMs: this.#limits.requestTimeoutMs },
        }));
      }, Math.max(0, remaining));
    });
    deadline.catch(() => undefined);
    try {
      await Promise.race([ticket.ready, deadline]);
      phase = 'running';
      const inference = slot.infer(request.feeds, {
        version,
        requestId: request.id,
        outputNames: request.outputs?.map((o) => o.name),
      });
      // The permit is returned when the inference really ends, even after a 504: the model is busy until then.
      void inference.then(
        () => admission.release(),
        () => admission.release(),
      );
      const result = await Promise.race([inference, deadline]);
      const outputs = responseOutputs(result.outputs, request.outputs, request.binaryDataOutput);
      const encoded = encodeInferenceResponse(
        { modelName: slot.name, modelVersion: result.version, id: request.id, parameters: { answered_by: result.answeredBy } },
        outputs,
      );
      const headers: Record<string, string> = {};
      if (encoded.jsonLength !== undefined) {
        headers['content-type'] = 'application/octet-stream';
        headers['inference-header-content-length'] = String(encoded.jsonLength);
      } else headers['content-type'] = 'application/json';
      this.#send(res, ctx, 200, encoded.body, headers);
    } catch (err) {
      const error = toEdgevolveError(err);
      if (httpStatusOf(error) === 500) {
        this.#modelFailures.set(slot.name, (this.#modelFailures.get(slot.name) ?? 0) + 1);
        this.#options.logger?.warn({ model: slot.name, code: error.code, err: error.message }, 'inference failed');
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #admission(model: string): Admission {
    let admission = this.#admissions.get(model);
    if (admission === undefined) {
      admission = new Admission(this.#limits.concurrencyPerModel, this.#limits.maxQueuedRequests);
      this.#admissions.set(model, admission);
    }
    return admission;
  }

  #sendError(res: ApiResponder, ctx: RequestContext, error: EdgevolveError): void {
    const status = httpStatusOf(error);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (status === 429) headers['retry-after'] = String(this.#limits.retryAfterSeconds);
    if (status === 401) headers['www-authenticate'] = 'Bearer';
    // After 413 the rest of the body was not read: the connection cannot carry another request.
    if (status === 413) headers.connection = 'close';
    this.#send(res, ctx, status, Buffer.from(JSON.stringify({ error: error.message, code: error.code }), 'utf8'), headers);
  }

  #sendJson(res: ApiResponder, ctx: RequestContext, status: number, value: unknown): void {
    this.#send(res, ctx, status, Buffer.from(JSON.stringify(value), 'utf8'), { 'content-type': 'application/json' });
  }

  #send(res: ApiResponder, ctx: RequestContext, status: number, body: Buffer, headers: Record<string, string>): void {
    if (ctx.answered || !res.open) return;
    ctx.answered = true;
    const key = `${ctx.route} ${status}`;
    const counter = this.#responses.get(key);
    if (counter === undefined) this.#responses.set(key, { route: ctx.route, code: status, count: 1 });
    else counter.count++;
    res.send(status, headers, body);
    // After the answer: the client's next request is likely within the window.
    this.#busyPoll.touch();
  }
}

/** The outputs to return, in the order asked (or the model's), each JSON or binary as asked. */
function responseOutputs(
  outputs: Readonly<Record<string, TensorValue>>,
  requested: readonly { name: string; binary: boolean | undefined }[] | undefined,
  binaryDataOutput: boolean,
): ResponseOutput[] {
  if (requested === undefined) return Object.keys(outputs).map((name) => ({ name, value: outputs[name]!, binary: binaryDataOutput }));
  return requested.map((r) => {
    const value = outputs[r.name];
    if (value === undefined) throw new EdgevolveError('E_INTERNAL', `the model did not return the requested output '${r.name}'`);
    return { name: r.name, value, binary: r.binary ?? binaryDataOutput };
  });
}

function modelMetadata(slot: ModelSlot, version: string | undefined): unknown {
  const active = slot.active;
  if (active === undefined) {
    throw new EdgevolveError('E_SERVING_NOT_LOADED', `model '${slot.name}' is not loaded yet`, { context: { model: slot.name } });
  }
  if (version !== undefined && version !== active.version) {
    throw new EdgevolveError('E_SERVING_NOT_LOADED', `model '${slot.name}' version ${version} is not served (serving ${active.version})`, {
      context: { model: slot.name, requestedVersion: version, version: active.version },
    });
  }
  const tensor = (t: { name: string; dataType: number | undefined; shape: readonly (number | string)[] }): unknown => ({
    name: t.name,
    datatype: t.dataType === undefined ? 'UNSUPPORTED' : (kserveDatatypeOf(t.dataType) ?? 'UNSUPPORTED'),
    // KServe marks a free dimension with -1.
    shape: t.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
  });
  return {
    name: slot.name,
    versions: [active.version],
    platform: 'onnxruntime_onnx',
    inputs: active.inputs.map(tensor),
    outputs: active.outputs.map(tensor),
    parameters: { version: active.version, variant: active.variant ?? '', loaded_at: new Date(active.loadedAt).toISOString(), ...active.labels },
  };
}

function parseHeaderLength(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new EdgevolveError('E_SERVER_BAD_REQUEST', `Inference-Header-Content-Length must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

function requireMethod(method: string, ...allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new EdgevolveError('E_SERVER_NOT_FOUND', `${method} is not supported here (use ${allowed.join(' or ')})`, { context: { method } });
  }
}

function notFound(path: string): EdgevolveError {
  return new EdgevolveError('E_SERVER_NOT_FOUND', `no endpoint ${path}`, { context: { path } });
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new EdgevolveError('E_SERVER_BAD_REQUEST', `the path segment '${part}' is not valid percent-encoding`);
  }
}

function describeTcp(listen: ListenAddress): string {
  if ('socketPath' in listen) return listen.socketPath;
  return `${listen.host ?? '127.0.0.1'}:${listen.port ?? 8080}`;
}

/**
 * A socket file left by a crashed run would make listen fail with EADDRINUSE: remove
 * it when nothing answers on it (ECONNREFUSED), but never a socket another process
 * serves, nor anything that is not a socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (stat === undefined) return;
  if (!stat.isSocket()) {
    throw new EdgevolveError('E_SERVER_LISTEN', `${path} exists and is not a unix socket; refusing to replace it`, { context: { socketPath: path } });
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) {
    throw new EdgevolveError('E_SERVER_LISTEN', `another process is serving on ${path}; refusing to take it over`, { context: { socketPath: path } });
  }
  await unlink(path);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
