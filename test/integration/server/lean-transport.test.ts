/**
 * The lean HTTP/1.1 transport on raw sockets: what a conforming client may send it and
 * what a broken or hostile one may, against a real server and a real onnxruntime model.
 * Answers are read back with the registry's strict response-head parser.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, type Socket } from 'node:net';
import { Client } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { contentLength, parseResponseHead } from '../../../src/registry/http-head.ts';
import { createSession } from '../../../src/runtime/index.ts';
import { ModelSlots } from '../../../src/runtime/serving/index.ts';
import { createInferenceServer, type InferenceServer, type InferenceServerOptions } from '../../../src/server/index.ts';
import { gatherModelBytes } from '../../helpers/onnx-builders.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const execFileAsync = promisify(execFile);
const INFER_BODY = JSON.stringify({ inputs: [{ name: 'i', shape: [2], datatype: 'INT64', data: [2, 0] }] });
const INFER = `POST /v2/models/gather/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${INFER_BODY.length}\r\n\r\n${INFER_BODY}`;
const LIVE = 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n';

interface Answer {
  status: number;
  fields: ReadonlyMap<string, readonly string[]>;
  body: string;
}

/** A raw client connection: writes bytes as given, parses the answers as they come. */
class RawConnection {
  readonly socket: Socket;
  #received = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    this.socket.on('error', () => undefined);
  }

  async connected(): Promise<void> {
    if (this.socket.readyState !== 'open') await new Promise((resolve) => this.socket.once('connect', resolve));
  }

  /** The next `n` answers, in order; `heads` marks answers to HEAD requests (a Content-Length but no body). */
  async answers(n: number, heads: readonly boolean[] = []): Promise<Answer[]> {
    const out: Answer[] = [];
    while (out.length < n) {
      const head = parseResponseHead(this.#received);
      const length = head === undefined ? undefined : heads[out.length] === true ? 0 : (contentLength(head) ?? 0);
      if (head !== undefined && length !== undefined && this.#received.length >= head.bytes + length) {
        out.push({ status: head.status, fields: head.fields, body: this.#received.toString('utf8', head.bytes, head.bytes + length) });
        this.#received = this.#received.subarray(head.bytes + length);
        continue;
      }
      if (this.closed) throw new Error(`connection closed after ${out.length} of ${n} answers (left: ${JSON.stringify(this.#received.toString('latin1'))})`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return out;
  }

  /** Resolves once the server closed the connection, with what it sent that was not read as answers. */
  async closedWith(): Promise<string> {
    while (!this.closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.#received.toString('latin1');
  }

  /** Writes each piece as its own packet (no Nagle; the next waits for the previous one to leave). */
  async trickle(pieces: readonly string[]): Promise<void> {
    for (const piece of pieces) {
      await new Promise<void>((resolve) => this.socket.write(piece, () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

describe('lean HTTP/1.1 transport', () => {
  let slots: ModelSlots;
  let server: InferenceServer;
  let port: number;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    slots = new ModelSlots({ warmupRuns: 0 });
    await slots.add('gather').swap({ version: '1', createSession: () => createSession(gatherModelBytes()) });
    server = createInferenceServer({ transport: 'lean', models: slots, listen: { port: 0 } });
    port = (await server.listen()).port!;
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await server.close(1000);
    await slots.close();
  });

  async function open(target = port): Promise<RawConnection> {
    const connection = new RawConnection(target);
    cleanups.push(() => void connection.socket.destroy());
    await connection.connected();
    return connection;
  }

  async function serve(options: Partial<InferenceServerOptions>): Promise<number> {
    const other = createInferenceServer({ transport: 'lean', models: slots, listen: { port: 0 }, ...options });
    const address = await other.listen();
    cleanups.push(() => other.close(1000));
    return address.port!;
  }

  it.each([
    ['a bare LF ending a field line', 'GET /v2/health/live HTTP/1.1\r\nHost: x\nX: y\r\n\r\n'],
    ['obs-fold', 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'],
    ['whitespace before the colon', 'GET /v2/health/live HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['a NUL in a value', 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n'],
    ['a request line without a version', 'GET /v2/health/live\r\nHost: x\r\n\r\n'],
    ['HTTP/2.0 in the request line', 'GET /v2/health/live HTTP/2.0\r\nHost: x\r\n\r\n'],
    ['two spaces in the request line', 'GET  /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a control byte in the target', 'GET /v2/he\x01alth HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a Content-Length that is not a number', 'POST /v2/models/gather/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n'],
    ['a negative Content-Length', 'POST /v2/models/gather/infer HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
    [`a head over 16 KiB`, `GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(16 * 1024)}\r\n\r\n`],
    ['more than 100 header fields', `GET /v2/health/live HTTP/1.1\r\nHost: x\r\n${'X: y\r\n'.repeat(100)}\r\n`],
  ])('answers %s with 400 and closes the connection', async (_label, bytes) => {
    const connection = await open();
    connection.socket.write(bytes, 'latin1');
    expect(await connection.closedWith()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\nConnection: close\r\n\r\n$/);
  });

  it('answers pipelined requests in order, on one connection, a body between them', async () => {
    const connection = await open();
    connection.socket.write(LIVE + INFER + 'GET /v2/models/gather HTTP/1.1\r\nHost: x\r\n\r\n' + LIVE);
    const [live, infer, metadata, again] = await connection.answers(4);
    expect(live).toMatchObject({ status: 200, body: '{"live":true}' });
    expect(infer!.status).toBe(200);
    expect((JSON.parse(infer!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([30, 10]);
    expect(JSON.parse(metadata!.body)).toMatchObject({ name: 'gather', versions: ['1'] });
    expect(again).toMatchObject({ status: 200, body: '{"live":true}' });
    expect(live!.fields.get('connection')).toEqual(['keep-alive']);
    expect(connection.closed).toBe(false);
  });

  it('parses a head and body that arrive a few bytes per packet', async () => {
    const connection = await open();
    const pieces: string[] = [];
    for (let i = 0; i < INFER.length; i += 7) pieces.push(INFER.slice(i, i + 7));
    await connection.trickle(pieces);
    const [infer] = await connection.answers(1);
    expect((JSON.parse(infer!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([30, 10]);
  });

  it('answers HEAD with the Content-Length of the GET and no body (a pipelined GET after it parses)', async () => {
    const connection = await open();
    connection.socket.write('HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n' + LIVE);
    const [head, get] = await connection.answers(2, [true]);
    expect(head!.status).toBe(200);
    expect(head!.fields.get('content-length')).toEqual([String('{"live":true}'.length)]);
    expect(get).toMatchObject({ status: 200, body: '{"live":true}' });
  });

  it('closes after answering Connection: close, and after an HTTP/1.0 request unless it asks for keep-alive', async () => {
    const close = await open();
    close.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect((await close.answers(1))[0]!.fields.get('connection')).toEqual(['close']);
    await close.closedWith();
    const http10 = await open();
    http10.socket.write('GET /v2/health/live HTTP/1.0\r\n\r\n');
    expect((await http10.answers(1))[0]).toMatchObject({ status: 200, body: '{"live":true}' });
    await http10.closedWith();
    const kept = await open();
    kept.socket.write('GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect((await kept.answers(1))[0]!.fields.get('connection')).toEqual(['keep-alive']);
    kept.socket.write('GET /v2/health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect((await kept.answers(1))[0]!.status).toBe(200);
    expect(kept.closed).toBe(false);
  });

  it('hands a chunked request to node:http at the request boundary, which then serves the rest of the connection', async () => {
    const connection = await open();
    const half = Math.floor(INFER_BODY.length / 2);
    const chunked =
      'POST /v2/models/gather/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      `${half.toString(16)}\r\n${INFER_BODY.slice(0, half)}\r\n${(INFER_BODY.length - half).toString(16)}\r\n${INFER_BODY.slice(half)}\r\n0\r\n\r\n`;
    // A lean request first, then the chunked one and a plain one pipelined behind it.
    connection.socket.write(LIVE + chunked + LIVE);
    const [first, infer, last] = await connection.answers(3);
    expect(first!.status).toBe(200);
    expect(infer!.status).toBe(200);
    expect((JSON.parse(infer!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([30, 10]);
    expect(last).toMatchObject({ status: 200, body: '{"live":true}' });
  });

  it('hands Expect: 100-continue to node:http, which asks for the body and answers', async () => {
    const connection = await open();
    connection.socket.write(`POST /v2/models/gather/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${INFER_BODY.length}\r\n\r\n`);
    expect((await connection.answers(1))[0]!.status).toBe(100);
    connection.socket.write(INFER_BODY);
    const [infer] = await connection.answers(1);
    expect((JSON.parse(infer!.body) as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([30, 10]);
  });

  it('answers 408 and closes when a head or a body trickles past its deadline (slowloris)', async () => {
    const slow = await serve({ limits: { requestTimeoutMs: 300 } });
    const head = await open(slow);
    head.socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n');
    expect(await head.closedWith()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    const body = await open(slow);
    body.socket.write(INFER.slice(0, -10));
    expect(await body.closedWith()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    // A complete request on a fresh connection is still served.
    const ok = await open(slow);
    ok.socket.write(INFER);
    expect((await ok.answers(1))[0]!.status).toBe(200);
  });

  it('stops reading a client that never reads its answers, keeps serving others, and close() ends it', async () => {
    const stubbornPort = await serve({});
    const stubborn = await open(stubbornPort);
    stubborn.socket.pause();
    // A 404 names the path: a long path gives a long answer for little server work, so the buffers fill fast.
    const burst = `GET /${'a'.repeat(4000)} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(50);
    // Unbounded reading would drain the client's writes; a server that stops leaves them queued here.
    for (let i = 0; i < 2000 && stubborn.socket.writableLength < 1024 * 1024; i++) {
      stubborn.socket.write(burst);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(stubborn.socket.writableLength).toBeGreaterThanOrEqual(1024 * 1024);
    const other = await open(stubbornPort);
    other.socket.write(LIVE);
    expect((await other.answers(1))[0]!.status).toBe(200);
    await cleanups.pop()!(); // other
    await cleanups.pop()!(); // stubborn's socket (destroyed by us)
    await cleanups.pop()!(); // the server: close() must not wait for the stubborn client
  });

  it('keeps one connection for many requests from undici', async () => {
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1 });
    cleanups.push(() => client.close());
    let connects = 0;
    client.on('connect', () => connects++);
    for (let i = 0; i < 20; i++) {
      const response = await client.request({ path: '/v2/models/gather/infer', method: 'POST', body: INFER_BODY, headers: { 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(200);
      await response.body.text();
    }
    expect(connects).toBe(1);
  });

  it.runIf(requireTool({ name: 'curl', check: () => spawnSync('curl', ['--version']).status === 0, debianPackage: 'curl' }))(
    'keeps one connection for several URLs from curl, over HTTP/1.1 and with --http1.0 keep-alive',
    async () => {
      const url = `http://127.0.0.1:${port}`;
      // Asynchronously: the server answers on this process's event loop.
      const run = async (...args: string[]): Promise<string[]> => {
        const { stdout, stderr } = await execFileAsync('curl', ['-sS', '--max-time', '20', '-w', '%{http_code} %{num_connects}\\n', '-o', '/dev/null', ...args], { encoding: 'utf8' });
        expect(stderr).toBe('');
        return stdout.trim().split('\n');
      };
      // --next starts another transfer with its own options; curl's connection cache spans them.
      const next = ['--next', '-sS', '-w', '%{http_code} %{num_connects}\\n', '-o', '/dev/null'];
      expect(await run(`${url}/v2/health/live`, ...next, `${url}/v2/models/gather`, ...next, '--data', INFER_BODY, `${url}/v2/models/gather/infer`)).toEqual(['200 1', '200 0', '200 0']);
      expect(await run('--http1.0', '-H', 'Connection: keep-alive', `${url}/v2/health/live`, ...next, '--http1.0', '-H', 'Connection: keep-alive', `${url}/v2/health/ready`)).toEqual(['200 1', '200 0']);
    },
  );
});
