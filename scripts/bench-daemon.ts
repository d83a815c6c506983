/**
 * Daemon start-up and footprint (issue 8 targets: ready within 3 s of start when the model
 * is already in the store; idle RSS <= 120 MB), with baselines measured in the same run:
 *
 *   npx tsx scripts/bench-daemon.ts [--runs 5] [--idle-seconds 10]
 *
 * - ready: spawn of `node src/cli/bin.js run` to its "edgevolve is ready" line, with the
 *   embedded default's model already active in the state directory (a first run seeds it).
 *   Baseline: spawn to exit of `node src/cli/bin.js --version` (Node + tsx start-up, no daemon).
 * - RSS: VmRSS of the daemon after `--idle-seconds` idle. Baselines: an idle `node`, and
 *   `node` holding one onnxruntime session of the same model (the floor for serving it).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const BIN = join(ROOT, 'src', 'cli', 'bin.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN) / 1024;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function timeToExit(args: string[]): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((r) => spawn(process.execPath, args, { stdio: 'ignore' }).once('exit', () => r()));
  return performance.now() - t0;
}

/** Spawns the daemon; resolves at its ready line with the elapsed ms, the pid, and a stop function. */
async function startDaemon(config: string, nodeArgs: string[] = []): Promise<{ ms: number; startMs: number; pid: number; stop: () => Promise<void> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let startMs = NaN;
  createInterface({ input: child.stderr }).on('line', (l) => {
    const m = /"event":"daemon-started".*"startMs":(\d+)/.exec(l);
    if (m !== null) startMs = Number(m[1]);
  });
  const ms = await new Promise<number>((resolvePromise, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('edgevolve is ready')) resolvePromise(performance.now() - t0);
    });
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before ready`)));
  });
  return {
    ms,
    startMs,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise((r) => {
        child.removeAllListeners('exit');
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

async function idleRss(args: string[], idleMs: number): Promise<number> {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, idleMs));
  const mb = rssMb(child.pid ?? -1);
  child.kill('SIGKILL');
  return mb;
}

const runs = arg('--runs', 5);
const idleMs = arg('--idle-seconds', 10) * 1000;
const work = await mkdtemp(join(tmpdir(), 'edgevolve-bench-daemon-'));
try {
  const config = join(work, 'config.yaml');
  await writeFile(config, stringify({ stateDir: join(work, 'state'), log: { level: 'info' }, server: { port: 0 }, daemon: { seedFixtures: true } }));
  // First start: seeds the layout, pulls and trials the model (not measured).
  const first = await startDaemon(config);
  await first.stop();

  const ready: number[] = [];
  const internal: number[] = [];
  const bare: number[] = [];
  let rss = NaN;
  for (let i = 0; i < runs; i++) {
    bare.push(await timeToExit([BIN, '--version']));
    const d = await startDaemon(config);
    ready.push(d.ms);
    internal.push(d.startMs);
    if (i === runs - 1) {
      await new Promise((r) => setTimeout(r, idleMs));
      rss = rssMb(d.pid);
    }
    await d.stop();
  }
  // The flag systemd/edgevolve.service and Dockerfile.arm64 run with: a smaller V8 young generation.
  const flagged = await startDaemon(config, ['--max-semi-space-size=2']);
  await new Promise((r) => setTimeout(r, idleMs));
  const rssFlagged = rssMb(flagged.pid);
  await flagged.stop();
  const model = join(ROOT, 'test', 'fixtures', 'models', 'mnist-cnn.onnx');
  const nodeIdle = await idleRss(['-e', 'setInterval(() => {}, 1000)'], idleMs);
  const ortIdle = await idleRss(['-e', `require('onnxruntime-node').InferenceSession.create(${JSON.stringify(model)}, { intraOpNumThreads: 1 }).then((s) => { globalThis.s = s; setInterval(() => {}, 1000); })`], idleMs);

  const rows = [
    ['spawn to ready, model in store (median of ' + runs + ')', `${median(ready).toFixed(0)} ms`, `node + tsx start-up alone: ${median(bare).toFixed(0)} ms`, '<= 3000 ms'],
    ['  of which Daemon.start(): recovery, model load, first probe, API listen', `${median(internal).toFixed(0)} ms`, '', ''],
    [`idle RSS after ${idleMs / 1000} s`, `${rss.toFixed(1)} MB`, `idle node: ${nodeIdle.toFixed(1)} MB; node + one onnxruntime session: ${ortIdle.toFixed(1)} MB`, '<= 120 MB'],
    [`idle RSS after ${idleMs / 1000} s, node --max-semi-space-size=2 (as installed)`, `${rssFlagged.toFixed(1)} MB`, '', '<= 120 MB'],
  ];
  console.log('| measure | edgevolve run | baseline (same run) | target |\n|---|---:|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`\nready runs (ms): ${ready.map((x) => x.toFixed(0)).join(', ')}; node ${process.version}, ${process.arch}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
