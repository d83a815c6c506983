/**
 * A strict parser for the head of an HTTP/1.1 message (start line and header fields,
 * RFC 9112 §2-5), shared by the registry's socket blob reader (response heads) and the
 * inference server's lean transport (request heads). It faces untrusted input, so it
 * accepts only what a conforming peer sends: CRLF line ends, no obs-fold, token field
 * names, no whitespace before the colon, visible-ASCII/obs-text values, a bounded size
 * and count. The caller checks the start line and decides what the fields mean, and
 * names the error (`malformed`) in its own domain.
 */

/** Largest head accepted by default, terminator included (node:http's default maxHeaderSize). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Most header fields accepted in one head by default. */
export const MAX_HEAD_FIELDS = 100;

export interface MessageHead {
  /** The request line or status line, unchecked. */
  readonly startLine: string;
  /** Field values by lower-case name, in arrival order (a repeated field has several). */
  readonly fields: ReadonlyMap<string, readonly string[]>;
  /** Bytes of the head, CRLFCRLF included: the body starts here. */
  readonly bytes: number;
}

export interface HeadLimits {
  readonly maxBytes: number;
  readonly maxFields: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?[\t ]*$/;

/**
 * Parses the head at the start of `data`: undefined while the terminator has not arrived
 * (and the head is still under the limit), the head once it has. Throws `malformed(what)`
 * on a bad field line, too many fields, and a head over `limits.maxBytes`.
 */
export function parseMessageHead(data: Uint8Array, limits: HeadLimits, malformed: (what: string) => Error): MessageHead | undefined {
  const view = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, limits.maxBytes));
  const end = view.indexOf(CRLFCRLF);
  if (end < 0) {
    if (data.byteLength >= limits.maxBytes) throw malformed(`no end of head within ${limits.maxBytes} bytes`);
    return undefined;
  }
  // latin1 keeps every byte as one char, so obs-text and stray control bytes stay visible to the checks.
  const lines = view.toString('latin1', 0, end).split('\r\n');
  if (lines.length - 1 > limits.maxFields) throw malformed(`more than ${limits.maxFields} header fields`);
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
  return { startLine: lines[0] ?? '', fields, bytes: end + CRLFCRLF.byteLength };
}

/** The one value of a field, undefined when absent; a field the caller relies on may not repeat. */
export function singleFieldOf(fields: ReadonlyMap<string, readonly string[]>, name: string, malformed: (what: string) => Error): string | undefined {
  const values = fields.get(name);
  if (values === undefined) return undefined;
  if (values.length !== 1) throw malformed(`${values.length} ${name} fields`);
  return values[0];
}

/** Content-Length as a number: exactly one field of 1*DIGIT within the safe integers; undefined when absent. */
export function contentLengthOf(fields: ReadonlyMap<string, readonly string[]>, malformed: (what: string) => Error): number | undefined {
  const value = singleFieldOf(fields, 'content-length', malformed);
  if (value === undefined) return undefined;
  const length = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(length)) throw malformed(`Content-Length ${JSON.stringify(value.slice(0, 40))}`);
  return length;
}
