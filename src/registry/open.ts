/**
 * Builds a content source or target from a reference and the configuration: a
 * RegistryClient for `host/repo:tag`, an OciLayout for `oci-layout:<dir>:tag`.
 * client.ts (and with it undici) is imported only when a remote registry is opened: the
 * embedded default reads a local layout and should not load an HTTP client at start.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Config } from '../config/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { Host } from '../host/index.ts';
import type { Logger } from '../log/index.ts';
import type { ContentSource, ContentTarget } from './content.ts';
import { OciLayout } from './layout.ts';
import { parseRef, type ArtifactRef } from './ref.ts';
import { parsePublicKey } from './signature.ts';
import type { PullDeps } from './pull.ts';
import type { TrustPolicy } from './trust.ts';

export interface Endpoint {
  readonly ref: ArtifactRef;
  readonly content: ContentSource & ContentTarget;
  /** Name used when the artifact carries no title: the last repository component or the layout directory. */
  readonly defaultName: string;
  /** What a signature payload names as docker-reference. */
  readonly dockerReference: string;
  close(): Promise<void>;
}

export interface EndpointOptions {
  /** Speak http:// to this registry (also allowed per host in registry.plainHttp). */
  readonly plainHttp?: boolean;
  /** Do not verify the registry's TLS certificate. */
  readonly insecure?: boolean;
  /** Create the OCI layout when it does not exist (push). */
  readonly create?: boolean;
}

async function readOptional(path: string | undefined): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    throw new EdgevolveError('E_CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export async function openEndpoint(text: string, config: Config['registry'], host: Host, options: EndpointOptions = {}, logger?: Logger): Promise<Endpoint> {
  const ref = parseRef(text);
  if (ref.kind === 'layout') {
    const layout = new OciLayout(ref.dir, { disk: host, maxManifestBytes: config.maxManifestBytes });
    if (options.create === true) await layout.init();
    return { ref, content: layout, defaultName: basename(ref.dir), dockerReference: `oci-layout:${ref.dir}`, close: () => Promise.resolve() };
  }
  const ca = await readOptional(config.caFile);
  const cert = await readOptional(config.certFile);
  const key = await readOptional(config.keyFile);
  const tls = { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
  const { createDispatcher, RegistryClient } = await import('./client.ts');
  const dispatcher = createDispatcher(tls, 16, options.insecure === true);
  const credentials = config.auth[ref.registry];
  const client = new RegistryClient({
    registry: ref.registry,
    repository: ref.repository,
    plainHttp: options.plainHttp === true || config.plainHttp.includes(ref.registry),
    // The same trust settings as the dispatcher, for the socket blob reader over https.
    tls,
    insecure: options.insecure === true,
    ...(credentials === undefined ? {} : { credentials }),
    dispatcher,
    clock: host,
    random: host,
    ...(logger === undefined ? {} : { logger }),
    retry: { attempts: config.retryAttempts, baseDelayMs: 250, maxDelayMs: 15_000 },
    maxManifestBytes: config.maxManifestBytes,
    maxBlobBytes: config.maxBlobBytes,
    concurrency: config.concurrency,
    fastBlobReader: config.fastBlobReader,
  });
  return {
    ref,
    content: client,
    defaultName: ref.repository.split('/').at(-1) ?? ref.repository,
    dockerReference: `${ref.registry}/${ref.repository}`,
    close: async () => {
      await dispatcher.close();
    },
  };
}

export async function loadTrustPolicy(config: Config['registry']['trust']): Promise<TrustPolicy> {
  const publicKeys = [];
  for (const path of config.publicKeys) {
    const pem = await readOptional(path);
    if (pem !== undefined) publicKeys.push(parsePublicKey(pem, path));
  }
  return { requireSignature: config.requireSignature, publicKeys, allowSignedDowngrade: config.allowSignedDowngrade };
}

/**
 * What pullModel needs to pull into the device's store, as the configuration says: the
 * trust policy from its keys and the retry schedule. The CLI's pull and the daemon's
 * reconcile both pull this way.
 */
export async function storePullDeps(
  store: Pick<PullDeps, 'blobs' | 'repository'>,
  config: Config['registry'],
  host: Host,
  profile: PullDeps['profile'],
  logger?: Logger,
): Promise<PullDeps> {
  return {
    blobs: store.blobs,
    repository: store.repository,
    policy: await loadTrustPolicy(config.trust),
    profile,
    clock: host,
    random: host,
    ...(logger === undefined ? {} : { logger }),
    retry: { attempts: config.retryAttempts, baseDelayMs: 250, maxDelayMs: 15_000 },
  };
}
