/**
 * The fast path for one blob GET over http or https: a node:net (or node:tls) socket whose reads land
 * directly in batch buffers the blob writer owns (`onread` with a buffer supplier), so a
 * byte is copied once, from the kernel into the buffer that is hashed and written whole.
 * undici's receive path (a fresh buffer per read, a copy into llhttp's memory, a body
 * stream) cost 3.6 ms CPU/MB here against 0.5 for such a socket (README "Numbers").
 *
 * It speaks only what a blob answer needs: one request with `Connection: close`, a strict
 * head (http-head.ts), a body of exactly Content-Length bytes. The caller looks at the head
 * and either takes the body or declines; a decline, and any failure before the head is
 * complete, returns 'declined' so the caller can use the general client instead. After the
 * head, a short or broken body hands the bytes already received to the sink, then fails
 * with E_REGISTRY_UNREACHABLE (retryable: a resume asks for the rest).
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { EdgevolveError } from '../errors/index.ts';
import { MAX_HEAD_BYTES, parseResponseHead, type ResponseHead } from './http-head.ts';

/** Where received bytes go: buffers lent by the blob writer and handed back full. */
export interface BatchSink {
  /** A buffer to receive into (at least 64 KiB), owned by the writer. */
  batchBuffer(): Buffer;
  /** Takes `buffer[0, length)` (hash, write) and the buffer back; resolves once the write is under way. */
  writeBatch(buffer: Buffer, length: number): Promise<void>;
}

export interface SocketGetRequest {
  readonly url: URL;
  /** Request fields besides Host and Connection; values must be visible ASCII. */
  readonly headers: Readonly<Record<string, string>>;
  /** No byte for this long fails the request. */
  readonly idleTimeoutMs: number;
  readonly signal?: AbortSignal;
  /** For https: the same trust settings the general client uses (CA, client certificate, verification). */
  readonly tls?: SocketTls;
}

/** TLS settings for an https blob GET. */
export interface SocketTls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly rejectUnauthorized: boolean;
}

/** What the caller makes of the head: take a body of this many bytes, or decline. */
export type HeadDecision = { readonly bodyBytes: number } | 'decline';

export type SocketGetOutcome = { readonly kind: 'done' } | { readonly kind: 'declined'; readonly reason: string };

const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MIN_BATCH_BYTES = 64 * 1024;

/** The request head, or undefined when a field would need escaping (then the general client sends it, or refuses it). */
export function requestHead(url: URL, headers: Readonly<Record<string, string>>): string | undefined {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) return undefined;
    lines.push(`${name}: ${value}`);
  }
  lines.push('Connection: close', '', '');
  return lines.join('\r\n');
}

/**
 * One GET on a new connection. `onHead` runs with the socket paused; it may do I/O (check
 * ranges, record the ETag) before the first body byte reaches the sink.
 *
 * INVARIANTS: reads land in `buffer.subarray(used)`, and Node takes that subarray right
 * after each read callback, so `buffer` and `used` are final when a callback returns. A
 * full buffer (or the last byte) is swapped for a fresh one in the callback, and reading
 * pauses until `writeBatch` has the previous write done and this one under way: at most
 * three buffers per download (receiving, queued, being written). One `writeBatch` at a
 * time (`writing`). A paused TLS socket may still deliver bytes it had decrypted: they wait
 * in the buffer; should they ever fill it, the next read lands in `overrun` and the download
 * fails retryably instead of reading into a zero-length buffer. `settle` runs once.
 */
export function socketGet(request: SocketGetRequest, sink: BatchSink, onHead: (head: ResponseHead) => Promise<HeadDecision>): Promise<SocketGetOutcome> {
  const head = requestHead(request.url, request.headers);
  if (head === undefined) return Promise.resolve({ kind: 'declined', reason: 'a request field needs characters the socket reader does not send' });
  let buffer = sink.batchBuffer();
  if (buffer.byteLength < MIN_BATCH_BYTES) return Promise.reject(new EdgevolveError('E_INTERNAL', `batch buffers must hold at least ${MIN_BATCH_BYTES} bytes`));
  if (request.signal?.aborted === true) return Promise.reject(new EdgevolveError('E_REGISTRY_UNREACHABLE', `${request.url.href}: aborted`, { cause: request.signal.reason }));
  const overrun = Buffer.alloc(1);
  return new Promise<SocketGetOutcome>((resolve, reject) => {
    let used = 0;
    let phase: 'head' | 'deciding' | 'body' | 'settled' = 'head';
    let bodyBytes = 0;
    /** Body bytes handed to the sink so far. */
    let handed = 0;
    /** A writeBatch is under way; the sink gets the next one only after it. */
    let writing = false;
    /** An interruption while onHead runs or a batch is being handed over: applied after, so the writer is never used by two paths at once. */
    let deferred: (() => void) | undefined;

    const runDeferred = (): void => {
      const next = deferred;
      deferred = undefined;
      next?.();
    };
    const settle = (outcome: SocketGetOutcome | EdgevolveError): void => {
      if (phase === 'settled') return;
      phase = 'settled';
      request.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (outcome instanceof EdgevolveError) reject(outcome);
      else resolve(outcome);
    };
    /** A failure after the head: what arrived goes to the sink first, so a resume does not fetch it again. */
    const failBody = (error: EdgevolveError): void => {
      if (phase === 'settled') return;
      socket.destroy();
      if (writing) {
        deferred ??= () => failBody(error);
        return;
      }
      const keep = used;
      used = 0;
      if (keep === 0) return settle(error);
      writing = true;
      sink.writeBatch(buffer, keep).then(
        () => settle(error),
        (err: unknown) => settle(err instanceof EdgevolveError ? err : error),
      );
    };
    const interrupted = (code: string | undefined, what: string, cause?: unknown): void => {
      if (phase === 'deciding') {
        deferred ??= () => interrupted(code, what, cause);
        return;
      }
      if (phase === 'head') return settle({ kind: 'declined', reason: `${what} before the response head` });
      if (phase !== 'body') return;
      failBody(
        new EdgevolveError('E_REGISTRY_UNREACHABLE', `${request.url.href}: ${what} after ${handed + used} of ${bodyBytes} body bytes${code === undefined ? '' : ` (${code})`}`, {
          ...(cause === undefined ? {} : { cause }),
          context: { received: handed + used, bodyBytes, ...(code === undefined ? {} : { code }) },
        }),
      );
    };
    // The same class as an aborted undici request: the retry loop sees the signal and stops.
    const onAbort = (): void => {
      if (phase === 'head') settle(new EdgevolveError('E_REGISTRY_UNREACHABLE', `${request.url.href}: aborted`, { cause: request.signal?.reason }));
      else interrupted('ABORT_ERR', 'aborted', request.signal?.reason);
    };

    /** Hands the full buffer (or the last bytes) to the sink, then reads on into a fresh one. */
    const handOff = (): void => {
      const full = buffer;
      const length = used;
      used = 0;
      handed += length;
      writing = true;
      // Switched now, not once the write is under way: Node asks for the next read's buffer right after this
      // callback. Even after the last byte (then a small one, for bytes beyond the body, which are refused):
      // a stray read must never land in the buffer being written.
      buffer = handed < bodyBytes ? sink.batchBuffer() : Buffer.allocUnsafe(MIN_BATCH_BYTES);
      sink.writeBatch(full, length).then(
        () => {
          writing = false;
          if (deferred !== undefined) return runDeferred();
          if (phase !== 'body') return;
          if (handed === bodyBytes && used === 0) return settle({ kind: 'done' });
          // Bytes a TLS socket delivered meanwhile are in the fresh buffer already (beyond the body: refused there).
          if (onBody()) socket.resume();
        },
        (err: unknown) => settle(err instanceof EdgevolveError ? err : new EdgevolveError('E_IO', `blob write failed: ${String(err)}`, { cause: err })),
      );
    };

    /** After a body read: false pauses reading (a full buffer, the end, or a batch being handed over). */
    const onBody = (): boolean => {
      if (handed + used > bodyBytes) {
        used = bodyBytes - handed; // the declared body is kept; the surplus is not
        failBody(new EdgevolveError('E_REGISTRY_PROTOCOL', `${request.url.href}: more body bytes than the ${bodyBytes} of Content-Length`, { context: { bodyBytes } }));
        return false;
      }
      if (writing) return false;
      if (handed + used === bodyBytes || used === buffer.byteLength) {
        handOff();
        return false;
      }
      return true;
    };

    const onHeadBytes = (): boolean => {
      let parsed: ResponseHead | undefined;
      try {
        parsed = parseResponseHead(buffer.subarray(0, used));
      } catch (err) {
        settle(err instanceof EdgevolveError ? err : new EdgevolveError('E_INTERNAL', String(err), { cause: err }));
        return false;
      }
      if (parsed === undefined) return true;
      phase = 'deciding';
      const status = parsed.status;
      // The first body bytes arrived with the head: move them to the start of the batch (before Node asks for the next buffer).
      buffer.copyWithin(0, parsed.bytes, used);
      used -= parsed.bytes;
      onHead(parsed).then(
        (decision) => {
          if (phase !== 'deciding') return;
          if (decision === 'decline') return settle({ kind: 'declined', reason: `status ${status}` });
          phase = 'body';
          bodyBytes = decision.bodyBytes;
          if (deferred !== undefined) return runDeferred();
          if (onBody()) socket.resume();
        },
        (err: unknown) => settle(err instanceof EdgevolveError ? err : new EdgevolveError('E_INTERNAL', String(err), { cause: err })),
      );
      return false;
    };

    const host = request.url.hostname.replace(/^\[(.*)\]$/, '$1');
    const https = request.url.protocol === 'https:';
    const onread = {
      buffer: (): Buffer => {
        if (used === buffer.byteLength) return overrun;
        // While the head is read, at most MAX_HEAD_BYTES per read: the body bytes that come with it leave room in the buffer.
        return phase === 'head' ? buffer.subarray(used, Math.min(buffer.byteLength, used + MAX_HEAD_BYTES)) : buffer.subarray(used);
      },
      callback: (n: number, into: Buffer): boolean => {
        if (phase === 'settled') return false;
        if (into === overrun) {
          interrupted('EOVERFLOW', 'more bytes arrived while paused than the receive buffer holds');
          return false;
        }
        used += n;
        if (phase === 'head') return onHeadBytes();
        if (phase === 'deciding') return false;
        return onBody();
      },
    };
    const port = Number(request.url.port === '' ? (https ? 443 : 80) : request.url.port);
    // tls.connect takes onread as net.connect does (Node docs, tls.connect options); @types/node does not list it.
    const tlsOptions: ConnectionOptions & { onread: typeof onread } = { host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...request.tls, onread };
    const socket: Socket = https ? connectTls(tlsOptions) : connect({ host, port, onread });
    request.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.setTimeout(request.idleTimeoutMs, () => interrupted('ETIMEDOUT', `no data for ${request.idleTimeoutMs} ms`));
    socket.on(https ? 'secureConnect' : 'connect', () => socket.write(head));
    socket.on('error', (err: NodeJS.ErrnoException) => interrupted(err.code, 'connection failed', err));
    socket.on('end', () => interrupted(undefined, 'connection closed'));
  });
}
