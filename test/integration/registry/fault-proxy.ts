/**
 * A small HTTP proxy in front of the real registry that injects the faults a real
 * registry does not produce: dropped connections mid-blob, a 200 instead of a 206, a
 * changed ETag, a wrong Content-Range, corrupted bytes, slow delivery. This is the one
 * place a fake is right (a hostile or broken peer); everything else is the real registry.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { freePort } from '../../helpers/free-port.ts';

/** What to do to one blob GET; decided per request by the test. */
export interface BlobFault {
  /** Deliver this many body bytes, then destroy the connection. */
  dropAfter?: number;
  /** Remove Range/If-Range before forwarding: the registry answers 200 with everything. */
  ignoreRange?: boolean;
  /** Replace the ETag of the response. */
  etag?: string;
  /** Replace the Content-Range of a 206. */
  contentRange?: (original: string) => string;
  /** Flip the byte at this offset of the body. */
  corruptAt?: number;
  /** Deliver at most this many bytes per 10 ms tick. */
  throttleBytesPer10ms?: number;
}

export interface BlobRequestLog {
  readonly digest: string;
  readonly range: string | undefined;
  readonly status: number;
  /** The request's Connection field: `close` from the socket blob reader, absent or keep-alive from undici. */
  readonly connection: string | undefined;
  /** Body bytes written to the client socket. */
  bytes: number;
}

export class FaultProxy extends EventEmitter {
  readonly log: BlobRequestLog[] = [];
  /** Called for each blob GET; return the faults to inject (or undefined for none). */
  fault: (digest: string, index: number) => BlobFault | undefined = () => undefined;
  #server: Server | undefined;
  port = 0;

  constructor(private readonly upstream: { host: string; port: number }) {
    super();
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Body bytes of blob `digest` sent to clients in total. */
  bytesSent(digest: string): number {
    return this.log.filter((l) => l.digest === digest).reduce((sum, l) => sum + l.bytes, 0);
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const blob = req.method === 'GET' ? /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '') : null;
    const digest = blob?.[1];
    const fault = digest === undefined ? undefined : this.fault(digest, this.log.filter((l) => l.digest === digest).length);
    const headers: Record<string, string | string[] | undefined> = { ...req.headers, host: `${this.upstream.host}:${this.upstream.port}` };
    if (fault?.ignoreRange === true) {
      delete headers.range;
      delete headers['if-range'];
    }
    const upstream = request({ host: this.upstream.host, port: this.upstream.port, method: req.method, path: req.url, headers }, (up) => {
      const outHeaders = { ...up.headers };
      if (digest !== undefined && fault?.etag !== undefined) outHeaders.etag = fault.etag;
      if (digest !== undefined && fault?.contentRange !== undefined && typeof outHeaders['content-range'] === 'string') {
        outHeaders['content-range'] = fault.contentRange(outHeaders['content-range']);
      }
      res.writeHead(up.statusCode ?? 502, outHeaders);
      if (digest === undefined) {
        up.pipe(res);
        return;
      }
      const entry: BlobRequestLog = { digest, range: req.headers.range, status: up.statusCode ?? 0, connection: req.headers.connection, bytes: 0 };
      this.log.push(entry);
      this.emit('blob', entry);
      void this.#relay(up, res, entry, fault ?? {});
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  async #relay(up: IncomingMessage, res: ServerResponse, entry: BlobRequestLog, fault: BlobFault): Promise<void> {
    try {
      for await (const data of up) {
        let chunk = data as Buffer;
        while (chunk.byteLength > 0) {
          const take = fault.throttleBytesPer10ms === undefined ? chunk.byteLength : Math.min(chunk.byteLength, fault.throttleBytesPer10ms);
          let piece = Buffer.from(chunk.subarray(0, take));
          chunk = chunk.subarray(take);
          if (fault.corruptAt !== undefined && fault.corruptAt >= entry.bytes && fault.corruptAt < entry.bytes + piece.byteLength) {
            const i = fault.corruptAt - entry.bytes;
            piece[i] = (piece[i] ?? 0) ^ 0xff;
          }
          if (fault.dropAfter !== undefined && entry.bytes + piece.byteLength >= fault.dropAfter) {
            piece = piece.subarray(0, fault.dropAfter - entry.bytes);
            entry.bytes += piece.byteLength;
            await new Promise<void>((resolve) => res.write(piece, () => resolve()));
            res.socket?.destroy();
            up.destroy();
            return;
          }
          entry.bytes += piece.byteLength;
          if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve));
          if (fault.throttleBytesPer10ms !== undefined) await new Promise((r) => setTimeout(r, 10));
        }
      }
      res.end();
    } catch {
      res.destroy();
    }
  }
}
