/**
 * Power-loss test (reliability.md P1): SIGKILL the daemon at random moments while it
 * pulls, activates and trials a new model version, restart it, and check that it then
 * serves the old or the new version — ready, answering inferences — never neither.
 * `--scenario optimize` kills it instead while it optimizes the served fp32 model on the
 * device (planner search, the local variant written to the store) and trials the result.
 * `--scenario shadow` kills it while the update runs in shadow mode under live KServe
 * traffic (the candidate mirrored, promoted, then on trial); every `--storm-every`-th run
 * is a storm that kills each re-entered shadow again, `deploy.maxTrialEntries` times in a
 * row, to check that the re-entries stay bounded (the candidate is then abandoned).
 *
 *   npx tsx scripts/kill-test.ts [--runs 50] [--seed 1] [--scenario update|optimize|shadow] [--storm-every 4] [--json]
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
import { readNpy } from '../src/data/npy.ts';
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
  /** SIGKILLs in this run: 1, or up to `deploy.maxTrialEntries` in a shadow storm. */
  readonly kills: number;
  /** Shadow scenario: the highest re-entry count a `shadow-started` event carried in this run. */
  readonly maxShadowEntries: number | null;
  /** Shadow scenario: the restarted daemon abandoned the candidate (`deploy-aborted`). */
  readonly abandoned: boolean;
}

export type KillScenario = 'update' | 'optimize' | 'shadow';

export interface KillTestResult {
  readonly scenario: KillScenario;
  readonly runs: readonly KillRun[];
  readonly readyMs: number;
  readonly deployMs: number;
  /** Shadow scenario: READY to `shadow-started` and to `shadow-promoted` in the clean run. */
  readonly shadowStartMs?: number;
  readonly promotedMs?: number;
  readonly failures: readonly KillRun[];
}

interface Spawned {
  kill(signal: NodeJS.Signals): void;
  readonly exited: Promise<number | null>;
  readonly events: string[];
  readonly lines: readonly string[];
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
    lines,
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
  ['"event":"shadow-started"', 'shadowing'],
  ['"event":"shadow-promoted"', 'promoted'],
  ['"event":"shadow-rejected"', 'rejected in shadow'],
  ['"event":"deploy-aborted"', 'aborted'],
  ['"event":"deploy-started"', 'activated, on trial'],
  ['"event":"deploy-committed"', 'committed'],
  ['"event":"deploy-rolled-back"', 'rolled back'],
];

/** The optimize scenario: a generous latency budget, the smallest model that meets it, a small and quick search. */
const OPTIMIZE_MODEL = { budgets: { latencyP95Ms: 1000 }, optimize: 'always', optimizeTimeLimitS: 60, optimizeMethods: ['int8-dynamic'] };
const OPTIMIZE_PLANNER = { objective: 'size', maxAccuracyDrop: 5, subsetSamples: 100, sensitivitySamples: 100, calibrationSamples: 100, benchMs: 150, maxFullCandidates: 2 };

/**
 * The shadow scenario: every live request mirrored, judged after 150 of them; the agreement
 * and latency limits are loose because this test is about kills, not about the gate's verdict.
 */
const MAX_TRIAL_ENTRIES = 3;
const SHADOW = { enabled: true, share: 1, minRequests: 150, maxDurationMs: 60_000, minAgreement: 0.9, maxLatencyRatio: 50, maxInFlight: 4, checkIntervalMs: 20, onNoTraffic: 'promote' };

async function writeConfig(dir: string, stateDir: string, ref: string, scenario: KillScenario = 'update'): Promise<string> {
  const optimizing = scenario === 'optimize';
  const path = join(dir, 'config.yaml');
  await writeFile(
    path,
    stringify({
      stateDir,
      log: { level: 'info' },
      server: { port: 0 },
      // Reconcile right after start (the default waits 5 min after the first pass).
      daemon: { models: [{ name: 'm', ref, ...(optimizing ? OPTIMIZE_MODEL : { optimize: 'never' }) }], reconcileIntervalMs: 600_000 },
      deploy: { minTrialMs: 500, minSamples: 10, trialProbeIntervalMs: 20, maxTrialEntries: MAX_TRIAL_ENTRIES, ...(scenario === 'shadow' ? { shadow: SHADOW } : {}) },
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

/** Live KServe traffic on real MNIST digits, one request at a time, until stopped; errors (a killed daemon) are skipped. */
function driveTraffic(url: string, bodies: readonly string[]): { answered(): number; stop(): Promise<number> } {
  let stopped = false;
  let answered = 0;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        const response = await fetch(`${url}/v2/models/m/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[i % bodies.length] });
        await response.arrayBuffer();
        if (response.ok) answered++;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  })();
  return {
    answered: () => answered,
    stop: async () => {
      stopped = true;
      await loop;
      return answered;
    },
  };
}

async function digitBodies(count: number): Promise<string[]> {
  const images = (await readNpy(join(ROOT, 'test', 'fixtures', 'data', 'mnist-test', 'input.npy'))).data as Float32Array;
  const pixels = 28 * 28;
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(images.subarray(i * pixels, (i + 1) * pixels)) }] }),
  );
}

function shadowEntries(lines: readonly string[]): number[] {
  return lines.filter((l) => l.includes('"event":"shadow-started"')).map((l) => (JSON.parse(l) as { entries: number }).entries);
}

/** The shadow scenario's clean run, from READY: promotion to commit, the window a kill after promotion is aimed at. */
interface ShadowTimings {
  readonly promotedMs: number;
  readonly deployMs: number;
}

/**
 * One shadow-scenario run: the daemon starts with 2.0.0 desired and live traffic flowing.
 * Half the runs are killed at a random point of the shadow: after a uniformly drawn number
 * of answered requests (0 to 1.2x `minRequests`) since `shadow-started`, since the shadow
 * progresses with the traffic, not the clock (time under a varying load put most kills
 * after the commit). The other half are killed at a random point after `shadow-promoted`,
 * within 1.2x the clean run's promotion to commit (the session handover, activation and
 * the trial, which is timed: `minTrialMs`). A storm run sends no traffic (so the shadow
 * cannot finish) and kills each re-entered shadow again within its first half second,
 * until the limit: the next start must abandon the candidate. Then the daemon is
 * restarted and checked at READY.
 */
async function shadowRun(run: number, config: string, storm: boolean, timings: ShadowTimings, bodies: readonly string[], random: () => number): Promise<Omit<KillRun, 'served' | 'variant' | 'inferenceOk'> & { readonly final: { daemon: Spawned; url: string } }> {
  const entries: number[] = [];
  let kills = 0;
  let phaseAtKill = 'before the first log line';
  const spawnedAt = performance.now();
  for (;;) {
    const { daemon: victim, url } = await startAndWaitReady(config);
    const traffic = storm ? undefined : driveTraffic(url, bodies);
    try {
      const afterPromotion = !storm && random() < 0.5;
      const anchor = afterPromotion ? '"event":"shadow-promoted"' : '"event":"shadow-started"';
      await victim.waitFor((l) => l.includes(anchor), 120_000);
      if (storm || afterPromotion) {
        await new Promise((r) => setTimeout(r, Math.round(random() * (storm ? 500 : (timings.deployMs - timings.promotedMs) * 1.2))));
      } else {
        const until = (traffic?.answered() ?? 0) + Math.round(random() * SHADOW.minRequests * 1.2);
        for (let waited = 0; (traffic?.answered() ?? 0) < until && waited < 120_000; waited += 2) await new Promise((r) => setTimeout(r, 2));
      }
      victim.kill('SIGKILL');
      await victim.exited;
    } finally {
      await traffic?.stop();
    }
    kills++;
    entries.push(...shadowEntries(victim.lines));
    phaseAtKill = victim.events.at(-1) ?? phaseAtKill;
    if (!storm || phaseAtKill !== 'shadowing' || kills >= MAX_TRIAL_ENTRIES) break;
  }
  const killAfterMs = Math.round(performance.now() - spawnedAt);
  const final = await startAndWaitReady(config);
  return { run, killAfterMs, phaseAtKill, kills, maxShadowEntries: entries.length === 0 ? null : Math.max(...entries), abandoned: final.daemon.lines.some((l) => l.includes('"event":"deploy-aborted"')), final };
}

export async function runKillTest(options: { runs: number; seed: number; scenario?: KillScenario; stormEvery?: number; log?: (line: string) => void }): Promise<KillTestResult> {
  const log = options.log ?? (() => undefined);
  const scenario = options.scenario ?? 'update';
  const optimizing = scenario === 'optimize';
  const shadowing = scenario === 'shadow';
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
      // In shadow mode the candidate is the same network (it agrees, so the shadow promotes it); otherwise mnist-mlp.
      await pushArtifact(layout, { name: 'm', version: '2.0.0', variants: [{ name: 'fp32', modelPath: join(MODELS, shadowing ? 'mnist-cnn.onnx' : 'mnist-mlp.onnx') }] }, '2.0.0');
    }
    // The update scenarios go to 2.0.0; the optimize scenario stays on 1.0.0 and builds a variant of it.
    const target = `oci-layout:${layoutDir}:${optimizing ? '1.0.0' : '2.0.0'}`;
    const bodies = shadowing ? await digitBodies(200) : [];

    // Baseline: v1 deployed and committed, the daemon stopped cleanly.
    const baseline = join(work, 'baseline');
    const v1 = await startAndWaitReady(await writeConfig(work, baseline, `oci-layout:${layoutDir}:1.0.0`));
    v1.daemon.kill('SIGTERM');
    await v1.daemon.exited;

    // Calibration: how long start-up takes (spawn to READY) and a clean update (READY to commit), under live traffic in shadow mode.
    const calib = join(work, 'calib');
    await cp(baseline, calib, { recursive: true });
    const t0 = performance.now();
    const clean = spawnDaemon(await writeConfig(work, calib, target, scenario));
    const readyLine = await clean.waitFor((l) => l.startsWith('edgevolve is ready'), 120_000);
    const readyMs = performance.now() - t0;
    const traffic = shadowing ? driveTraffic(/on (http:\/\/[^\s;]+)/.exec(readyLine)?.[1] ?? '', bodies) : undefined;
    let shadowStartMs = 0;
    let promotedMs = 0;
    if (shadowing) {
      await clean.waitFor((l) => l.includes('"event":"shadow-started"'), 120_000);
      shadowStartMs = performance.now() - t0 - readyMs;
      await clean.waitFor((l) => l.includes('"event":"shadow-promoted"'), 120_000);
      promotedMs = performance.now() - t0 - readyMs;
    }
    await clean.waitFor((l) => l.includes('"event":"deploy-committed"'), 300_000);
    const deployMs = performance.now() - t0 - readyMs;
    await traffic?.stop();
    clean.kill('SIGTERM');
    await clean.exited;
    const what = optimizing ? 'on-device optimization of v1' : shadowing ? `update v1 -> v2 through a shadow (started ${shadowStartMs.toFixed(0)} ms after READY, promoted at ${promotedMs.toFixed(0)} ms)` : 'update v1 -> v2';
    log(`clean start: ${readyMs.toFixed(0)} ms to READY; ${what}: ${deployMs.toFixed(0)} ms from READY to commit`);

    const random = uniform01(options.seed);
    const runs: KillRun[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const stateDir = join(work, `run-${run}`);
      await cp(baseline, stateDir, { recursive: true });
      const config = await writeConfig(work, stateDir, target, scenario);
      let killed: Omit<KillRun, 'served' | 'variant' | 'inferenceOk'>;
      let restarted: { daemon: Spawned; url: string };
      if (shadowing) {
        const { final, ...rest } = await shadowRun(run, config, run % (options.stormEvery ?? 4) === 0, { promotedMs, deployMs }, bodies, random);
        killed = rest;
        restarted = final;
      } else {
        const victim = spawnDaemon(config);
        const spawnedAt = performance.now();
        // One kill in five lands during start-up; the rest after READY, across the pull, activation and trial.
        const duringStart = random() < 0.2;
        if (!duringStart) await victim.waitFor((l) => l.startsWith('edgevolve is ready'), 120_000);
        const delay = Math.round(random() * (duringStart ? readyMs : deployMs * 1.2));
        await new Promise((r) => setTimeout(r, delay));
        victim.kill('SIGKILL');
        await victim.exited;
        killed = { run, killAfterMs: Math.round(performance.now() - spawnedAt), phaseAtKill: victim.events.at(-1) ?? 'before the first log line', kills: 1, maxShadowEntries: null, abandoned: false };
        restarted = await startAndWaitReady(config);
      }
      const seen = await servedVersion(restarted.url);
      restarted.daemon.kill('SIGTERM');
      await restarted.daemon.exited;
      await rm(stateDir, { recursive: true, force: true });
      const result: KillRun = { ...killed, ...seen };
      runs.push(result);
      const storm = result.kills > 1 ? `, ${result.kills} kills in a row, shadow entries up to ${result.maxShadowEntries ?? 0}${result.abandoned ? ', candidate abandoned' : ''}` : '';
      log(
        `run ${run}: killed ${result.killAfterMs} ms after spawn (${result.phaseAtKill}${storm}); restarted daemon serves ${seen.served === null ? 'NOTHING' : `${seen.served}/${seen.variant ?? '?'}`}${seen.inferenceOk ? '' : ' (inference FAILED)'}`,
      );
    }
    const failures = runs.filter((r) => !r.inferenceOk || classify(scenario, r) === 'neither' || unbounded(r));
    return { scenario, runs, readyMs, deployMs, ...(shadowing ? { shadowStartMs, promotedMs } : {}), failures };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Re-entries must stay bounded: no shadow is started more than `maxTrialEntries` times, and a
 * storm that killed every one of them leaves the candidate abandoned and the old version serving.
 */
function unbounded(r: KillRun): boolean {
  if ((r.maxShadowEntries ?? 0) > MAX_TRIAL_ENTRIES) return true;
  return r.kills === MAX_TRIAL_ENTRIES && r.phaseAtKill === 'shadowing' && (!r.abandoned || r.served !== '1.0.0');
}

/** Old: what served before (1.0.0/fp32); new: the update (2.0.0) or the variant optimized on the device (1.0.0/opt-...). */
function classify(scenario: KillScenario, r: Pick<KillRun, 'served' | 'variant' | 'inferenceOk'>): 'old' | 'new' | 'neither' {
  if (!r.inferenceOk || r.served === null) return 'neither';
  if (scenario !== 'optimize') return r.served === '1.0.0' ? 'old' : r.served === '2.0.0' ? 'new' : 'neither';
  if (r.served !== '1.0.0') return 'neither';
  return r.variant === 'fp32' ? 'old' : r.variant?.startsWith('opt-') === true ? 'new' : 'neither';
}

function table(result: KillTestResult): string {
  const byPhase = new Map<string, { runs: number; old: number; new: number; neither: number }>();
  for (const r of result.runs) {
    const phase = r.kills > 1 ? `shadowing, killed again in each re-entered shadow (${r.kills} kills${r.abandoned ? ', then abandoned' : ''})` : r.phaseAtKill;
    const row = byPhase.get(phase) ?? { runs: 0, old: 0, new: 0, neither: 0 };
    row.runs++;
    row[classify(result.scenario, r)]++;
    byPhase.set(phase, row);
  }
  const [oldLabel, newLabel] = result.scenario === 'optimize' ? ['1.0.0/fp32', '1.0.0/opt-…, built here'] : ['1.0.0', '2.0.0'];
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
  if (scenario !== 'update' && scenario !== 'optimize' && scenario !== 'shadow') throw new Error(`--scenario ${String(scenario)}: expected update, optimize or shadow`);
  const result = await runKillTest({ runs: flag('--runs', 50), seed: flag('--seed', 1), scenario, stormEvery: flag('--storm-every', 4), log: json ? undefined : (l) => console.error(l) });
  if (json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(table(result));
    const what = result.scenario === 'optimize' ? 'on-device optimization' : result.scenario === 'shadow' ? `update through a shadow (shadow started ${(result.shadowStartMs ?? 0).toFixed(0)} ms after READY, promoted at ${(result.promotedMs ?? 0).toFixed(0)} ms)` : 'update';
    console.log(`\n${result.runs.length} runs, ${result.failures.length} failing (serving neither version${result.scenario === 'shadow' ? ', or re-entries unbounded' : ''}); clean start ${result.readyMs.toFixed(0)} ms to READY, ${what} ${result.deployMs.toFixed(0)} ms READY to commit`);
    if (result.scenario === 'shadow') {
      const entries = result.runs.map((r) => r.maxShadowEntries ?? 0);
      console.log(`shadow re-entries: at most ${Math.max(0, ...entries)} (limit ${MAX_TRIAL_ENTRIES}); ${result.runs.filter((r) => r.abandoned).length} runs ended with the candidate abandoned; ${result.runs.reduce((n, r) => n + r.kills, 0)} SIGKILLs in all`);
    }
  }
  process.exitCode = result.failures.length === 0 ? 0 : 1;
}
