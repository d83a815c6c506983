/**
 * A KServe v2 client over undici with a keep-alive connection pool, on TCP or a unix
 * socket: what `edgevolve infer` and the serving benchmark use. JSON or binary tensors.
 */
import { Agent, request } from 'undici';
import { EdgevolveError } from '../errors/index.ts';
import type { TensorValue } from '../onnx/tensor.ts';
import { decodeInferenceResponse, type DecodedResponse } from './decode.ts';
import { encodeInferenceRequest } from './encode.ts';

export interface KserveClientOptions {
  /** http://host:port; with `socketPath` only the path part of requests matters. Default http://127.0.0.1:8080. */
  readonly url?: string;
  readonly socketPath?: string;
  readonly token?: string;
  /** Connections kept open. Default 8. */
  readonly connections?: number;
  /** Per-request deadline, in milliseconds. Default 60000. */
  readonly timeoutMs?: number;
}

export interface ClientInferOptions {
  /** Send inputs and ask for outputs as binary data (binary-data extension) instead of JSON. */
  readonly binary?: boolean;
  readonly version?: string;
  readonly id?: string;
  readonly outputs?: readonly string[];
}

export class KserveClient {
  readonly #base: string;
  readonly #socketPath: string | undefined;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(options: KserveClientOptions = {}) {
    this.#base = (options.socketPath !== undefined ? 'http://localhost' : (options.url ?? 'http://127.0.0.1:8080')).replace(/\/+$/, '');
    this.#socketPath = options.socketPath;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#agent = new Agent({
      connections: options.connections ?? 8,
      keepAliveTimeout: 60_000,
      ...(options.socketPath !== undefined ? { connect: { socketPath: options.socketPath } } : {}),
    });
    this.#headers = options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {};
  }

  async infer(model: string, inputs: Readonly<Record<string, TensorValue>>, options: ClientInferOptions = {}): Promise<DecodedResponse> {
    const binary = options.binary === true;
    const encoded = encodeInferenceRequest(
      Object.entries(inputs).map(([name, value]) => ({ name, value, binary })),
      {
        ...(options.id !== undefined ? { id: options.id } : {}),
        ...(options.outputs !== undefined ? { outputs: options.outputs.map((name) => ({ name })) } : {}),
        binaryDataOutput: binary,
      },
    );
    const headers: Record<string, string> = { ...this.#headers, 'content-type': encoded.jsonLength === undefined ? 'application/json' : 'application/octet-stream' };
    if (encoded.jsonLength !== undefined) headers['inference-header-content-length'] = String(encoded.jsonLength);
    const path = `/v2/models/${encodeURIComponent(model)}${options.version !== undefined ? `/versions/${encodeURIComponent(options.version)}` : ''}/infer`;
    const { status, body, header } = await this.#request('POST', path, encoded.body, headers);
    if (status !== 200) throw remoteError(status, body, path);
    const lengthHeader = header('inference-header-content-length');
    try {
      return decodeInferenceResponse(body, lengthHeader === undefined ? undefined : Number(lengthHeader));
    } catch (err) {
      throw new EdgevolveError('E_INFER_CLIENT', `the server's answer is not a KServe v2 response: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** GET of a JSON endpoint (/v2, /v2/models/<name>, ...); throws E_INFER_REMOTE on a non-200 status. */
  async getJson(path: string): Promise<unknown> {
    const { status, body } = await this.#request('GET', path, undefined, this.#headers);
    if (status !== 200) throw remoteError(status, body, path);
    return JSON.parse(body.toString('utf8')) as unknown;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #request(
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | undefined,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: Buffer; header: (name: string) => string | undefined }> {
    try {
      const response = await request(`${this.#base}${path}`, {
        method,
        headers,
        body,
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      return {
        status: response.statusCode,
        body: bytes,
        header: (name) => {
          const value = response.headers[name];
          return Array.isArray(value) ? value[0] : value;
        },
      };
    } catch (err) {
      // Over a socket the URL's host is a placeholder: name the socket, where the operator has to look.
      const where = this.#socketPath !== undefined ? `on the unix socket ${this.#socketPath} (${method} ${path})` : `at ${this.#base}${path}`;
      throw new EdgevolveError('E_INFER_CLIENT', `cannot reach the inference server ${where}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        context: { path, ...(this.#socketPath !== undefined ? { socketPath: this.#socketPath } : {}) },
      });
    }
  }
}

function remoteError(status: number, body: Buffer, path: string): EdgevolveError {
  let message = body.toString('utf8').slice(0, 500);
  let code: unknown;
  try {
    const parsed = JSON.parse(message) as { error?: unknown; code?: unknown };
    if (typeof parsed.error === 'string') message = parsed.error;
    code = parsed.code;
  } catch {
    // Not JSON: keep the text.
  }
  return new EdgevolveError('E_INFER_REMOTE', `HTTP ${status}: ${message}`, { context: { status, path, remoteCode: code } });
}
