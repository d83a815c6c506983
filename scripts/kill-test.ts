/**
 * Power-loss test (reliability.md P1): SIGKILL the daemon at random moments while it
 * pulls, activates and trials a new model version, restart it, and check that it then
 * serves the old or the new version — ready, answering inferences — never neither.
 * `--scenario optimize` kills it instead while it optimizes the served fp32 model on the
 * device (planner search, the local variant written to the store) and trials the result.
 *
 *   npx tsx scripts/kill-test.ts [--runs 50] [--seed 1] [--scenario update|optimize] [--json]
 *
 * Each run starts from a copy of one baseline state directory (v1 active, v2 desired in
 * a local OCI layout), so runs are independent. One kill in five lands during start-up,
 * the rest after READY spread uniformly over the time a clean update takes (measured
 * first), and each run records the last daemon milestone it logged before the kill, so
 * the table shows where the kills landed. The restarted daemon is checked at READY.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { uniform01 } from '../src/data/prng.ts';
import { OciLayout, pushArtifact } from '../src/registry/index.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const BIN = join(ROOT, 'src', 'cli', 'bin.js');
const MODELS = join(ROOT, 'test', 'fixtures', 'models');

export interface KillRun {
  readonly run: number;
  readonly killAfterMs: number;
  /** The last daemon milestone logged before the kill. */
  readonly phaseAtKill: string;
  /** What the restarted daemon serves: its version (and variant). */
  readonly served: string | null;
  readonly variant: string | null;
  readonly inferenceOk: boolean;
}

export type KillScenario = 'update' | 'optimize';

export interface KillTestResult {
  readonly scenario: KillScenario;
  readonly runs: readonly KillRun[];
  readonly readyMs: number;
  readonly deployMs: number;
  readonly failures: readonly KillRun[];
}

interface Spawned {
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<number | null>;
  readonly events: string[];
  waitFor(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
}

function spawnDaemon(config: string): Spawned {
  const child = spawn(process.execPath, [BIN, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  const lines: string[] = [];
  const events: string[] = [];
  const waiters = new Set<() => void>();
  const onLine = (line: string): void => {
    lines.push(line);
    const milestone = MILESTONES.find(([needle]) => line.includes(needle));
    if (milestone !== undefined) events.push(milestone[1]);
    for (const w of waiters) w();
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    kill: (signal) => child.kill(signal),
    exited,
    events,
    waitFor: (match, timeoutMs) =>
      new Promise((resolvePromise, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolvePromise(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; last lines:\n${lines.slice(-8).join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        void exited.then(() => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`daemon exited; last lines:\n${lines.slice(-8).join('\n')}`));
        });
      }),
  };
}

/** Log lines that mark progress through a deployment, in order. */
const MILESTONES: readonly (readonly [string, string])[] = [
  ['"msg":"edgevolve starting"', 'starting'],
  ['"msg":"serving the active version"', 'old version loaded'],
  ['"msg":"downloading model layer"', 'pulling'],
  ['"msg":"model layer verified"', 'pulled'],
  ['"msg":"on-device optimization started"', 'optimizing'],
  ['"msg":"on-device optimization finished"', 'optimized, stored'],
  ['"event":"deploy-started"', 'activated, on trial'],
  ['"event":"deploy-committed"', 'committed'],
  ['"event":"deploy-rolled-back"', 'rolled back'],
];

/** The optimize scenario: a generous latency budget, the smallest model that meets it, a small and quick search. */
const OPTIMIZE_MODEL = { budgets: { latencyP95Ms: 1000 }, optimize: 'always', optimizeTimeLimitS: 60, optimizeMethods: ['int8-dynamic'] };
const OPTIMIZE_PLANNER = { objective: 'size', maxAccuracyDrop: 5, subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2 };

async function writeConfig(dir: string, stateDir: string, ref: string, optimizing = false): Promise<string> {
  const path = join(dir, 'config.yaml');
  await writeFile(
    path,
    stringify({
      stateDir,
      log: { level: 'info' },
      server: { port: 0 },
      // Reconcile right after start (the default waits 5 min after the first pass).
      daemon: { models: [{ name: 'm', ref, ...(optimizing ? OPTIMIZE_MODEL : { optimize: 'never' }) }], reconcileIntervalMs: 600_000 },
      deploy: { minTrialMs: 500, minSamples: 10, trialProbeIntervalMs: 20 },
      ...(optimizing ? { planner: OPTIMIZE_PLANNER } : {}),
    }),
  );
  return path;
}

async function servedVersion(url: string): Promise<{ served: string | null; variant: string | null; inferenceOk: boolean }> {
  const ready = await fetch(`${url}/v2/health/ready`);
  if (ready.status !== 200) return { served: null, variant: null, inferenceOk: false };
  const meta = (await (await fetch(`${url}/v2/models/m`)).json()) as { parameters?: { version?: string; variant?: string } };
  const request = { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array<number>(784).fill(0) }] };
  const infer = await fetch(`${url}/v2/models/m/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
  return { served: meta.parameters?.version ?? null, variant: meta.parameters?.variant ?? null, inferenceOk: infer.status === 200 };
}

async function startAndWaitReady(config: string): Promise<{ daemon: Spawned; url: string }> {
  const daemon = spawnDaemon(config);
  const line = await daemon.waitFor((l) => l.startsWith('edgevolve is ready'), 120_000);
  const url = /on (http:\/\/[^\s;]+)/.exec(line)?.[1];
  if (url === undefined) throw new Error(`no URL in the ready line: ${line}`);
  return { daemon, url };
}

export async function runKillTest(options: { runs: number; seed: number; scenario?: KillScenario; log?: (line: string) => void }): Promise<KillTestResult> {
  const log = options.log ?? (() => undefined);
  const scenario = options.scenario ?? 'update';
  const optimizing = scenario === 'optimize';
  const work = await mkdtemp(join(tmpdir(), 'edgevolve-kill-'));
  try {
    const layoutDir = join(work, 'oci');
    const layout = new OciLayout(layoutDir);
    await layout.init();
    if (optimizing) {
      // mnist-mlp with its calibration set: the planner's data comes with the artifact.
      await pushArtifact(layout, { name: 'm', version: '1.0.0', calibrationDir: join(ROOT, 'test', 'fixtures', 'data', 'mnist-calib'), variants: [{ name: 'fp32', modelPath: join(MODELS, 'mnist-mlp.onnx') }] }, '1.0.0');
    } else {
      await pushArtifact(layout, { name: 'm', version: '1.0.0', variants: [{ name: 'fp32', modelPath: join(MODELS, 'mnist-cnn.onnx') }] }, '1.0.0');
      await pushArtifact(layout, { name: 'm', version: '2.0.0', variants: [{ name: 'fp32', modelPath: join(MODELS, 'mnist-mlp.onnx') }] }, '2.0.0');
    }
    // The update scenario goes to 2.0.0; the optimize scenario stays on 1.0.0 and builds a variant of it.
    const target = `oci-layout:${layoutDir}:${optimizing ? '1.0.0' : '2.0.0'}`;

    // Baseline: v1 deployed and committed, the daemon stopped cleanly.
    const baseline = join(work, 'baseline');
    const v1 = await startAndWaitReady(await writeConfig(work, baseline, `oci-layout:${layoutDir}:1.0.0`));
    v1.daemon.kill('SIGTERM');
    await v1.daemon.exited;

    // Calibration: how long start-up takes (spawn to READY) and a clean update (READY to commit).
    const calib = join(work, 'calib');
    await cp(baseline, calib, { recursive: true });
    const t0 = performance.now();
    const clean = spawnDaemon(await writeConfig(work, calib, target, optimizing));
    await clean.waitFor((l) => l.startsWith('edgevolve is ready'), 120_000);
    const readyMs = performance.now() - t0;
    await clean.waitFor((l) => l.includes('"event":"deploy-committed"'), 300_000);
    const deployMs = performance.now() - t0 - readyMs;
    clean.kill('SIGTERM');
    await clean.exited;
    log(`clean start: ${readyMs.toFixed(0)} ms to READY; ${optimizing ? 'on-device optimization of v1' : 'update v1 -> v2'}: ${deployMs.toFixed(0)} ms from READY to commit`);

    const random = uniform01(options.seed);
    const runs: KillRun[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const stateDir = join(work, `run-${run}`);
      await cp(baseline, stateDir, { recursive: true });
      const config = await writeConfig(work, stateDir, target, optimizing);
      const victim = spawnDaemon(config);
      const spawnedAt = performance.now();
      // One kill in five lands during start-up; the rest after READY, across the pull, activation and trial.
      const duringStart = random() < 0.2;
      if (!duringStart) await victim.waitFor((l) => l.startsWith('edgevolve is ready'), 120_000);
      const delay = Math.round(random() * (duringStart ? readyMs : deployMs * 1.2));
      await new Promise((r) => setTimeout(r, delay));
      victim.kill('SIGKILL');
      await victim.exited;
      const killAfterMs = Math.round(performance.now() - spawnedAt);
      const phaseAtKill = victim.events.at(-1) ?? 'before the first log line';
      const { daemon, url } = await startAndWaitReady(config);
      const seen = await servedVersion(url);
      daemon.kill('SIGTERM');
      await daemon.exited;
      await rm(stateDir, { recursive: true, force: true });
      const result = { run, killAfterMs, phaseAtKill, ...seen };
      runs.push(result);
      log(`run ${run}: killed ${killAfterMs} ms after spawn (${phaseAtKill}); restarted daemon serves ${seen.served === null ? 'NOTHING' : `${seen.served}/${seen.variant ?? '?'}`}${seen.inferenceOk ? '' : ' (inference FAILED)'}`);
    }
    const failures = runs.filter((r) => !r.inferenceOk || classify(scenario, r) === 'neither');
    return { scenario, runs, readyMs, deployMs, failures };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Old: what served before (1.0.0/fp32); new: the update (2.0.0) or the variant optimized on the device (1.0.0/opt-...). */
function classify(scenario: KillScenario, r: Pick<KillRun, 'served' | 'variant' | 'inferenceOk'>): 'old' | 'new' | 'neither' {
  if (!r.inferenceOk || r.served === null) return 'neither';
  if (scenario === 'update') return r.served === '1.0.0' ? 'old' : r.served === '2.0.0' ? 'new' : 'neither';
  if (r.served !== '1.0.0') return 'neither';
  return r.variant === 'fp32' ? 'old' : r.variant?.startsWith('opt-') === true ? 'new' : 'neither';
}

function table(result: KillTestResult): string {
  const byPhase = new Map<string, { runs: number; old: number; new: number; neither: number }>();
  for (const r of result.runs) {
    const row = byPhase.get(r.phaseAtKill) ?? { runs: 0, old: 0, new: 0, neither: 0 };
    row.runs++;
    row[classify(result.scenario, r)]++;
    byPhase.set(r.phaseAtKill, row);
  }
  const [oldLabel, newLabel] = result.scenario === 'update' ? ['1.0.0', '2.0.0'] : ['1.0.0/fp32', '1.0.0/opt-…, built here'];
  const lines = [`| killed during | runs | serves old (${oldLabel}) | serves new (${newLabel}) | serves neither |`, '|---|---:|---:|---:|---:|'];
  for (const [phase, row] of byPhase) lines.push(`| ${phase} | ${row.runs} | ${row.old} | ${row.new} | ${row.neither} |`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number): number => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const json = args.includes('--json');
  const scenarioAt = args.indexOf('--scenario');
  const scenario = scenarioAt >= 0 ? args[scenarioAt + 1] : 'update';
  if (scenario !== 'update' && scenario !== 'optimize') throw new Error(`--scenario ${String(scenario)}: expected update or optimize`);
  const result = await runKillTest({ runs: flag('--runs', 50), seed: flag('--seed', 1), scenario, log: json ? undefined : (l) => console.error(l) });
  if (json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(table(result));
    console.log(`\n${result.runs.length} runs, ${result.failures.length} serving neither version; clean start ${result.readyMs.toFixed(0)} ms to READY, ${result.scenario === 'update' ? 'update' : 'on-device optimization'} ${result.deployMs.toFixed(0)} ms READY to commit`);
  }
  process.exitCode = result.failures.length === 0 ? 0 : 1;
}
