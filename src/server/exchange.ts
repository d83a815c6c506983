/**
 * What the inference API's handler sees of a request and how it answers, whichever
 * transport carried it (node:http or the lean HTTP/1.1 transport): the few fields the
 * API reads, the body on demand, and one answer of status, headers and body.
 */

/** One request as the API reads it. */
export interface ApiRequest {
  readonly method: string;
  /** The request target (origin-form: path and query). */
  readonly target: string;
  readonly authorization: string | undefined;
  /** Raw Inference-Header-Content-Length (repeated fields joined with ", ", as node:http does). */
  readonly inferenceHeaderLength: string | undefined;
  /**
   * The whole body in one buffer, refused with E_SERVER_BODY_TOO_LARGE past `limit` bytes.
   * With `jsonLength` (the binary-data extension) the buffer is placed so that the bytes
   * after the JSON start 8-byte aligned: the decoder views binary tensors in place.
   */
  body(limit: number, jsonLength: number | undefined): Promise<Buffer>;
  /** Lets a body the route does not read go, so the connection can carry the next request. */
  skipBody(): void;
}

/** The answer side of one request: at most one answer is sent. */
export interface ApiResponder {
  /** False once an answer was sent or the connection is gone. */
  readonly open: boolean;
  /**
   * Sends status, headers (lower-case names; Content-Length is added) and body; to a HEAD
   * request without the body. `connection: close` in `headers` ends the connection after it.
   */
  send(status: number, headers: Record<string, string>, body: Buffer): void;
}

/** Called by a transport for every request; it must answer through the responder and never throw. */
export type ApiHandler = (request: ApiRequest, responder: ApiResponder) => void;

/** Counts requests from arrival until their answer left (or the connection died): what close() waits for. */
export interface ExchangeHooks {
  started(): void;
  finished(): void;
}
