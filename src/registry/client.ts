/**
 * A client for one repository of an OCI distribution registry (distribution-spec v1.1):
 * ping, the anonymous/basic/bearer challenge flow, manifests with content negotiation,
 * resumable digest-verified blob downloads, monolithic and chunked uploads, retries with
 * backoff and jitter, and a cap on concurrent transfers.
 */
import { createReadStream } from 'node:fs';
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { EdgevolveError, isEdgevolveError } from '../errors/index.ts';
import type { Clock, Random } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { BlobWriter } from '../store/blobs.ts';
import { parseDigest, type Digest } from '../store/digest.ts';
import { basicAuthorization, parseChallenge, type Credentials } from './auth.ts';
import type { BlobContent, ContentSource, ContentTarget } from './content.ts';
import { contentLength, singleField } from './http-head.ts';
import { DEFAULT_MAX_MANIFEST_BYTES, parseManifest, sha256Digest, type Descriptor, type ParsedManifest } from './manifest.ts';
import { MANIFEST_ACCEPT } from './media-types.ts';
import { DEFAULT_RETRY, Semaphore, withRetry, type RetryOptions } from './retry.ts';
import { socketGet, type SocketGetOutcome, type SocketTls } from './socket-blob.ts';

export interface TlsOptions {
  /** PEM CA bundle to trust instead of the system roots. */
  readonly ca?: string | Buffer;
  /** PEM client certificate and key for mTLS. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export interface RegistryClientOptions {
  /** `host[:port]`. */
  readonly registry: string;
  readonly repository: string;
  /** Speak http:// (loopback and test registries); never the default. */
  readonly plainHttp?: boolean;
  /** Do not verify the registry's TLS certificate (the own dispatcher and the socket blob reader). */
  readonly insecure?: boolean;
  readonly credentials?: Credentials;
  /** Used by the own dispatcher, and by the socket blob reader over https (which it enables when a dispatcher is injected). */
  readonly tls?: TlsOptions;
  /** Injected transport; by default an EnvHttpProxyAgent (HTTP(S)_PROXY, NO_PROXY) with the TLS options. */
  readonly dispatcher?: Dispatcher;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger?: Logger;
  readonly retry?: RetryOptions;
  readonly maxManifestBytes?: number;
  readonly maxBlobBytes?: number;
  /** Concurrent blob transfers through this client. */
  readonly concurrency?: number;
  /** Blobs larger than this are uploaded in PATCH chunks of `chunkBytes`. */
  readonly chunkedUploadThreshold?: number;
  readonly chunkBytes?: number;
  readonly userAgent?: string;
  /**
   * Receive blob bodies on a bare socket into the store's batch buffers (socket-blob.ts)
   * when the dispatcher is a direct undici Agent (no proxy) and, for https, the TLS
   * settings are known (no injected dispatcher, or `tls` given with it); default true.
   * Anything that reader does not handle goes through undici as before.
   */
  readonly fastBlobReader?: boolean;
}

/** A dispatcher honouring proxy variables and custom TLS (CA, client certificate). */
export function createDispatcher(tls: TlsOptions = {}, connections = 16, insecure = false): Dispatcher {
  const tlsOptions = {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(insecure ? { rejectUnauthorized: false } : {}),
  };
  const hasProxy = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'].some((k) => (process.env[k] ?? '') !== '');
  if (!hasProxy) return new Agent({ connect: tlsOptions, connections });
  // proxyTunnel false: http:// registries go through the proxy as absolute-form requests, as curl does
  // (many proxies allow CONNECT only to 443); https:// is always tunnelled.
  return new EnvHttpProxyAgent({ connect: tlsOptions, requestTls: tlsOptions, connections, proxyTunnel: false });
}

type Headers = Record<string, string>;
type Body = Buffer | (() => NodeJS.ReadableStream) | undefined;

interface Response {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Dispatcher.ResponseData['body'];
}

/** The part of a blob answer the strict checks look at, from undici or from the socket reader. */
interface BlobAnswer {
  readonly statusCode: number;
  header(name: string): string | undefined;
}

/** Idle time after which a request or a body read fails (undici's headersTimeout and bodyTimeout are the same). */
const IDLE_TIMEOUT_MS = 60_000;

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** OpenSSL verification codes and Node's TLS error codes: a configuration problem, not a flaky network. */
const TLS_CODE_RE = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_OSSL_)/;
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

function header(res: Response, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Classifies a transport failure: resets, refusals and undici socket/timeout errors may succeed later. */
function networkError(err: unknown, what: string): EdgevolveError {
  if (err instanceof EdgevolveError) return err;
  const code = (err as { code?: string }).code ?? '';
  if (TLS_CODE_RE.test(code)) {
    return new EdgevolveError('E_REGISTRY_TLS', `${what}: TLS failed: ${(err as Error).message} (${code})`, { cause: err, context: { code } });
  }
  const retryable = NETWORK_CODES.has(code) || code.startsWith('UND_ERR_');
  return new EdgevolveError(retryable ? 'E_REGISTRY_UNREACHABLE' : 'E_REGISTRY_PROTOCOL', `${what}: ${(err as Error).message}${code === '' ? '' : ` (${code})`}`, {
    cause: err,
    context: { code },
  });
}

export class RegistryClient implements ContentSource, ContentTarget {
  readonly #o: RegistryClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #base: string;
  readonly #tokens = new Map<string, { authorization: string; expiresAt: number }>();
  readonly #transfers: Semaphore;
  /** Set once the registry asked for basic auth: later requests send credentials up front instead of taking a 401 each. */
  #basicAccepted = false;
  /** Blob bodies may be read by socketGet: a direct connection whose TLS settings are known (see fastBlobReader). */
  readonly #socketReader: boolean;
  readonly #socketTls: SocketTls | undefined;

  constructor(options: RegistryClientOptions) {
    this.#o = options;
    this.#dispatcher = options.dispatcher ?? createDispatcher(options.tls, 16, options.insecure === true);
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#base = `${options.plainHttp === true ? 'http' : 'https'}://${options.registry}`;
    this.#transfers = new Semaphore(options.concurrency ?? 4);
    // Only a plain Agent connects directly; EnvHttpProxyAgent, ProxyAgent and mocks route elsewhere.
    // Over https the socket must trust what the dispatcher trusts: known only from our own options.
    const tlsKnown = options.plainHttp !== true && (options.dispatcher === undefined || options.tls !== undefined);
    this.#socketTls = tlsKnown ? { ...options.tls, rejectUnauthorized: options.insecure !== true } : undefined;
    this.#socketReader = options.fastBlobReader !== false && this.#dispatcher instanceof Agent && (options.plainHttp === true || tlsKnown);
  }

  get name(): string {
    return `${this.#o.registry}/${this.#o.repository}`;
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  get #maxManifest(): number {
    return this.#o.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
  }

  /** GET /v2/: true when the registry speaks the API (a 401 challenge counts: auth comes per scope). */
  async ping(): Promise<{ apiVersion: string | undefined; authScheme: string | undefined }> {
    const res = await this.#send('GET', `${this.#base}/v2/`, {}, undefined, 'ping');
    await res.body.dump();
    if (res.statusCode !== 200 && res.statusCode !== 401) throw this.#statusError(res, 'ping /v2/');
    const challenge = header(res, 'www-authenticate');
    return { apiVersion: header(res, 'docker-distribution-api-version'), authScheme: challenge === undefined ? undefined : parseChallenge(challenge)?.scheme };
  }

  // ---- transport ---------------------------------------------------------------------

  async #send(method: string, url: string, headers: Headers, body: Body, what: string, signal?: AbortSignal): Promise<Response> {
    try {
      const res = await request(url, {
        dispatcher: this.#dispatcher,
        method: method,
        headers: { 'user-agent': this.#o.userAgent ?? 'edgevolve', ...headers },
        body: typeof body === 'function' ? (body() as unknown as Dispatcher.DispatchOptions['body']) : body,
        ...(signal === undefined ? {} : { signal }),
        headersTimeout: IDLE_TIMEOUT_MS,
        // Fewer, larger chunks: the per-chunk cost (hash update, buffer copy) dominates at 64 KiB.
        highWaterMark: 1024 * 1024,
        bodyTimeout: IDLE_TIMEOUT_MS,
      });
      return res;
    } catch (err) {
      throw networkError(err, `${what}: ${method} ${url}`);
    }
  }

  #scope(push: boolean): string {
    return `repository:${this.#o.repository}:${push ? 'pull,push' : 'pull'}`;
  }

  #cachedAuthorization(scope: string): string | undefined {
    const token = this.#tokens.get(scope);
    if (token !== undefined && token.expiresAt > this.#o.clock.now()) return token.authorization;
    if (this.#basicAccepted && this.#o.credentials !== undefined) return basicAuthorization(this.#o.credentials);
    return undefined;
  }

  /**
   * One request with auth and retries: a 401 runs the challenge flow once; 429/5xx and
   * connection failures are retried with backoff (Retry-After honoured). Returns the
   * response for any other status; the caller checks it and must consume the body.
   */
  async #call(method: string, url: string, options: { headers?: Headers; body?: Body; push?: boolean; what: string; signal?: AbortSignal }): Promise<Response> {
    const scope = this.#scope(options.push ?? false);
    return withRetry(
      async () => {
        let res = await this.#authorized(method, url, scope, options);
        if (res.statusCode === 401) {
          const challenge = header(res, 'www-authenticate');
          await res.body.dump();
          await this.#authenticate(challenge, scope, options.what, options.signal);
          res = await this.#authorized(method, url, scope, options);
          if (res.statusCode === 401) {
            await res.body.dump();
            throw new EdgevolveError('E_REGISTRY_AUTH', `${options.what}: ${this.#o.registry} refused the credentials for ${scope}`, { context: { scope } });
          }
        }
        if (RETRY_STATUS.has(res.statusCode)) {
          const retryAfter = Number(header(res, 'retry-after'));
          await res.body.dump();
          throw new EdgevolveError('E_REGISTRY_UNREACHABLE', `${options.what}: ${method} ${url} answered ${res.statusCode}`, {
            context: { status: res.statusCode, ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}) },
          });
        }
        return res;
      },
      {
        clock: this.#o.clock,
        random: this.#o.random,
        options: this.#o.retry ?? DEFAULT_RETRY,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onRetry: (err, attempt, delayMs) => this.#o.logger?.warn({ err: (err as Error).message, attempt, delayMs }, 'registry request failed; retrying'),
      },
    );
  }

  async #authorized(method: string, url: string, scope: string, options: { headers?: Headers; body?: Body; what: string; signal?: AbortSignal }): Promise<Response> {
    const authorization = this.#cachedAuthorization(scope);
    const headers = { ...options.headers, ...(authorization === undefined ? {} : { authorization }) };
    return this.#send(method, url, headers, options.body, options.what, options.signal);
  }

  async #authenticate(challengeHeader: string | undefined, scope: string, what: string, signal?: AbortSignal): Promise<void> {
    const challenge = challengeHeader === undefined ? undefined : parseChallenge(challengeHeader);
    if (challenge?.scheme === 'basic') {
      if (this.#o.credentials === undefined) throw new EdgevolveError('E_REGISTRY_AUTH', `${what}: ${this.#o.registry} requires a username and password (registry.auth)`);
      this.#basicAccepted = true;
      return;
    }
    if (challenge?.scheme !== 'bearer' || challenge.params.realm === undefined) {
      throw new EdgevolveError('E_REGISTRY_AUTH', `${what}: ${this.#o.registry} answered 401 with an unusable challenge ${JSON.stringify(challengeHeader ?? '')}`);
    }
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service !== undefined) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', scope);
    const headers: Headers = this.#o.credentials === undefined ? {} : { authorization: basicAuthorization(this.#o.credentials) };
    const res = await this.#send('GET', realm.toString(), headers, undefined, `${what}: token`, signal);
    const text = await readCapped(res, 64 * 1024, 'token response');
    if (res.statusCode !== 200) {
      throw new EdgevolveError(res.statusCode >= 500 ? 'E_REGISTRY_UNREACHABLE' : 'E_REGISTRY_AUTH', `${what}: token service ${realm.origin} answered ${res.statusCode}`, {
        context: { status: res.statusCode },
      });
    }
    let token: string | undefined;
    let expiresIn = 60;
    try {
      const doc = JSON.parse(text.toString('utf8')) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
      token = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
      if (typeof doc.expires_in === 'number' && doc.expires_in > 0) expiresIn = doc.expires_in;
    } catch {
      token = undefined;
    }
    if (token === undefined) throw new EdgevolveError('E_REGISTRY_AUTH', `${what}: token service ${realm.origin} returned no token`);
    // Renew 10 s early so a token does not expire between check and use.
    this.#tokens.set(scope, { authorization: `Bearer ${token}`, expiresAt: this.#o.clock.now() + Math.max(1, expiresIn - 10) * 1000 });
  }

  #statusError(res: { readonly statusCode: number }, what: string): EdgevolveError {
    const status = res.statusCode;
    if (status === 404) return new EdgevolveError('E_REGISTRY_NOT_FOUND', `${what}: not found in ${this.name}`, { context: { status } });
    if (status === 401 || status === 403) return new EdgevolveError('E_REGISTRY_AUTH', `${what}: ${this.#o.registry} denied access (${status})`, { context: { status } });
    return new EdgevolveError('E_REGISTRY_PROTOCOL', `${what}: unexpected status ${status} from ${this.#o.registry}`, { context: { status } });
  }

  #url(path: string): string {
    return `${this.#base}/v2/${this.#o.repository}/${path}`;
  }

  // ---- manifests ---------------------------------------------------------------------

  async resolve(reference: string): Promise<ParsedManifest> {
    const found = await this.tryResolve(reference);
    if (found === undefined) throw new EdgevolveError('E_REGISTRY_NOT_FOUND', `${this.name}:${reference} not found`, { context: { reference } });
    return found;
  }

  async tryResolve(reference: string): Promise<ParsedManifest | undefined> {
    const expected = reference.startsWith('sha256:') ? parseDigest(reference, 'reference') : undefined;
    const what = `manifest ${this.name}:${reference}`;
    const res = await this.#call('GET', this.#url(`manifests/${reference}`), { headers: { accept: MANIFEST_ACCEPT }, what });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw this.#statusError(res, what);
    }
    const bytes = await readCapped(res, this.#maxManifest, what);
    const parsed = parseManifest(bytes, { contentType: header(res, 'content-type'), expected, maxBytes: this.#maxManifest, what });
    const claimed = header(res, 'docker-content-digest');
    if (claimed !== undefined && claimed !== parsed.digest) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `${what}: registry says ${claimed} but the bytes hash to ${parsed.digest}`, {
        context: { claimed, actual: parsed.digest },
      });
    }
    return parsed;
  }

  async fetchManifest(descriptor: Descriptor): Promise<ParsedManifest> {
    if (descriptor.size > this.#maxManifest) {
      throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `manifest ${descriptor.digest} is ${descriptor.size} bytes, over the ${this.#maxManifest}-byte cap`);
    }
    const parsed = await this.resolve(descriptor.digest);
    if (parsed.bytes.byteLength !== descriptor.size) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `manifest ${descriptor.digest} is ${parsed.bytes.byteLength} bytes, its descriptor says ${descriptor.size}`);
    }
    return parsed;
  }

  async pushManifest(bytes: Buffer, mediaType: string, tag?: string): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const what = `push manifest ${this.name}:${tag ?? digest}`;
    const res = await this.#call('PUT', this.#url(`manifests/${tag ?? digest}`), { headers: { 'content-type': mediaType }, body: bytes, push: true, what });
    await res.body.dump();
    if (res.statusCode !== 201 && res.statusCode !== 200) throw this.#statusError(res, what);
    const claimed = header(res, 'docker-content-digest');
    if (claimed !== undefined && claimed !== digest) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `${what}: registry stored ${claimed}, we sent ${digest}`);
    }
    return digest;
  }

  // ---- blobs: download ---------------------------------------------------------------

  async fetchSmallBlob(descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
    if (descriptor.size > maxBytes) throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `blob ${descriptor.digest} is ${descriptor.size} bytes, over the ${maxBytes}-byte cap`);
    const what = `blob ${this.name}@${descriptor.digest}`;
    const res = await this.#getBlob(descriptor.digest, {}, what);
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw this.#statusError(res, what);
    }
    const bytes = await readCapped(res, descriptor.size, what);
    const actual = sha256Digest(bytes);
    if (actual !== descriptor.digest || bytes.byteLength !== descriptor.size) {
      throw new EdgevolveError('E_REGISTRY_DIGEST_MISMATCH', `${what} arrived as ${bytes.byteLength} bytes hashing to ${actual}`, { context: { expected: descriptor.digest, actual } });
    }
    return bytes;
  }

  /** GET a blob, following redirects by hand so credentials never go to another origin. */
  async #getBlob(digest: Digest, headers: Headers, what: string, signal?: AbortSignal): Promise<Response> {
    let res = await this.#call('GET', this.#url(`blobs/${digest}`), { headers, what, ...(signal === undefined ? {} : { signal }) });
    let url = this.#url(`blobs/${digest}`);
    for (let hops = 0; [301, 302, 303, 307, 308].includes(res.statusCode); hops++) {
      const location = header(res, 'location');
      await res.body.dump();
      if (location === undefined || hops >= 5) throw new EdgevolveError('E_REGISTRY_PROTOCOL', `${what}: redirect without Location or more than 5 redirects`);
      const next = new URL(location, url);
      url = next.toString();
      if (next.origin === this.#base) res = await this.#call('GET', url, { headers, what, ...(signal === undefined ? {} : { signal }) });
      else res = await withRetry(() => this.#send('GET', url, headers, undefined, what, signal), { clock: this.#o.clock, random: this.#o.random, options: this.#o.retry ?? DEFAULT_RETRY });
    }
    return res;
  }

  /**
   * Streams a blob into `writer` from `writer.offset`. A resumed request sends `Range`
   * and `If-Range`; the answer is checked strictly (Mender http_resumer cases): a 206
   * must carry exactly `bytes <offset>-<size-1>/<size>` and the same ETag, a 200 means
   * the server sends everything again and the partial bytes are dropped. A wrong or
   * missing range or a changed ETag discards the partial file and fails with
   * E_REGISTRY_RANGE (retryable: the next attempt starts from 0). Bytes are never spliced
   * from two different responses unless both agree on range and validator.
   */
  async fetchBlob(descriptor: Descriptor, writer: BlobWriter, signal?: AbortSignal): Promise<void> {
    const maxBlob = this.#o.maxBlobBytes ?? Number.MAX_SAFE_INTEGER;
    if (descriptor.size > maxBlob) {
      throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `blob ${descriptor.digest} is ${descriptor.size} bytes, over registry.maxBlobBytes (${maxBlob})`, {
        context: { size: descriptor.size, maxBlob },
      });
    }
    await this.#transfers.run(async () => {
      const what = `blob ${this.name}@${descriptor.digest}`;
      const offset = writer.offset;
      if (offset === descriptor.size) return;
      const headers: Headers = offset > 0 ? { range: `bytes=${offset}-`, ...(writer.validator === undefined ? {} : { 'if-range': writer.validator }) } : {};
      if (this.#socketReader) {
        const outcome = await this.#fetchBlobBySocket(descriptor, writer, headers, offset, what, signal);
        if (outcome.kind === 'done') {
          this.#o.logger?.debug({ digest: descriptor.digest, bytes: descriptor.size - offset }, 'blob received on the socket reader');
          return;
        }
        this.#o.logger?.debug({ digest: descriptor.digest, reason: outcome.reason }, 'socket blob reader declined; downloading through undici');
      }
      const res = await this.#getBlob(descriptor.digest, headers, what, signal);
      try {
        await this.#checkBlobResponse({ statusCode: res.statusCode, header: (name) => header(res, name) }, descriptor, writer, offset, what);
      } catch (err) {
        await res.body.dump().catch(() => undefined);
        throw err;
      }
      try {
        for await (const chunk of res.body) await writer.write(chunk as Buffer);
      } catch (err) {
        if (isEdgevolveError(err)) throw err;
        throw networkError(err, `${what}: download interrupted`);
      }
    });
  }

  /**
   * The blob GET on a bare socket, with the authorization already known (manifests came
   * first). Declines (the caller falls back to undici) on what undici handles and this
   * reader does not: a challenge, a redirect, an error status, a chunked or unsized body.
   * A 200 or 206 passes the same strict checks as undici's answer; a malformed head, or
   * a repeated Content-Length, Content-Range or ETag, is E_REGISTRY_PROTOCOL.
   */
  async #fetchBlobBySocket(descriptor: Descriptor, writer: BlobWriter, headers: Headers, offset: number, what: string, signal?: AbortSignal): Promise<SocketGetOutcome> {
    const authorization = this.#cachedAuthorization(this.#scope(false));
    const request = {
      url: new URL(this.#url(`blobs/${descriptor.digest}`)),
      headers: { 'user-agent': this.#o.userAgent ?? 'edgevolve', ...headers, ...(authorization === undefined ? {} : { authorization }) },
      idleTimeoutMs: IDLE_TIMEOUT_MS,
      ...(signal === undefined ? {} : { signal }),
      ...(this.#socketTls === undefined ? {} : { tls: this.#socketTls }),
    };
    return socketGet(request, writer, async (head) => {
      if ((head.status !== 200 && head.status !== 206) || head.fields.has('transfer-encoding')) return 'decline';
      const length = contentLength(head);
      if (length === undefined) return 'decline';
      await this.#checkBlobResponse({ statusCode: head.status, header: (name) => singleField(head, name) }, descriptor, writer, offset, what);
      return { bodyBytes: length };
    });
  }

  async #checkBlobResponse(res: BlobAnswer, descriptor: Descriptor, writer: BlobWriter, offset: number, what: string): Promise<void> {
    const etag = res.header('etag');
    const length = res.header('content-length');
    if (res.statusCode === 200) {
      if (length !== undefined && Number(length) !== descriptor.size) {
        throw new EdgevolveError('E_REGISTRY_PROTOCOL', `${what}: Content-Length ${length}, the descriptor says ${descriptor.size}`);
      }
      if (offset > 0) {
        this.#o.logger?.warn({ digest: descriptor.digest, offset }, 'registry ignored the Range request; downloading from the start');
        await writer.restart();
      }
      await writer.setValidator(etag);
      return;
    }
    if (res.statusCode === 206 && offset > 0) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.header('content-range') ?? '');
      const bad =
        range === null
          ? `missing or malformed Content-Range ${JSON.stringify(res.header('content-range') ?? null)}`
          : Number(range[1]) !== offset || Number(range[2]) !== descriptor.size - 1 || Number(range[3]) !== descriptor.size
            ? `Content-Range ${range[0]} does not match the requested bytes ${offset}-${descriptor.size - 1}/${descriptor.size}`
            : length !== undefined && Number(length) !== descriptor.size - offset
              ? `Content-Length ${length} does not match the range`
              : writer.validator !== undefined && etag !== writer.validator
                ? `ETag changed from ${writer.validator} to ${etag ?? 'none'} mid-download`
                : undefined;
      if (bad !== undefined) {
        await writer.restart();
        await writer.setValidator(undefined);
        throw new EdgevolveError('E_REGISTRY_RANGE', `${what}: ${bad}; partial download discarded`, { context: { offset } });
      }
      return;
    }
    if (res.statusCode === 416) {
      await writer.restart();
      await writer.setValidator(undefined);
      throw new EdgevolveError('E_REGISTRY_RANGE', `${what}: registry refused the range from ${offset} (416); partial download discarded`);
    }
    throw this.#statusError(res, what);
  }

  // ---- blobs: upload -----------------------------------------------------------------

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const what = `blob ${this.name}@${descriptor.digest}`;
    const res = await this.#call('HEAD', this.#url(`blobs/${descriptor.digest}`), { what, push: true });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw this.#statusError(res, `HEAD ${what}`);
  }

  /**
   * Uploads a blob unless the registry has it: POST a session, then one PUT with the body
   * (monolithic) or PATCH chunks with Content-Range and a closing PUT (chunked). A failed
   * session is retried from a new session.
   */
  async pushBlob(descriptor: Descriptor, content: BlobContent): Promise<void> {
    if (await this.hasBlob(descriptor)) return;
    const threshold = this.#o.chunkedUploadThreshold ?? 64 * 1024 * 1024;
    await this.#transfers.run(async () => {
      await withRetry(() => (descriptor.size > threshold ? this.#uploadChunked(descriptor, content) : this.#uploadMonolithic(descriptor, content)), {
        clock: this.#o.clock,
        random: this.#o.random,
        options: this.#o.retry ?? DEFAULT_RETRY,
      });
    });
  }

  async #startUpload(what: string): Promise<string> {
    const res = await this.#call('POST', this.#url('blobs/uploads/'), { push: true, what, headers: { 'content-length': '0' } });
    await res.body.dump();
    const location = header(res, 'location');
    if (res.statusCode !== 202 || location === undefined) throw this.#statusError(res, `${what}: start upload`);
    return new URL(location, this.#base).toString();
  }

  async #uploadMonolithic(descriptor: Descriptor, content: BlobContent): Promise<void> {
    const what = `push blob ${this.name}@${descriptor.digest}`;
    const location = await this.#startUpload(what);
    const body: Body = 'bytes' in content ? Buffer.from(content.bytes.buffer, content.bytes.byteOffset, content.bytes.byteLength) : () => createReadStream(content.path);
    const res = await this.#call('PUT', withDigest(location, descriptor.digest), {
      push: true,
      what,
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
    });
    await res.body.dump();
    if (res.statusCode !== 201) throw this.#statusError(res, `${what}: finish upload`);
  }

  async #uploadChunked(descriptor: Descriptor, content: BlobContent): Promise<void> {
    const what = `push blob ${this.name}@${descriptor.digest}`;
    const chunkBytes = this.#o.chunkBytes ?? 16 * 1024 * 1024;
    let location = await this.#startUpload(what);
    for (let start = 0; start < descriptor.size; start += chunkBytes) {
      const end = Math.min(descriptor.size, start + chunkBytes) - 1;
      const body: Body =
        'bytes' in content ? Buffer.from(content.bytes.buffer, content.bytes.byteOffset + start, end - start + 1) : () => createReadStream(content.path, { start, end });
      const res = await this.#call('PATCH', location, {
        push: true,
        what,
        body,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end}`, 'content-length': String(end - start + 1) },
      });
      await res.body.dump();
      const next = header(res, 'location');
      if (res.statusCode !== 202 || next === undefined) throw this.#statusError(res, `${what}: chunk ${start}-${end}`);
      location = new URL(next, this.#base).toString();
    }
    const res = await this.#call('PUT', withDigest(location, descriptor.digest), { push: true, what, headers: { 'content-length': '0' } });
    await res.body.dump();
    if (res.statusCode !== 201) throw this.#statusError(res, `${what}: finish upload`);
  }
}

function withDigest(location: string, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/** Reads a response body into memory, refusing more than `max` bytes (checked before and while reading). */
async function readCapped(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(header(res, 'content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body.dump();
    throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${what} is ${declared} bytes, over the ${max}-byte cap`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).byteLength;
      if (total > max) {
        res.body.destroy();
        throw new EdgevolveError('E_REGISTRY_TOO_LARGE', `${what} exceeds the ${max}-byte cap`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (isEdgevolveError(err)) throw err;
    throw networkError(err, `${what}: read interrupted`);
  }
  return Buffer.concat(chunks, total);
}
