/**
 * The lean HTTP/1.1 transport of the inference API (issue 8: node:http's own per-request
 * work was most of the server's non-inference CPU). On the sockets the listening server
 * accepts it parses request heads strictly (src/net/http-head.ts), reads a Content-Length
 * body straight into one aligned buffer, runs the API handler, and writes the answer as
 * one buffer (a small body) or one corked writev (head + body).
 *
 * It does only the common case itself: origin-form targets, Content-Length bodies (or
 * none), keep-alive and `Connection: close`, HTTP/1.0 and 1.1, HEAD, pipelined requests
 * (answered in order: one request at a time, the next parsed once the answer is written).
 * Anything else (Transfer-Encoding, Expect, Upgrade, absolute-form or asterisk targets, a
 * missing or repeated Host in 1.1, a repeated Content-Length) is handed to the node:http
 * server at the request boundary, with the bytes already read put back
 * (`socket.unshift`), so every client still gets a conforming answer.
 *
 * Limits match the node:http configuration it replaces: a head over 16 KiB or with more
 * than 100 fields, or a malformed one, is answered 400 and the connection closed; a head
 * not complete within `headersTimeoutMs` or a request (head and body) not received within
 * `requestTimeoutMs` of its first byte is answered 408 and closed (slowloris); an idle
 * keep-alive connection is closed after `keepAliveTimeoutMs`. A peer that does not read
 * its answers stops being read (no next request is parsed until the answer drained, and
 * the socket is paused once unparsed bytes pile up), so memory stays bounded.
 *
 * INVARIANTS: per connection at most one request is with the handler (state 'busy');
 * hooks.finished() is called exactly once per hooks.started(), when the answer was
 * flushed or the connection died.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { EdgevolveError } from '../errors/index.ts';
import { contentLengthOf, MAX_HEAD_BYTES, MAX_HEAD_FIELDS, parseMessageHead, type MessageHead } from '../net/http-head.ts';
import { alignedBody, bodyTooLarge } from './body.ts';
import type { ApiHandler, ApiRequest, ApiResponder, ExchangeHooks } from './exchange.ts';

export interface LeanTransportOptions {
  /** Largest body read (a larger declared one is refused 413 by the handler, unread). */
  readonly maxBodyBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** Unparsed bytes buffered while a request is with the handler before the socket is paused. */
const PENDING_HIGH_WATER = 64 * 1024;
/** Bodies up to this size are read into their final buffer as they arrive; larger ones are gathered first (no up-front allocation on a declared size alone). */
const DIRECT_BODY_BYTES = 1024 * 1024;
/** Answers smaller than this are copied with their head into one buffer: one write instead of a writev. */
const COPY_BODY_BYTES = 4096;
/** How long a closing connection may keep sending before it is destroyed. */
const CLOSE_LINGER_MS = 2000;

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const BAD_REQUEST = Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n', 'latin1');
const REQUEST_TIMEOUT = Buffer.from('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n', 'latin1');

function malformed(what: string): EdgevolveError {
  return new EdgevolveError('E_SERVER_BAD_REQUEST', `malformed HTTP request head: ${what}`);
}

let dateSecond = -1;
let dateText = '';
/** The Date field value, formatted once per second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

type State = 'idle' | 'head' | 'body' | 'busy' | 'blocked' | 'closing';

export class LeanHttpTransport {
  readonly #handler: ApiHandler;
  readonly #hooks: ExchangeHooks;
  readonly #options: LeanTransportOptions;
  readonly #fallback: (socket: Socket) => void;
  readonly #connections = new Set<LeanConnection>();
  readonly #keepAliveHeaders: string;
  #checker: NodeJS.Timeout | undefined;
  #closing = false;

  /** `fallback` takes a connection over at a request boundary (the node:http server's connection listener). */
  constructor(handler: ApiHandler, hooks: ExchangeHooks, options: LeanTransportOptions, fallback: (socket: Socket) => void) {
    this.#handler = handler;
    this.#hooks = hooks;
    this.#options = options;
    this.#fallback = fallback;
    this.#keepAliveHeaders = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n\r\n`;
  }

  get closing(): boolean {
    return this.#closing;
  }

  accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const connection = new LeanConnection(this, socket);
    this.#connections.add(connection);
    if (this.#checker === undefined) {
      // One timer for every connection (as node:http's connectionsCheckingInterval), not one per request.
      const period = Math.max(10, Math.min(1000, Math.floor(Math.min(this.#options.headersTimeoutMs, this.#options.requestTimeoutMs) / 4)));
      this.#checker = setInterval(() => this.#checkTimeouts(), period).unref();
    }
  }

  /** Stops taking new requests: idle connections close now, the others after their current answer. */
  closeIdle(): void {
    this.#closing = true;
    for (const connection of this.#connections) connection.closeIfIdle();
  }

  /** Destroys every connection still open. */
  closeAll(): void {
    this.#closing = true;
    clearInterval(this.#checker);
    this.#checker = undefined;
    for (const connection of this.#connections) connection.destroy();
  }

  /** @internal for LeanConnection */
  get handler(): ApiHandler {
    return this.#handler;
  }
  /** @internal */
  get hooks(): ExchangeHooks {
    return this.#hooks;
  }
  /** @internal */
  get options(): LeanTransportOptions {
    return this.#options;
  }
  /** @internal */
  get keepAliveHeaders(): string {
    return this.#keepAliveHeaders;
  }
  /** @internal */
  forget(connection: LeanConnection): void {
    this.#connections.delete(connection);
  }
  /** @internal */
  handOff(connection: LeanConnection, socket: Socket): void {
    this.#connections.delete(connection);
    this.#fallback(socket);
  }

  #checkTimeouts(): void {
    const now = performance.now();
    for (const connection of this.#connections) connection.checkTimeout(now);
  }
}

/** The parsed request being received or handled. */
interface Current {
  readonly method: string;
  readonly target: string;
  readonly keepAlive: boolean;
  readonly authorization: string | undefined;
  readonly inferenceHeaderLength: string | undefined;
  readonly declaredLength: number;
  /** The body's final buffer (direct read), or undefined while gathering chunks or when refused. */
  body: Buffer | undefined;
  chunks: Buffer[] | undefined;
  jsonLength: number | undefined;
  received: number;
  tooLarge: boolean;
}

class LeanConnection {
  readonly #transport: LeanHttpTransport;
  readonly #socket: Socket;
  /** A new connection waits for its first head: headersTimeoutMs applies from the connection (as node:http does). */
  #state: State = 'head';
  /** Received bytes not parsed yet (the start of the next head, or what arrived while busy). */
  #pending: Buffer | undefined;
  #current: Current | undefined;
  /** When the current state began (request start for head/body), performance.now(). */
  #since = performance.now();
  #inFlight = false;
  #peerEnded = false;
  #parseScheduled = false;
  readonly #onData = (chunk: Buffer): void => this.#data(chunk);
  readonly #onEnd = (): void => this.#end();
  readonly #onClose = (): void => this.#close();
  readonly #onError = (): void => undefined;
  readonly #onDrain = (): void => this.#drained();

  constructor(transport: LeanHttpTransport, socket: Socket) {
    this.#transport = transport;
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    // 'close' follows every error; the error itself needs no answer (the peer is gone).
    socket.on('error', this.#onError);
  }

  closeIfIdle(): void {
    if (this.#state === 'idle' || (this.#state === 'head' && this.#pending === undefined)) this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  checkTimeout(now: number): void {
    const elapsed = now - this.#since;
    const options = this.#transport.options;
    switch (this.#state) {
      case 'idle':
        if (elapsed > options.keepAliveTimeoutMs) this.#socket.destroy();
        return;
      case 'head':
        if (elapsed > options.headersTimeoutMs) this.#refuse(REQUEST_TIMEOUT);
        return;
      case 'body':
        if (elapsed > options.requestTimeoutMs) this.#refuse(REQUEST_TIMEOUT);
        return;
      case 'blocked':
        // A peer that has not read an answer for a keep-alive period is gone or hostile.
        if (elapsed > options.keepAliveTimeoutMs) this.#socket.destroy();
        return;
      case 'closing':
        if (elapsed > CLOSE_LINGER_MS) this.#socket.destroy();
        return;
      case 'busy':
        // The handler's own deadline (requestTimeoutMs) answers.
        return;
    }
  }

  #data(chunk: Buffer): void {
    switch (this.#state) {
      case 'closing':
        return;
      case 'busy':
      case 'blocked':
        this.#append(chunk);
        if (this.#pending!.length > PENDING_HIGH_WATER) this.#socket.pause();
        return;
      case 'body':
        this.#bodyData(chunk);
        return;
      case 'idle':
      case 'head':
        this.#append(chunk);
        this.#parse();
        return;
    }
  }

  #append(chunk: Buffer): void {
    this.#pending = this.#pending === undefined || this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
  }

  /** Parses the pending bytes into the next request, if they hold its head. */
  #parse(): void {
    let pending = this.#pending;
    if (pending === undefined) return;
    // RFC 9112 §2.2: a server SHOULD ignore empty lines before a request line.
    let skip = 0;
    while (pending.length >= skip + 2 && pending[skip] === 13 && pending[skip + 1] === 10) skip += 2;
    if (skip > 0) pending = this.#pending = pending.subarray(skip);
    if (pending.length === 0) {
      this.#pending = undefined;
      return;
    }
    if (this.#state === 'idle') {
      this.#state = 'head';
      this.#since = performance.now();
    }
    let head: MessageHead | undefined;
    let line: RegExpExecArray | null;
    try {
      head = parseMessageHead(pending, { maxBytes: MAX_HEAD_BYTES, maxFields: MAX_HEAD_FIELDS }, malformed);
      if (head === undefined) return;
      line = REQUEST_LINE.exec(head.startLine);
    } catch {
      this.#refuse(BAD_REQUEST);
      return;
    }
    if (line === null) {
      this.#refuse(BAD_REQUEST);
      return;
    }
    const fields = head.fields;
    const http10 = line[3] === '0';
    const target = line[2]!;
    const host = fields.get('host');
    const lengths = fields.get('content-length');
    if (
      target.charCodeAt(0) !== 47 /* '/' */ ||
      fields.has('transfer-encoding') ||
      fields.has('expect') ||
      fields.has('upgrade') ||
      (!http10 && host?.length !== 1) ||
      (lengths !== undefined && lengths.length !== 1)
    ) {
      this.#handOff(pending);
      return;
    }
    let declaredLength: number;
    try {
      declaredLength = contentLengthOf(fields, malformed) ?? 0;
    } catch {
      this.#refuse(BAD_REQUEST);
      return;
    }
    const connection = fields.get('connection');
    const tokens = connection === undefined ? '' : connection.join(',').toLowerCase();
    const keepAlive = http10 ? /(?:^|,)\s*keep-alive\s*(?:,|$)/.test(tokens) : !/(?:^|,)\s*close\s*(?:,|$)/.test(tokens);
    const inferenceHeader = fields.get('inference-header-content-length');
    const inferenceHeaderLength = inferenceHeader?.join(', ');
    const jsonLength = inferenceHeaderLength !== undefined && /^\d{1,15}$/.test(inferenceHeaderLength) ? Number(inferenceHeaderLength) : undefined;
    const tooLarge = declaredLength > this.#transport.options.maxBodyBytes;
    const current: Current = {
      method: line[1]!,
      target,
      keepAlive: keepAlive && !tooLarge,
      authorization: fields.get('authorization')?.[0],
      inferenceHeaderLength,
      declaredLength,
      body: undefined,
      chunks: undefined,
      jsonLength,
      received: 0,
      tooLarge,
    };
    this.#current = current;
    const rest = pending.subarray(head.bytes);
    this.#pending = undefined;
    if (tooLarge) {
      // Refused unread (413 by the handler, then the connection closes): what follows is discarded.
      this.#dispatch();
      return;
    }
    if (declaredLength <= DIRECT_BODY_BYTES) current.body = alignedBody(declaredLength, jsonLength);
    else current.chunks = [];
    this.#state = 'body';
    this.#bodyData(rest);
  }

  #bodyData(chunk: Buffer): void {
    const current = this.#current!;
    const want = current.declaredLength - current.received;
    const take = Math.min(want, chunk.length);
    if (take > 0) {
      if (current.body !== undefined) current.body.set(take === chunk.length ? chunk : chunk.subarray(0, take), current.received);
      // A chunk's bytes past this body belong to the next request: keep a copy of this body's part only when gathering.
      else current.chunks!.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      current.received += take;
    }
    if (take < chunk.length) this.#append(chunk.subarray(take));
    if (current.received === current.declaredLength) this.#dispatch();
  }

  #dispatch(): void {
    const current = this.#current!;
    if (current.chunks !== undefined) {
      current.body = alignedBody(current.declaredLength, current.jsonLength);
      let offset = 0;
      for (const chunk of current.chunks) {
        current.body.set(chunk, offset);
        offset += chunk.length;
      }
      current.chunks = undefined;
    }
    this.#state = 'busy';
    this.#inFlight = true;
    this.#transport.hooks.started();
    const body = current.body;
    const request: ApiRequest = {
      method: current.method,
      target: current.target,
      authorization: current.authorization,
      inferenceHeaderLength: current.inferenceHeaderLength,
      body: (limit) => (current.tooLarge || body === undefined || body.length > limit ? Promise.reject(bodyTooLarge(current.declaredLength, limit)) : Promise.resolve(body)),
      // The body was read before the handler ran (or is refused unread).
      skipBody: () => undefined,
    };
    let answered = false;
    const socket = this.#socket;
    const responder: ApiResponder = {
      get open(): boolean {
        return !answered && !socket.destroyed;
      },
      send: (status, headers, payload) => {
        if (answered || socket.destroyed) return;
        answered = true;
        this.#answer(current, status, headers, payload);
      },
    };
    this.#transport.handler(request, responder);
  }

  #answer(current: Current, status: number, headers: Record<string, string>, payload: Buffer): void {
    const close = !current.keepAlive || this.#peerEnded || this.#transport.closing || headers.connection === 'close';
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (const name in headers) if (name !== 'connection') head += `${name}: ${headers[name]}\r\n`;
    head += `content-length: ${payload.length}\r\ndate: ${httpDate()}\r\n`;
    head += close ? 'connection: close\r\n\r\n' : this.#transport.keepAliveHeaders;
    const body = current.method === 'HEAD' ? undefined : payload;
    const socket = this.#socket;
    const flushed = (): void => this.#finish();
    if (body === undefined || body.length < COPY_BODY_BYTES) {
      const headBytes = Buffer.byteLength(head, 'latin1');
      const whole = Buffer.allocUnsafe(headBytes + (body?.length ?? 0));
      whole.write(head, 0, 'latin1');
      if (body !== undefined) whole.set(body, headBytes);
      socket.write(whole, flushed);
    } else {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body, flushed);
      socket.uncork();
    }
    this.#current = undefined;
    this.#since = performance.now();
    if (close) {
      this.#state = 'closing';
      this.#pending = undefined;
      socket.end();
      if (socket.isPaused()) socket.resume();
      return;
    }
    if (socket.writableNeedDrain) {
      this.#state = 'blocked';
      socket.once('drain', this.#onDrain);
      return;
    }
    this.#state = 'idle';
    this.#resumeParsing();
  }

  #drained(): void {
    if (this.#state !== 'blocked') return;
    this.#state = 'idle';
    this.#since = performance.now();
    if (this.#peerEnded && this.#pending === undefined) this.#socket.end();
    else this.#resumeParsing();
  }

  /** Parses what arrived while the handler ran, on a later turn (a run of pipelined requests must not recurse). */
  #resumeParsing(): void {
    if (this.#socket.isPaused()) this.#socket.resume();
    if (this.#pending === undefined || this.#parseScheduled) return;
    this.#parseScheduled = true;
    setImmediate(() => {
      this.#parseScheduled = false;
      if (this.#state === 'idle' && !this.#socket.destroyed) this.#parse();
    });
  }

  #finish(): void {
    if (!this.#inFlight) return;
    this.#inFlight = false;
    this.#transport.hooks.finished();
  }

  /** Answers a client error or timeout with a fixed response and closes. */
  #refuse(response: Buffer): void {
    this.#state = 'closing';
    this.#since = performance.now();
    this.#pending = undefined;
    this.#current = undefined;
    this.#socket.end(response);
    if (this.#socket.isPaused()) this.#socket.resume();
  }

  #handOff(pending: Buffer): void {
    const socket = this.#socket;
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    socket.off('error', this.#onError);
    socket.off('drain', this.#onDrain);
    this.#pending = undefined;
    // The bytes of this request go back in front of the stream; the node:http server reads them first.
    socket.unshift(pending);
    this.#transport.handOff(this, socket);
    if (socket.isPaused()) socket.resume();
  }

  #end(): void {
    this.#peerEnded = true;
    // allowHalfOpen (node:http's server setting): the peer finished sending; end our side once nothing is owed.
    if (this.#state === 'idle' || this.#state === 'closing' || (this.#state === 'head' && this.#pending === undefined)) this.#socket.end();
    else if (this.#state === 'head' || this.#state === 'body') this.#socket.destroy();
  }

  #close(): void {
    this.#transport.forget(this);
    this.#finish();
  }
}
