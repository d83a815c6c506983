/**
 * The dist/ bundle that the installed service runs (scripts/build.ts), built into a temp
 * directory laid out like /opt/edgevolve (dist/ beside node_modules/, no src/) and run
 * with plain `node`: the paths that were resolved against the source tree (onnx.proto,
 * the fixture models, the benchmark child) must work from the bundle too.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from '../../../scripts/build.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const run = promisify(execFile);
const REPO = resolve('.');
const MODEL = join(REPO, 'test', 'fixtures', 'models', 'mnist-cnn.onnx');

describe('the esbuild bundle (node dist/edgevolve.mjs, as systemd and the arm64 image run it)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let app: string;
  let bundle: string;
  const node = (...args: string[]): Promise<{ stdout: string; stderr: string }> => run(process.execPath, [bundle, ...args], { cwd: app, encoding: 'utf8' });

  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-bundle-');
    app = join(tmp.dir, 'app');
    await buildDist(join(app, 'dist'));
    // The production node_modules of an install; the bundle keeps npm packages external.
    await symlink(join(REPO, 'node_modules'), join(app, 'node_modules'), 'dir');
    bundle = join(app, 'dist', 'edgevolve.mjs');
  }, 120_000);
  afterAll(() => tmp.cleanup());

  it('carries the package version in its banner and in --version, is ASCII only, and is byte-identical when built again', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    const text = await readFile(bundle, 'utf8');
    expect(text.split('\n').slice(0, 2).join('\n')).toMatch(new RegExp(`^#!/usr/bin/env node\n// edgevolve ${version.replaceAll('.', '\\.')} `));
    expect(text).not.toMatch(/\.proto['"]/);
    // One character outside Latin-1 would double the source V8 keeps in the heap (scripts/build.ts asciiOnly).
    expect(/[\u0080-\uffff]/.exec(text)?.[0]).toBeUndefined();
    expect((await node('--version')).stdout.trim()).toBe(version);

    const again = join(tmp.dir, 'again', 'dist');
    const files = await buildDist(again);
    // The chunks behind dynamic imports too: their names are hashes of their content.
    expect(files.filter((f) => /^chunk-\w+\.mjs$/.test(f)).length).toBeGreaterThan(0);
    for (const file of files) {
      expect((await readFile(join(again, file))).equals(await readFile(join(app, 'dist', file))), file).toBe(true);
    }
  }, 120_000);

  it('inspects a model (the ONNX schema is inside the bundle, no onnx.proto file needed)', async () => {
    const { stdout } = await node('inspect', MODEL);
    expect(stdout).toMatch(/^opsets\s+ai\.onnx 17$/m);
    expect(stdout).toMatch(/Conv/);
  });

  it('benchmarks a model in the isolated child (dist/bench-child.mjs, forked without tsx)', async () => {
    const { stdout } = await node('bench', MODEL, '--iterations', '5', '--warmup', '1', '--threads', '1', '--json');
    const report = JSON.parse(stdout) as { ok: boolean; samplesMs: number[] };
    expect(report.ok, stdout).toBe(true);
    expect(report.samplesMs).toHaveLength(5);
  }, 60_000);

  it('runs the embedded default: seeds the fixtures shipped in dist/fixtures, gets ready, answers a KServe infer over HTTP, exits 0 on SIGTERM', async () => {
    const state = join(tmp.dir, 'state');
    const config = join(tmp.dir, 'config.yaml');
    // A short trial so the test takes seconds; everything else is the embedded default.
    await writeFile(config, `stateDir: ${state}\nserver: { port: 0 }\ndaemon: { seedFixtures: true }\ndeploy: { minTrialMs: 0, minSamples: 5, trialProbeIntervalMs: 5 }\n`);
    const child = spawn(process.execPath, [bundle, 'run', '--config', config], { cwd: app, env: { PATH: process.env.PATH, HOME: tmp.dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const lines = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolvePromise, reject) => {
      lines.on('line', (l) => {
        const m = /^edgevolve is ready: .* on (http:\/\/\S+)$/.exec(l);
        if (m?.[1] !== undefined) resolvePromise(m[1]);
      });
      void exited.then((code) => reject(new Error(`exited ${code} before ready:\n${stderr.slice(-10).join('\n')}`)));
    });
    expect(stderr.join('\n')).toContain('seeded the local OCI layout');

    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const request = await readFile(join(state, 'sample-request.json'), 'utf8');
    const label = Number(/mnist-digit-labelled-(\d)/.exec(request)?.[1]);
    const res = await fetch(`${url}/v2/models/mnist/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: request });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { data: number[] }[] };
    const scores = body.outputs[0]?.data ?? [];
    expect(scores).toHaveLength(10);
    expect(scores.indexOf(Math.max(...scores))).toBe(label);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);

  /**
   * Which npm packages the process imports, from a module resolve hook (node:module
   * register): each bare specifier that resolves into node_modules, printed to stderr.
   */
  const IMPORT_HOOKS = `export async function resolve(specifier, context, next) {
    const resolved = await next(specifier, context);
    if (!specifier.startsWith('.') && !specifier.startsWith('node:') && resolved.url.includes('/node_modules/')) process.stderr.write('IMPORTED ' + specifier + '\\n');
    return resolved;
  }`;
  const TRACE_IMPORTS = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(IMPORT_HOOKS)}`)});`)}`;
  const imported = (stderr: readonly string[]): string[] => [...new Set(stderr.filter((l) => l.startsWith('IMPORTED ')).map((l) => l.slice(9).split('/')[0]!))].sort();

  it('loads one command: --version imports commander only, and a wrong command name still lists every command', async () => {
    const version = await run(process.execPath, ['--import', TRACE_IMPORTS, bundle, '--version'], { cwd: app, encoding: 'utf8' });
    expect(imported(version.stderr.split('\n'))).toEqual(['commander']);
    const wrong = await run(process.execPath, [bundle, 'stauts'], { cwd: app, encoding: 'utf8' }).catch((err: { code: number; stderr: string }) => err);
    expect('code' in wrong ? wrong.code : 0).toBe(2);
    expect(wrong.stderr).toMatch(/Did you mean status\?/);
  });

  // Offline: a network namespace with only loopback (unshare -n, root), nsenter to reach the API in it.
  const canIsolate = spawnSync('unshare', ['-n', 'ip', 'link', 'set', 'lo', 'up']).status === 0;
  it.runIf(canIsolate)('runs the embedded default offline (no network but loopback) without importing an MQTT client, an HTTP client (undici) or systeminformation', async () => {
    const state = join(tmp.dir, 'offline-state');
    const config = join(tmp.dir, 'offline.yaml');
    await writeFile(config, `stateDir: ${state}\nserver: { port: 0 }\ndaemon: { seedFixtures: true }\ndeploy: { minTrialMs: 0, minSamples: 5, trialProbeIntervalMs: 5 }\n`);
    const script = `ip link set lo up && exec "$0" "$@"`;
    const child = spawn('unshare', ['-n', 'sh', '-c', script, process.execPath, '--import', TRACE_IMPORTS, bundle, 'run', '--config', config], { cwd: app, env: { PATH: process.env.PATH, HOME: tmp.dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = await new Promise<string>((resolvePromise, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => {
        const m = /^edgevolve is ready: .* on (http:\/\/\S+)$/.exec(l);
        if (m?.[1] !== undefined) resolvePromise(m[1]);
      });
      void exited.then((code) => reject(new Error(`exited ${code} before ready:\n${stderr.slice(-10).join('\n')}`)));
    });
    // Inside the daemon's namespace (sh exec'd node, so the child's pid is the daemon's).
    const ask = `fetch(${JSON.stringify(`${url}/v2/health/ready`)}).then((r) => process.stdout.write(String(r.status)))`;
    const inside = await run('nsenter', ['-t', String(child.pid), '-n', process.execPath, '-e', ask], { encoding: 'utf8' });
    expect(inside.stdout).toBe('200');
    const packages = imported(stderr);
    expect(packages).toEqual(expect.arrayContaining(['onnxruntime-node', 'better-sqlite3']));
    expect(packages).not.toContain('mqtt');
    expect(packages).not.toContain('systeminformation');
    // The registry client, the KServe client and the co-evolution uploads load it on first use; a local layout needs none.
    expect(packages).not.toContain('undici');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);
});
