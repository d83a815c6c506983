/**
 * The node:http transport of the inference API: adapts IncomingMessage/ServerResponse to
 * the transport-agnostic request and responder of exchange.ts. It is the fallback of the
 * lean transport (which hands it everything it does not parse itself) and the whole
 * transport with `server.transport: node-http`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgevolveError } from '../errors/index.ts';
import { alignedBody, bodyTooLarge } from './body.ts';
import type { ApiHandler, ApiRequest, ApiResponder, ExchangeHooks } from './exchange.ts';

/** A node:http 'request' listener that runs `handler`. */
export function nodeHttpListener(handler: ApiHandler, hooks: ExchangeHooks): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    hooks.started();
    res.once('close', () => hooks.finished());
    const header = req.headers['inference-header-content-length'];
    const request: ApiRequest = {
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      authorization: req.headers.authorization,
      inferenceHeaderLength: Array.isArray(header) ? header.join(', ') : header,
      body: (limit, jsonLength) => readBody(req, limit, jsonLength),
      skipBody: () => {
        if (!req.complete) req.resume();
      },
    };
    const responder: ApiResponder = {
      get open() {
        return !res.headersSent && !res.destroyed;
      },
      send(status, headers, body) {
        headers['content-length'] = String(body.length);
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      },
    };
    handler(request, responder);
  };
}

/** Reads the body, refusing (413) as soon as it passes `limit`, whether announced by Content-Length or streamed (chunked). */
function readBody(req: IncomingMessage, limit: number, jsonLength: number | undefined): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(bodyTooLarge(Number(declared), limit));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(bodyTooLarge(size, limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (jsonLength === undefined) {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
        return;
      }
      const body = alignedBody(size, jsonLength);
      let offset = 0;
      for (const chunk of chunks) {
        body.set(chunk, offset);
        offset += chunk.length;
      }
      resolve(body);
    });
    req.once('error', (err) => reject(new EdgevolveError('E_SERVER_BAD_REQUEST', `the request body could not be read: ${err.message}`, { cause: err })));
    req.once('aborted', () => reject(new EdgevolveError('E_SERVER_BAD_REQUEST', 'the client aborted the request')));
  });
}
