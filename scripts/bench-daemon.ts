/**
 * Daemon start-up and footprint (issue 8 targets: ready within 3 s of start when the model
 * is already in the store; idle RSS <= 120 MB), for the four ways to run it, measured in
 * the same run in alternating order:
 *
 *   npx tsx scripts/bench-daemon.ts [--runs 3] [--idle-seconds 10] [--baseline REF] [--current REF]
 *
 * With --baseline, a commit (git archive of REF, built the same way) is measured in the same
 * run against the working tree (or --current REF): the tsx and the installed rows of each,
 * alternating, each build with its own state directory (its own store schema).
 *
 * - tsx: `node src/cli/bin.js run` (the sources compiled by tsx at start, as `npm start`);
 *   bundle: `node dist/edgevolve.mjs run` (scripts/build.ts, built into a temp directory
 *   here, as the unit and the arm64 image run it); each with and without
 *   --max-semi-space-size=2 (a 2 MB V8 young generation instead of 16 MB), and the bundle
 *   also with MALLOC_ARENA_MAX=2 (two glibc malloc arenas), which is how it is installed.
 * - ready: spawn to the "edgevolve is ready" line, with the embedded default's model already
 *   active in the state directory (a first, unmeasured run seeds it), in wall time and in
 *   the CPU time the process used until then (user + system, all threads: what a quiet
 *   machine's wall time approaches, when a loaded one inflates the wall time). Baselines:
 *   spawn to exit of `--version` for each entry (Node, the entry and commander: the floor
 *   under every command, since the CLI imports only the command it runs).
 * - RSS: VmRSS of the daemon after `--idle-seconds` idle, split into RssAnon (JS heap,
 *   native allocations: onnxruntime's arena, SQLite's cache) and RssFile (mapped code:
 *   node, onnxruntime's and better-sqlite3's shared libraries). Baselines: an idle `node`,
 *   and `node` holding one onnxruntime session of the same model (the floor for serving it).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const SEMI = '--max-semi-space-size=2';
// USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
const CLOCK_TICKS = 100;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Build {
  readonly label: string;
  /** src/cli/bin.js of the build's sources (the tsx entry). */
  readonly tsx: string;
  /** dist/edgevolve.mjs laid out as installed: dist/ beside node_modules/. */
  readonly bundle: string;
  readonly config: string;
}

/**
 * Sources (this checkout, or `git archive ref`) built into `<dir>/app/dist` as installed, with a
 * config of their own whose state is seeded by one unmeasured start (pull and trial).
 */
async function prepareBuild(dir: string, ref: string | undefined): Promise<Build> {
  let root = ROOT;
  if (ref !== undefined) {
    root = join(dir, 'src');
    await mkdir(root, { recursive: true });
    execFileSync('sh', ['-c', 'git -C "$0" archive "$1" | tar -x -C "$2"', ROOT, ref, root]);
    await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  }
  const app = join(dir, 'app');
  // The build script of those sources, so each is bundled the way it was committed.
  execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'build.ts'), '--outdir', join(app, 'dist')], { cwd: root, stdio: 'ignore' });
  await symlink(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
  const config = join(dir, 'config.yaml');
  await writeFile(config, stringify({ stateDir: join(dir, 'state'), log: { level: 'info' }, server: { port: 0 }, daemon: { seedFixtures: true } }));
  const build = { label: ref === undefined ? 'working tree' : `${ref} (${execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', ref], { encoding: 'utf8' }).trim()})`, tsx: join(root, 'src', 'cli', 'bin.js'), bundle: join(app, 'dist', 'edgevolve.mjs'), config };
  await (await startDaemon([build.bundle, 'run', '--config', config])).stop();
  return build;
}

interface Rss {
  readonly total: number;
  readonly anon: number;
  readonly file: number;
}

function rssMb(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  return { total: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** CPU time (user + system, all threads) the process has used so far: load-independent, unlike wall time. */
function cpuMs(pid: number): number {
  // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function timeToExit(args: string[]): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((r) => spawn(process.execPath, args, { stdio: 'ignore' }).once('exit', () => r()));
  return performance.now() - t0;
}

/** Spawns the daemon; resolves at its ready line with the elapsed ms, the pid, and a stop function. */
async function startDaemon(args: string[], env: Record<string, string> = {}): Promise<{ ms: number; cpuMs: number; startMs: number; pid: number; stop: () => Promise<void> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let startMs = NaN;
  createInterface({ input: child.stderr }).on('line', (l) => {
    const m = /"event":"daemon-started".*"startMs":(\d+)/.exec(l);
    if (m !== null) startMs = Number(m[1]);
  });
  let cpuAtReady = NaN;
  const ms = await new Promise<number>((resolvePromise, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (!l.startsWith('edgevolve is ready')) return;
      cpuAtReady = cpuMs(child.pid ?? -1);
      resolvePromise(performance.now() - t0);
    });
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before ready`)));
  });
  return {
    ms,
    cpuMs: cpuAtReady,
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

/**
 * A preload that prints process.memoryUsage() (MB) to stderr on SIGUSR2: how much of the idle
 * daemon's RSS is V8 heap. Only in its own start, so it does not touch the rows above.
 */
const MEMORY_PRELOAD = `data:text/javascript,process.on('SIGUSR2', () => process.stderr.write('MEMORY ' + JSON.stringify(process.memoryUsage()) + '\\n'));`;

async function heapOf(args: string[], env: Record<string, string>, idleMs: number): Promise<NodeJS.MemoryUsage> {
  const child = spawn(process.execPath, ['--import', MEMORY_PRELOAD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const usage = new Promise<NodeJS.MemoryUsage>((resolvePromise) => {
    createInterface({ input: child.stderr }).on('line', (l) => {
      if (l.startsWith('MEMORY ')) resolvePromise(JSON.parse(l.slice(7)) as NodeJS.MemoryUsage);
    });
  });
  await new Promise<void>((r) => createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('edgevolve is ready') && r()));
  await sleep(idleMs);
  child.kill('SIGUSR2');
  const result = await usage;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
  });
  return result;
}

async function idleRss(args: string[], idleMs: number): Promise<Rss> {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  await sleep(idleMs);
  const mb = rssMb(child.pid ?? -1);
  child.kill('SIGKILL');
  return mb;
}

const runs = arg('--runs', 3);
const idleMs = arg('--idle-seconds', 10) * 1000;
const baselineRef = textArg('--baseline');
const loadAtStart = loadavg();
const work = await mkdtemp(join(tmpdir(), 'edgevolve-bench-daemon-'));
try {
  const current = await prepareBuild(join(work, 'current'), textArg('--current'));
  const baseline = baselineRef === undefined ? undefined : await prepareBuild(join(work, 'baseline'), baselineRef);
  const BUNDLE = current.bundle;
  const installedFlags = { flags: [SEMI], env: { MALLOC_ARENA_MAX: '2' } };

  const variants: { name: string; entry: string; config: string; flags: string[]; env?: Record<string, string> }[] =
    baseline === undefined
      ? [
          { name: 'tsx: node src/cli/bin.js run', entry: current.tsx, config: current.config, flags: [] },
          { name: `tsx, ${SEMI}`, entry: current.tsx, config: current.config, flags: [SEMI] },
          { name: 'bundle: node dist/edgevolve.mjs run', entry: BUNDLE, config: current.config, flags: [] },
          { name: `bundle, ${SEMI}`, entry: BUNDLE, config: current.config, flags: [SEMI] },
          { name: `bundle, ${SEMI}, MALLOC_ARENA_MAX=2 (as the unit and the image run it)`, entry: BUNDLE, config: current.config, ...installedFlags },
        ]
      : [baseline, current].flatMap((b) => [
          { name: `${b.label}: tsx, node src/cli/bin.js run`, entry: b.tsx, config: b.config, flags: [] },
          { name: `${b.label}: bundle as installed (${SEMI}, MALLOC_ARENA_MAX=2)`, entry: b.bundle, config: b.config, ...installedFlags },
        ]);
  const results = variants.map(() => ({ ready: [] as number[], cpu: [] as number[], internal: [] as number[], rss: [] as Rss[] }));
  const versionMs = { tsx: [] as number[], bundle: [] as number[] };
  for (let round = 0; round < runs; round++) {
    versionMs.tsx.push(await timeToExit([current.tsx, '--version']));
    versionMs.bundle.push(await timeToExit([BUNDLE, '--version']));
    // Alternate the order each round so that drifting machine load does not favour one variant.
    const order = variants.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const v = variants[i]!;
      const r = results[i]!;
      const d = await startDaemon([...v.flags, v.entry, 'run', '--config', v.config], v.env);
      r.ready.push(d.ms);
      r.cpu.push(d.cpuMs);
      r.internal.push(d.startMs);
      await sleep(idleMs);
      r.rss.push(rssMb(d.pid));
      await d.stop();
    }
  }
  const installed = variants.at(-1)!;
  const heap = await heapOf([...installed.flags, installed.entry, 'run', '--config', installed.config], installed.env ?? {}, idleMs);
  const model = join(ROOT, 'test', 'fixtures', 'models', 'mnist-cnn.onnx');
  const nodeIdle = await idleRss(['-e', 'setInterval(() => {}, 1000)'], idleMs);
  const ortIdle = await idleRss(['-e', `require('onnxruntime-node').InferenceSession.create(${JSON.stringify(model)}, { intraOpNumThreads: 1 }).then((s) => { globalThis.s = s; setInterval(() => {}, 1000); })`], idleMs);

  const mb = (x: number): string => `${x.toFixed(1)} MB`;
  console.log(`| how it runs | spawn to ready (median of ${runs}) | CPU time to ready | of which Daemon.start() (wall) | idle RSS after ${idleMs / 1000} s (median) | RssAnon / RssFile |\n|---|---:|---:|---:|---:|---:|`);
  variants.forEach((v, i) => {
    const r = results[i]!;
    const rss = (key: keyof Rss): number => median(r.rss.map((x) => x[key]));
    console.log(`| ${v.name} | ${median(r.ready).toFixed(0)} ms | ${median(r.cpu).toFixed(0)} ms | ${median(r.internal).toFixed(0)} ms | ${mb(rss('total'))} | ${mb(rss('anon'))} / ${mb(rss('file'))} |`);
  });
  console.log(`\nbaselines (same run): --version spawn to exit: tsx ${median(versionMs.tsx).toFixed(0)} ms, bundle ${median(versionMs.bundle).toFixed(0)} ms; ` +
    `idle node ${mb(nodeIdle.total)} (${mb(nodeIdle.anon)} / ${mb(nodeIdle.file)}); node + one onnxruntime session of the model ${mb(ortIdle.total)} (${mb(ortIdle.anon)} / ${mb(ortIdle.file)}). Targets: ready <= 3000 ms, idle RSS <= 120 MB.`);
  const heapMb = (x: number): string => (x / 1024 ** 2).toFixed(1);
  console.log(`as installed, process.memoryUsage() after ${idleMs / 1000} s idle (MB): rss ${heapMb(heap.rss)}, heapTotal ${heapMb(heap.heapTotal)}, heapUsed ${heapMb(heap.heapUsed)}, external ${heapMb(heap.external)}, arrayBuffers ${heapMb(heap.arrayBuffers)}`);
  variants.forEach((v, i) => console.log(`${v.name}: ready runs (ms) ${results[i]!.ready.map((x) => x.toFixed(0)).join(', ')}; RSS runs (MB) ${results[i]!.rss.map((x) => x.total.toFixed(1)).join(', ')}`));
  console.log(`node ${process.version}, ${process.arch}, load average ${loadAtStart.map((x) => x.toFixed(1)).join(' ')} at start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end`);
} finally {
  await rm(work, { recursive: true, force: true });
}
