/**
 * Starts Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port with
 * a temporary storage directory, optionally behind htpasswd basic auth, and stops it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort } from './free-port.ts';
import { requireTool } from './require-tool.ts';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

/** True when docker-registry is installed (skips with the package name otherwise; fails under CI=true). */
export function requireRegistry(): boolean {
  return requireTool({ name: 'docker-registry (CNCF distribution)', check: () => existsSync(REGISTRY_BINARY), debianPackage: 'docker-registry' });
}

export function requireSkopeo(): boolean {
  return requireTool({ name: 'skopeo', check: () => spawnSync('skopeo', ['--version']).status === 0, debianPackage: 'skopeo' });
}

export interface RunningRegistry {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  readonly port: number;
  readonly storageDir: string;
  stop(): Promise<void>;
}

/**
 * A bcrypt htpasswd line. Uses `htpasswd` (apache2-utils) when installed, else Python's
 * crypt module (libxcrypt has bcrypt); distribution accepts only bcrypt.
 */
export function htpasswdLine(user: string, password: string): string {
  const htpasswd = spawnSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' });
  if (htpasswd.status === 0) return htpasswd.stdout.trim();
  const python = spawnSync(
    'python3',
    ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password],
    { encoding: 'utf8' },
  );
  if (python.status !== 0) throw new Error(`cannot make a bcrypt hash: install apache2-utils (htpasswd) or python3: ${python.stderr}`);
  return `${user}:${python.stdout.trim()}`;
}

/** Bearer-token auth: the registry trusts JWTs signed by the key of `certPath` and sends clients to `realm`. */
export interface TokenAuthOptions {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly certPath: string;
}

/** Serve https with this certificate; with `clientCaPath`, require client certificates signed by it (mTLS). */
export interface RegistryTlsOptions {
  readonly certPath: string;
  readonly keyPath: string;
  readonly clientCaPath?: string;
}

export async function startRegistry(
  options: { auth?: { user: string; password: string }; token?: TokenAuthOptions; tls?: RegistryTlsOptions } = {},
): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'edgevolve-registry-'));
  const port = await freePort();
  const storageDir = join(dir, 'storage');
  let authBlock = '';
  if (options.auth !== undefined) {
    await writeFile(join(dir, 'htpasswd'), `${htpasswdLine(options.auth.user, options.auth.password)}\n`);
    authBlock = `auth:\n  htpasswd:\n    realm: edgevolve-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  if (options.token !== undefined) {
    const t = options.token;
    authBlock = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certPath}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: edgevolve-test-secret',
    ...(options.tls === undefined
      ? []
      : [
          '  tls:',
          `    certificate: ${options.tls.certPath}`,
          `    key: ${options.tls.keyPath}`,
          ...(options.tls.clientCaPath === undefined ? [] : ['    clientcas:', `      - ${options.tls.clientCaPath}`]),
        ]),
    authBlock,
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    if (options.tls === undefined) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v2/`);
        if (res.status === 200 || res.status === 401) break;
      } catch {
        // not listening yet
      }
    } else if (await canConnect(port)) {
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    storageDir,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

