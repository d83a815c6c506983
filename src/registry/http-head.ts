/**
 * A strict parser for the head of an HTTP/1.1 response (status line and header fields,
 * RFC 9112 §4-5), for the socket blob reader. It faces untrusted input, so it accepts
 * only what a conforming server sends: CRLF line ends, no obs-fold, token field names,
 * no whitespace before the colon, visible-ASCII/obs-text values, a bounded size and count.
 * Anything else is E_REGISTRY_PROTOCOL; the caller decides what the fields mean.
 */
import { EdgevolveError } from '../errors/index.ts';

/** Largest head accepted, terminator included; a registry's blob answer needs well under 2 KiB. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Most header fields accepted in one head. */
export const MAX_HEAD_FIELDS = 100;

export interface ResponseHead {
  readonly status: number;
  /** Field values by lower-case name, in arrival order (a repeated field has several). */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /** Bytes of the head, CRLFCRLF included: the body starts here. */
  readonly bytes: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?[\t ]*$/;

function malformed(what: string): EdgevolveError {
  return new EdgevolveError('E_REGISTRY_PROTOCOL', `malformed HTTP response head: ${what}`);
}

/**
 * Parses the head at the start of `data`: undefined while the terminator has not arrived
 * (and the head is still under the limit), the head once it has. Throws on malformed input
 * and on a head over `maxBytes`.
 */
export function parseResponseHead(data: Uint8Array, maxBytes = MAX_HEAD_BYTES): ResponseHead | undefined {
  const view = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, maxBytes));
  const end = view.indexOf(CRLFCRLF);
  if (end < 0) {
    if (data.byteLength >= maxBytes) throw malformed(`no end of head within ${maxBytes} bytes`);
    return undefined;
  }
  // latin1 keeps every byte as one char, so obs-text and stray control bytes stay visible to the checks.
  const lines = view.toString('latin1', 0, end).split('\r\n');
  const statusLine = lines[0] ?? '';
  const status = STATUS_LINE.exec(statusLine);
  if (status === null) throw malformed(`status line ${JSON.stringify(statusLine.slice(0, 80))}`);
  if (lines.length - 1 > MAX_HEAD_FIELDS) throw malformed(`more than ${MAX_HEAD_FIELDS} header fields`);
  const fields = new Map<string, string[]>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    // A bare LF, obs-fold (a line starting with SP/HTAB), a space before the colon, NUL or CR in a value all fail here.
    const field = FIELD.exec(line);
    if (field === null) throw malformed(`header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = (field[1] ?? '').toLowerCase();
    const values = fields.get(name);
    if (values === undefined) fields.set(name, [field[2] ?? '']);
    else values.push(field[2] ?? '');
  }
  return { status: Number(status[1]), fields, bytes: end + CRLFCRLF.byteLength };
}

/** The one value of a field, undefined when absent; a field the caller relies on may not repeat. */
export function singleField(head: ResponseHead, name: string): string | undefined {
  const values = head.fields.get(name);
  if (values === undefined) return undefined;
  if (values.length !== 1) throw malformed(`${values.length} ${name} fields`);
  return values[0];
}

/** Content-Length as a number: exactly one field of 1*DIGIT within the safe integers; undefined when absent. */
export function contentLength(head: ResponseHead): number | undefined {
  const value = singleField(head, 'content-length');
  if (value === undefined) return undefined;
  const length = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(length)) throw malformed(`Content-Length ${JSON.stringify(value.slice(0, 40))}`);
  return length;
}
