/**
 * The head of an HTTP/1.1 response (status line and header fields, RFC 9112 §4-5), for
 * the socket blob reader: the shared strict parser of src/net/http-head.ts plus the
 * status line check. Anything malformed is E_REGISTRY_PROTOCOL; the caller decides what
 * the fields mean.
 */
import { EdgevolveError } from '../errors/index.ts';
import { contentLengthOf, MAX_HEAD_BYTES, MAX_HEAD_FIELDS, parseMessageHead, singleFieldOf } from '../net/http-head.ts';

export { MAX_HEAD_BYTES, MAX_HEAD_FIELDS };

export interface ResponseHead {
  readonly status: number;
  /** Field values by lower-case name, in arrival order (a repeated field has several). */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /** Bytes of the head, CRLFCRLF included: the body starts here. */
  readonly bytes: number;
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;

function malformed(what: string): EdgevolveError {
  return new EdgevolveError('E_REGISTRY_PROTOCOL', `malformed HTTP response head: ${what}`);
}

/**
 * Parses the head at the start of `data`: undefined while the terminator has not arrived
 * (and the head is still under the limit), the head once it has. Throws on malformed input
 * and on a head over `maxBytes`.
 */
export function parseResponseHead(data: Uint8Array, maxBytes = MAX_HEAD_BYTES): ResponseHead | undefined {
  const head = parseMessageHead(data, { maxBytes, maxFields: MAX_HEAD_FIELDS }, malformed);
  if (head === undefined) return undefined;
  const status = STATUS_LINE.exec(head.startLine);
  if (status === null) throw malformed(`status line ${JSON.stringify(head.startLine.slice(0, 80))}`);
  return { status: Number(status[1]), fields: head.fields, bytes: head.bytes };
}

/** The one value of a field, undefined when absent; a field the caller relies on may not repeat. */
export function singleField(head: ResponseHead, name: string): string | undefined {
  return singleFieldOf(head.fields, name, malformed);
}

/** Content-Length as a number: exactly one field of 1*DIGIT within the safe integers; undefined when absent. */
export function contentLength(head: ResponseHead): number | undefined {
  return contentLengthOf(head.fields, malformed);
}
