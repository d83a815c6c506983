import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { contentLength, MAX_HEAD_BYTES, MAX_HEAD_FIELDS, parseResponseHead, singleField } from '../../../src/registry/http-head.ts';
import { requestHead } from '../../../src/registry/socket-blob.ts';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const protocolError = (e: unknown): boolean => isEdgevolveError(e, 'E_REGISTRY_PROTOCOL');

describe('parseResponseHead', () => {
  it('parses status and fields (names lower-cased, repeats kept in order) and says where the body starts', () => {
    const text = 'HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nETag:  "abc" \r\nX-Multi: a\r\nx-multi: b\r\nX-Empty:\r\n\r\nBODY';
    const head = parseResponseHead(bytes(text));
    expect(head?.status).toBe(206);
    expect(head?.bytes).toBe(text.length - 4);
    expect(head?.fields.get('etag')).toEqual(['"abc"']);
    expect(head?.fields.get('x-multi')).toEqual(['a', 'b']);
    expect(head?.fields.get('x-empty')).toEqual(['']);
    expect(contentLength(head!)).toBe(10);
  });

  it('accepts HTTP/1.0, an empty reason and obs-text in a reason or value', () => {
    expect(parseResponseHead(bytes('HTTP/1.0 200 \r\n\r\n'))?.status).toBe(200);
    expect(parseResponseHead(bytes('HTTP/1.1 200\r\n\r\n'))?.status).toBe(200);
    expect(parseResponseHead(bytes('HTTP/1.1 200 \xe9t\xe9\r\nX: caf\xe9\r\n\r\n'))?.fields.get('x')).toEqual(['caf\xe9']);
  });

  it('waits (undefined) while the end of the head has not arrived', () => {
    expect(parseResponseHead(bytes('HTTP/1.1 200 OK\r\nContent-Length: 1'))).toBeUndefined();
    expect(parseResponseHead(bytes('HTTP/1.1 200 OK\r\n\r'))).toBeUndefined();
    expect(parseResponseHead(bytes(''))).toBeUndefined();
  });

  it.each([
    ['HTTP/2 status line', 'HTTP/2 200 OK\r\n\r\n'],
    ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n'],
    ['lower-case protocol', 'http/1.1 200 OK\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['a status below 100', 'HTTP/1.1 099 OK\r\n\r\n'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n'],
    ['a control byte in the reason', 'HTTP/1.1 200 O\x01K\r\n\r\n'],
    ['a bare LF ending a field line', 'HTTP/1.1 200 OK\r\nContent-Length: 1\nX: y\r\n\r\n'],
    ['a bare CR in a value', 'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n'],
    ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n'],
    ['obs-fold (a continuation line)', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n'],
    ['obs-fold with a tab', 'HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n'],
    ['a line without a colon', 'HTTP/1.1 200 OK\r\nContent-Length 1\r\n\r\n'],
    ['an empty field name', 'HTTP/1.1 200 OK\r\n: 1\r\n\r\n'],
    ['a separator in the field name', 'HTTP/1.1 200 OK\r\nContent(Length): 1\r\n\r\n'],
    ['a non-ASCII field name', 'HTTP/1.1 200 OK\r\nL\xe4nge: 1\r\n\r\n'],
  ])('refuses %s with E_REGISTRY_PROTOCOL', (_name, text) => {
    expect(() => parseResponseHead(bytes(text))).toThrow(expect.toSatisfy(protocolError));
  });

  it(`refuses a head without its end within ${MAX_HEAD_BYTES} bytes, and one that ends just past the limit`, () => {
    const long = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}`;
    expect(() => parseResponseHead(bytes(long))).toThrow(expect.toSatisfy(protocolError));
    const justOver = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD_BYTES - 23)}\r\n\r\n`;
    expect(justOver.length).toBe(MAX_HEAD_BYTES + 1);
    expect(() => parseResponseHead(bytes(justOver))).toThrow(expect.toSatisfy(protocolError));
    expect(parseResponseHead(bytes(justOver.slice(0, -5) + '\r\n\r\n'))?.bytes).toBe(MAX_HEAD_BYTES);
  });

  it(`refuses more than ${MAX_HEAD_FIELDS} fields`, () => {
    const fields = (n: number): string => `HTTP/1.1 200 OK\r\n${'X: y\r\n'.repeat(n)}\r\n`;
    expect(parseResponseHead(bytes(fields(MAX_HEAD_FIELDS)))?.fields.get('x')).toHaveLength(MAX_HEAD_FIELDS);
    expect(() => parseResponseHead(bytes(fields(MAX_HEAD_FIELDS + 1)))).toThrow(expect.toSatisfy(protocolError));
  });
});

describe('contentLength and singleField', () => {
  const head = (fields: string): NonNullable<ReturnType<typeof parseResponseHead>> => parseResponseHead(bytes(`HTTP/1.1 200 OK\r\n${fields}\r\n`))!;

  it('reads one decimal Content-Length; absent is undefined', () => {
    expect(contentLength(head('Content-Length: 0\r\n'))).toBe(0);
    expect(contentLength(head('Content-Length: 104857600\r\n'))).toBe(104857600);
    expect(contentLength(head('X: 1\r\n'))).toBeUndefined();
  });

  it.each([
    ['repeated, even with the same value', 'Content-Length: 5\r\nContent-Length: 5\r\n'],
    ['a list', 'Content-Length: 5, 5\r\n'],
    ['signed', 'Content-Length: +5\r\n'],
    ['negative', 'Content-Length: -5\r\n'],
    ['hexadecimal', 'Content-Length: 0x10\r\n'],
    ['an exponent', 'Content-Length: 1e3\r\n'],
    ['empty', 'Content-Length:\r\n'],
    ['beyond 2^53', 'Content-Length: 9007199254740993\r\n'],
    ['17 digits', 'Content-Length: 00000000000000001\r\n'],
  ])('refuses a Content-Length that is %s', (_name, fields) => {
    expect(() => contentLength(head(fields))).toThrow(expect.toSatisfy(protocolError));
  });

  it('refuses a repeated field the caller relies on, and returns the single value otherwise', () => {
    expect(singleField(head('ETag: "a"\r\n'), 'etag')).toBe('"a"');
    expect(singleField(head('X: 1\r\n'), 'etag')).toBeUndefined();
    expect(() => singleField(head('ETag: "a"\r\nETag: "b"\r\n'), 'etag')).toThrow(expect.toSatisfy(protocolError));
  });
});

describe('requestHead', () => {
  it('writes the request line, Host, the fields and Connection: close', () => {
    const text = requestHead(new URL('http://127.0.0.1:5000/v2/a/b/blobs/sha256:00?x=1'), { range: 'bytes=5-', 'if-range': '"e"' });
    expect(text).toBe('GET /v2/a/b/blobs/sha256:00?x=1 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nrange: bytes=5-\r\nif-range: "e"\r\nConnection: close\r\n\r\n');
  });

  it('declines (undefined) a field that would inject a line, rather than sending it', () => {
    expect(requestHead(new URL('http://h/p'), { authorization: 'Bearer x\r\nX-Evil: 1' })).toBeUndefined();
    expect(requestHead(new URL('http://h/p'), { 'bad name': 'x' })).toBeUndefined();
  });
});
