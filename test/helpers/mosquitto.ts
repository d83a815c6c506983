/**
 * Starts Debian's `mosquitto` (2.0) on a free loopback port with a generated config in a
 * temporary directory, and stops, kills and restarts it on the same port (broker-restart
 * faults). Options: TLS with a CA, server and client certificates made by `openssl` in the
 * temp dir (mTLS with `requireCertificate`), an ACL file, a password file made with
 * `mosquitto_passwd`, persistence on or off, and a second listener speaking MQTT over
 * WebSockets (Debian's mosquitto 2.0 is built with libwebsockets: `protocol websockets`
 * loads), with the same certificates when TLS is on (`wss://`).
 *
 * Used by the telemetry, control and co-evolution tests: keep this API stable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort } from './free-port.ts';
import { requireTool } from './require-tool.ts';

export const MOSQUITTO_BINARY = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD_BINARY = '/usr/bin/mosquitto_passwd';

/** True when mosquitto is installed (skips with the package name otherwise; fails under CI=true). */
export function requireMosquitto(): boolean {
  return requireTool({
    name: 'mosquitto (MQTT broker)',
    check: () => existsSync(MOSQUITTO_BINARY) && existsSync(MOSQUITTO_PASSWD_BINARY) && spawnSync('openssl', ['version']).status === 0,
    debianPackage: 'mosquitto',
  });
}

export interface MosquittoTlsOptions {
  /** mTLS: clients must present a certificate signed by the test CA. */
  readonly requireCertificate?: boolean;
  /** With mTLS: the client certificate's CN becomes the MQTT username (ACL `%u` follows the cert). */
  readonly useIdentityAsUsername?: boolean;
}

export interface MosquittoOptions {
  /** Serve `mqtts://` with certificates generated into the temp dir. */
  readonly tls?: boolean | MosquittoTlsOptions;
  /** ACL file contents (mosquitto acl_file syntax); mutually exclusive with `aclFile`. */
  readonly acl?: string;
  /** An existing ACL file to use as is (copied into the temp dir), e.g. config/mosquitto/acl. */
  readonly aclFile?: string;
  /** username → password; written with mosquitto_passwd. Anonymous access is then refused. */
  readonly users?: Readonly<Record<string, string>>;
  /** Default: true without `users`, false with them. */
  readonly allowAnonymous?: boolean;
  /** Keep the broker's state (sessions, retained, queued QoS 1) across stop()/start(). Default false. */
  readonly persistence?: boolean;
  /** Also listen for MQTT over WebSockets on a second free port (`wsUrl`); with `tls`, over TLS (wss). */
  readonly websockets?: boolean;
  /** Extra mosquitto.conf lines, appended verbatim. */
  readonly extraConfig?: readonly string[];
}

/** PEM files of one certificate, with their paths in the broker's temp dir. */
export interface TestCertificate {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface MosquittoTls {
  readonly caPath: string;
  readonly ca: Buffer;
  /** A client certificate with this CN, signed by the test CA. */
  issueClientCert(commonName: string): TestCertificate;
  /** A client certificate signed by a different, untrusted CA (for negative mTLS tests). */
  issueUntrustedClientCert(commonName: string): TestCertificate;
}

export interface RunningMosquitto {
  /** `mqtt://127.0.0.1:<port>` or `mqtts://localhost:<port>` with TLS. */
  readonly url: string;
  readonly port: number;
  /** `ws://127.0.0.1:<port>` or `wss://localhost:<port>` when started with `websockets`. */
  readonly wsUrl: string | undefined;
  /** The temp dir holding the config, certificates, password, ACL and persistence files. */
  readonly dir: string;
  readonly tls: MosquittoTls | undefined;
  /** Starts the broker again on the same port (after stop() or kill()). */
  start(): Promise<void>;
  /** SIGTERM and wait for exit (the broker saves persistence and sends wills). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** The broker's log so far (all runs), for failure messages. */
  log(): string;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<RunningMosquitto> {
  if (options.acl !== undefined && options.aclFile !== undefined) throw new Error('startMosquitto: give acl or aclFile, not both');
  const dir = await mkdtemp(join(tmpdir(), 'edgevolve-mosquitto-'));
  const port = await freePort();
  const lines: string[] = [
    // Running as root, mosquitto drops to user `mosquitto`, who cannot read a 0700 temp dir.
    `user ${userInfo().username}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    `listener ${port} 127.0.0.1`,
  ];
  const allowAnonymous = options.allowAnonymous ?? options.users === undefined;
  lines.push(`allow_anonymous ${allowAnonymous ? 'true' : 'false'}`);
  if (options.users !== undefined) {
    const passwordFile = join(dir, 'passwd');
    await writeFile(passwordFile, '');
    for (const [user, password] of Object.entries(options.users)) {
      run(MOSQUITTO_PASSWD_BINARY, ['-b', passwordFile, user, password]);
    }
    lines.push(`password_file ${passwordFile}`);
  }
  if (options.acl !== undefined) {
    await writeFile(join(dir, 'acl'), options.acl);
    lines.push(`acl_file ${join(dir, 'acl')}`);
  } else if (options.aclFile !== undefined) {
    await copyFile(options.aclFile, join(dir, 'acl'));
    lines.push(`acl_file ${join(dir, 'acl')}`);
  }
  let tls: MosquittoTls | undefined;
  // Certificate settings belong to the listener above them: written once per listener.
  let tlsLines: string[] = [];
  if (options.tls !== undefined && options.tls !== false) {
    const tlsOptions: MosquittoTlsOptions = options.tls === true ? {} : options.tls;
    tls = await makeTestPki(dir);
    tlsLines = [`cafile ${tls.caPath}`, `certfile ${join(dir, 'server.crt')}`, `keyfile ${join(dir, 'server.key')}`];
    if (tlsOptions.requireCertificate === true) tlsLines.push('require_certificate true');
    if (tlsOptions.useIdentityAsUsername === true) tlsLines.push('use_identity_as_username true');
    lines.push(...tlsLines);
  }
  const wsPort = options.websockets === true ? await freePort() : undefined;
  if (wsPort !== undefined) lines.push(`listener ${wsPort} 127.0.0.1`, 'protocol websockets', ...tlsLines);
  if (options.persistence === true) {
    lines.push('persistence true', `persistence_location ${dir}/`, 'persistence_file mosquitto.db', 'autosave_interval 1');
  } else {
    lines.push('persistence false');
  }
  lines.push(...(options.extraConfig ?? []));
  const configPath = join(dir, 'mosquitto.conf');
  await writeFile(configPath, `${lines.join('\n')}\n`);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let logText = '';

  const start = async (): Promise<void> => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) throw new Error('mosquitto is already running');
    const proc = spawn(MOSQUITTO_BINARY, ['-c', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.stderr?.on('data', (d: Buffer) => {
      logText += d.toString();
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`mosquitto exited at start: ${logText}`);
      if ((await canConnect(port)) && (wsPort === undefined || (await canConnect(wsPort)))) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`mosquitto did not listen on port ${port}: ${logText}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  };

  await start();
  return {
    url: tls === undefined ? `mqtt://127.0.0.1:${port}` : `mqtts://localhost:${port}`,
    port,
    wsUrl: wsPort === undefined ? undefined : tls === undefined ? `ws://127.0.0.1:${wsPort}` : `wss://localhost:${wsPort}`,
    dir,
    tls,
    start,
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    log: () => logText,
    close: async () => {
      await terminate('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
}

/** A CA, a server certificate for localhost/127.0.0.1, and a way to issue client certificates. EC P-256 keys: fast to make. */
async function makeTestPki(dir: string): Promise<MosquittoTls> {
  const caPath = join(dir, 'ca.crt');
  makeCa(dir, 'ca', 'edgevolve test CA');
  makeCa(dir, 'untrusted-ca', 'edgevolve untrusted CA');
  const extPath = join(dir, 'server.ext');
  await writeFile(extPath, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue(dir, 'ca', 'server', 'localhost', extPath);
  const clientExt = join(dir, 'client.ext');
  await writeFile(clientExt, 'extendedKeyUsage=clientAuth\n');
  const ca = await readFile(caPath);
  const issueFrom = (caName: string, commonName: string): TestCertificate => {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(commonName)) throw new Error(`test certificate CN must be a plain id: ${commonName}`);
    const name = `client-${caName}-${commonName}`;
    issue(dir, caName, name, commonName, clientExt);
    const certPath = join(dir, `${name}.crt`);
    const keyPath = join(dir, `${name}.key`);
    // Synchronous reads keep issueClientCert synchronous for callers building client options inline.
    return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) };
  };
  return {
    caPath,
    ca,
    issueClientCert: (cn) => issueFrom('ca', cn),
    issueUntrustedClientCert: (cn) => issueFrom('untrusted-ca', cn),
  };
}

function makeCa(dir: string, name: string, subject: string): void {
  run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
    '-days', '2', '-subj', `/CN=${subject}`,
  ]);
}

function issue(dir: string, caName: string, name: string, commonName: string, extPath: string): void {
  run('openssl', [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/CN=${commonName}`,
  ]);
  run('openssl', [
    'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${caName}.crt`), '-CAkey', join(dir, `${caName}.key`),
    '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', '2', '-extfile', extPath,
  ]);
}

