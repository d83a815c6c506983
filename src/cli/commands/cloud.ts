import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../host/index.ts';
import { readNpy } from '../../data/npy.ts';
import { createLogger } from '../../log/index.ts';
import {
  DEFAULT_DISTIL_OPTIONS,
  compareStudents,
  controlCommander,
  pickCanaries,
  rollOut,
  rolloutTargets,
  versionOfRef,
  distilStudent,
  FleetDatabase,
  labelWithTeachers,
  readReceivedSamples,
  startIngest,
  startSampleReceiver,
} from '../../coevolution/cloud/index.ts';
import { loadTrainingReplay, openPredictor, type FieldSet, type Predictor } from '../../coevolution/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import { printJson, runAction, usageError } from '../output.ts';
import { assertId, parsePrivateKey } from '../../control/index.ts';
import mqtt from 'mqtt';
import { basename, extname } from 'node:path';

/**
 * `edgevolve cloud ...`: the reference cloud side of co-evolution, each sub-command its own
 * process: ingest (broker -> fleet database), fleet (the fleet view), receive (hard-sample
 * upload endpoint), distil (teacher labels -> distilled student, written only if better).
 */
export function registerCloud(program: Command): void {
  const cloud = program.command('cloud').description('The reference cloud-side co-evolution loop (ingest, fleet view, sample receiver, distillation).');

  cloud
    .command('ingest')
    .description('Subscribe to the fleet\'s state, telemetry and events through a shared subscription ($share/<group>/...) and store them in the fleet database; runs until SIGINT/SIGTERM.')
    .requiredOption('--broker <url>', 'mqtt://host:port or mqtts://...')
    .requiredOption('--db <file>', 'fleet database (better-sqlite3, created when absent)')
    .option('--group <name>', 'shared-subscription group: workers with one group split the fleet', 'edgevolve-cloud')
    .option('--fleet <id>', 'fleet id, or + for all', '+')
    .option('--client-id <id>', 'MQTT client id (unique per worker)')
    .option('--username <name>')
    .option('--password <secret>')
    .action(async (opts: { broker: string; db: string; group: string; fleet: string; clientId?: string; username?: string; password?: string }) => {
      await runAction(false, async () => {
        const logger = createLogger().child({ module: 'cloud-ingest' });
        const db = FleetDatabase.open(opts.db);
        const worker = await startIngest(db, {
          brokerUrl: opts.broker, group: opts.group, fleet: opts.fleet, clientId: opts.clientId ?? `edgevolve-cloud-${process.pid}`,
          username: opts.username, password: opts.password,
        }, (err) => logger.warn({ code: err.code }, err.message));
        logger.info({ broker: opts.broker, group: opts.group, fleet: opts.fleet }, 'ingesting');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await worker.close();
        db.close();
        logger.info(worker.stats, 'stopped');
      });
    });

  cloud
    .command('fleet')
    .description('Show the fleet: devices, versions, health, drift and hard-sample rates (from the fleet database).')
    .requiredOption('--db <file>', 'fleet database written by edgevolve cloud ingest')
    .option('--window <seconds>', 'telemetry window for health and rates', '3600')
    .option('--json', 'print one JSON document')
    .action(async (opts: { db: string; window: string; json?: boolean }) => {
      await runAction(Boolean(opts.json), () => {
        const windowS = Number(opts.window);
        if (!(windowS > 0)) throw usageError(`--window ${opts.window} is not a positive number of seconds`);
        const db = FleetDatabase.open(opts.db);
        try {
          const devices = db.fleet(Date.now(), windowS * 1000);
          if (opts.json) {
            printJson({ ok: true, devices, counters: db.counters() });
            return;
          }
          const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
          const rows = [['FLEET', 'DEVICE', 'STATUS', 'MODEL', 'VERSION', 'HEALTH', 'P95 MS', 'ERRORS', 'DRIFT', 'HARD RATE', 'LAST SEEN']];
          for (const d of devices) {
            rows.push([d.fleet, d.device, d.status, d.model ?? '-', d.version ?? '-', d.health, d.p95Ms?.toFixed(2) ?? '-', pct(d.errorRate), d.driftScore?.toFixed(3) ?? '-', pct(d.hardSampleRate), new Date(d.lastSeen).toISOString()]);
          }
          const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
          for (const r of rows) process.stdout.write(`${r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd()}\n`);
          if (devices.length === 0) process.stdout.write('(no devices yet)\n');
        } finally {
          db.close();
        }
      });
    });

  cloud
    .command('receive')
    .description('Accept hard-sample batches from devices (POST /v1/samples; coevolution.upload.target: http) into a directory; runs until SIGINT/SIGTERM.')
    .requiredOption('--dir <dir>', 'where batches are stored (<dir>/<device>/<batch>.json)')
    .option('--host <address>', 'listen address', '127.0.0.1')
    .option('--port <n>', 'TCP port', '8090')
    .option('--token <secret>', 'bearer token devices must send')
    .option('--max-body <bytes>', 'largest batch accepted', String(64 * 1024 * 1024))
    .action(async (opts: { dir: string; host: string; port: string; token?: string; maxBody: string }) => {
      await runAction(false, async () => {
        const receiver = await startSampleReceiver({ dir: opts.dir, host: opts.host, port: Number(opts.port), maxBodyBytes: Number(opts.maxBody), token: opts.token });
        process.stderr.write(`receiving hard samples at ${receiver.url}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await receiver.close();
      });
    });

  cloud
    .command('rollout')
    .description('Canary rollout of a published model: signed deploy commands to a share of the fleet\'s devices, their telemetry watched against their own pre-rollout numbers, then deploy to the rest, or roll the canaries back with signed rollback commands (exit 1).')
    .argument('<ref>', 'the new version: host[:port]/repo:tag or oci-layout:<dir>:tag (the tag is the version unless --version)')
    .requiredOption('--broker <url>', 'mqtt://host:port or mqtts://...')
    .requiredOption('--db <file>', 'fleet database (edgevolve cloud ingest; this command also ingests the fleet\'s messages into it while it runs)')
    .requiredOption('--fleet <id>', 'fleet id')
    .option('--canary <share>', 'share of the devices that get it first, in (0, 1]', '0.1')
    .option('--watch <seconds>', 'how long the canaries may take to show enough telemetry on the new version', '600')
    .option('--model <name>', 'only devices serving this model')
    .option('--version <v>', 'the version the devices will report (default: the tag of <ref>)')
    .option('--previous <v>', 'the baseline version (default: the one most devices serve)')
    .option('--min-inferences <n>', 'inferences each canary must serve on the new version before it is judged', '100')
    .option('--max-error-rate <r>', 'canary error share above this rolls back', '0.01')
    .option('--max-latency-ratio <x>', 'canary p95 above x times its own p95 before rolls back', '1.5')
    .option('--max-hard-rate-increase <d>', 'canary hard-sample (low-confidence) rate rising by more than d rolls back', '0.05')
    .option('--trial <seconds>', 'deploy rollout.trialSeconds: how long each device keeps it on trial')
    .option('--command-timeout <seconds>', 'how long to wait for each device\'s deploy/rollback result', '600')
    .option('--settle <seconds>', 'wait for retained device states before choosing devices', '2')
    .option('--key <pem>', 'fleet signing key (Ed25519 or ECDSA P-256 private key, PEM)')
    .option('--key-id <id>', 'keyId the devices know the key by (default: the key file name without extension)')
    .option('--unsigned', 'send without a signature (only devices with control.trustBrokerAcl accept it)')
    .option('--username <name>')
    .option('--password <secret>')
    .option('--json', 'print one JSON document')
    .action(async (ref: string, opts: RolloutFlags) => {
      await runAction(Boolean(opts.json), () => rolloutCommand(ref, opts));
    });

  cloud
    .command('distil')
    .description('Label the received hard samples with the teacher(s), distil the student from its current weights, and write the new student only if it beats the old one on the held-out set.')
    .requiredOption('--student <model.onnx>', 'the deployed student (an MLP exported by edgevolve\'s trainer)')
    .requiredOption('--teacher <model.onnx...>', 'one or more teachers; their soft labels are averaged')
    .requiredOption('--samples <dir>', 'directory written by edgevolve cloud receive')
    .requiredOption('--held-out <dir>', 'labelled field data: input.npy (float32) and labels.npy')
    .requiredOption('-o, --output <model.onnx>', 'where the better student is written')
    .option('--replay-digits <dir>', 'the mnist package\'s digit files: replay training digits so the student does not forget')
    .option('--replay <n>', 'replayed training samples', '1000')
    .option('--temperature <T>', 'soft-label temperature', String(DEFAULT_DISTIL_OPTIONS.temperature))
    .option('--alpha <a>', 'weight of the KL term (1 - a weighs cross-entropy)', String(DEFAULT_DISTIL_OPTIONS.alpha))
    .option('--epochs <n>', 'training epochs', String(DEFAULT_DISTIL_OPTIONS.epochs))
    .option('--min-gain <points>', 'held-out top-1 gain required, in points', '1')
    .option('--json', 'print one JSON document')
    .action(async (opts: DistilFlags) => {
      await runAction(Boolean(opts.json), () => distilCommand(opts));
    });
}

interface RolloutFlags {
  broker: string;
  db: string;
  fleet: string;
  canary: string;
  watch: string;
  model?: string;
  version?: string;
  previous?: string;
  minInferences: string;
  maxErrorRate: string;
  maxLatencyRatio: string;
  maxHardRateIncrease: string;
  trial?: string;
  commandTimeout: string;
  settle: string;
  key?: string;
  keyId?: string;
  unsigned?: boolean;
  username?: string;
  password?: string;
  json?: boolean;
}

function numberFlag(flag: string, text: string, ok: (n: number) => boolean, what: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || !ok(value)) throw usageError(`${flag} ${text} must be ${what}`);
  return value;
}

/** `cloud rollout`: the fleet database picks the devices, rollOut does the canary logic, controlCommander sends signed commands. */
async function rolloutCommand(ref: string, opts: RolloutFlags): Promise<void> {
  assertId('fleet', opts.fleet);
  const canaryShare = numberFlag('--canary', opts.canary, (n) => n > 0 && n <= 1, 'in (0, 1]');
  const watchMs = 1000 * numberFlag('--watch', opts.watch, (n) => n > 0, 'a positive number of seconds');
  const minInferences = numberFlag('--min-inferences', opts.minInferences, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const maxErrorRate = numberFlag('--max-error-rate', opts.maxErrorRate, (n) => n >= 0 && n <= 1, 'within 0..1');
  const maxLatencyRatio = numberFlag('--max-latency-ratio', opts.maxLatencyRatio, (n) => n > 0, '> 0');
  const maxHardRateIncrease = numberFlag('--max-hard-rate-increase', opts.maxHardRateIncrease, (n) => n >= 0 && n <= 1, 'within 0..1');
  const commandTimeoutMs = 1000 * numberFlag('--command-timeout', opts.commandTimeout, (n) => n > 0, 'a positive number of seconds');
  const settleMs = 1000 * numberFlag('--settle', opts.settle, (n) => n >= 0, 'a number of seconds >= 0');
  const trialSeconds = opts.trial === undefined ? undefined : numberFlag('--trial', opts.trial, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const newVersion = opts.version ?? versionOfRef(ref);
  if (newVersion === undefined) throw usageError(`${ref} names no tag: give --version`);
  if (opts.key === undefined && opts.unsigned !== true) throw usageError('give --key <pem> to sign the commands, or --unsigned');
  const signer = opts.key === undefined ? undefined : parsePrivateKey(opts.keyId ?? basename(opts.key, extname(opts.key)), await readFile(opts.key, 'utf8'));
  const logger = createLogger().child({ module: 'cloud-rollout' });
  const db = FleetDatabase.open(opts.db);
  const credentials = opts.username === undefined ? {} : { username: opts.username, password: opts.password };
  // A group of its own: the rollout sees every message even beside ingest workers; the database drops duplicates.
  const worker = await startIngest(db, { brokerUrl: opts.broker, group: `edgevolve-rollout-${process.pid}`, fleet: opts.fleet, clientId: `edgevolve-rollout-ingest-${process.pid}`, ...credentials }, (err) => logger.warn({ code: err.code }, err.message));
  let client: mqtt.MqttClient | undefined;
  try {
    client = await mqtt.connectAsync(opts.broker, { clientId: `edgevolve-rollout-${process.pid}-${Date.now().toString(36)}`, reconnectPeriod: 0, connectTimeout: 10_000, ...credentials }).catch((err: unknown) => {
      throw new EdgevolveError('E_CONTROL_BROKER', `cannot connect to ${opts.broker}: ${(err as Error).message}`, { cause: err });
    });
    await new Promise((r) => setTimeout(r, settleMs));
    const targets = rolloutTargets(db.fleet(Date.now(), 3_600_000), { fleet: opts.fleet, model: opts.model, newVersion, previousVersion: opts.previous });
    const options = {
      fleet: opts.fleet, devices: targets.devices, canaryShare, newVersion, previousVersion: targets.previousVersion, ref,
      minInferences, maxLatencyRatio, maxHardRateIncrease, maxErrorRate, watchMs, pollMs: 1000,
    };
    const canaries = pickCanaries(targets.devices, canaryShare);
    const baseline = Object.fromEntries(canaries.map((d) => [d, db.versionStats(opts.fleet, d, targets.previousVersion, 0)]));
    if (!opts.json) process.stderr.write(`rolling ${ref} (${newVersion}) out to ${targets.devices.length} device(s) on ${targets.previousVersion}; canaries: ${canaries.join(', ')}\n`);
    const startedAt = Date.now();
    const result = await rollOut(options, controlCommander(client, { fleet: opts.fleet, signer, timeoutMs: commandTimeoutMs, trialSeconds }), db, {
      now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    });
    const after = Object.fromEntries(canaries.map((d) => [d, db.versionStats(opts.fleet, d, newVersion, startedAt)]));
    const summary = {
      ok: result.outcome === 'promoted' && result.failed.length === 0, ref, newVersion, previousVersion: targets.previousVersion, ...result,
      skipped: targets.skipped, baseline, canaryStats: after, seconds: (Date.now() - startedAt) / 1000,
    };
    if (opts.json) {
      printJson(summary);
      if (!summary.ok) process.exitCode = 1;
      return;
    }
    const stat = (s: { inferences: number; errorRate: number | null; p95Ms: number | null; hardSampleRate: number | null }): string =>
      `${s.inferences} inferences, errors ${s.errorRate === null ? '-' : `${(100 * s.errorRate).toFixed(2)}%`}, p95 ${s.p95Ms?.toFixed(2) ?? '-'} ms, hard ${s.hardSampleRate === null ? '-' : `${(100 * s.hardSampleRate).toFixed(1)}%`}`;
    process.stdout.write(`rollout ${result.outcome}: ${result.reason}\n`);
    for (const d of canaries) process.stdout.write(`  canary ${d}: before ${stat(baseline[d]!)}; after ${stat(after[d]!)}\n`);
    process.stdout.write(`  ${result.outcome === 'promoted' ? `deployed to ${result.rest.length} more device(s)` : `rolled back ${canaries.length} canary(ies); ${result.rest.length} device(s) untouched`}${result.failed.length > 0 ? `; not confirmed by ${result.failed.join(', ')}` : ''}\n`);
    for (const s of targets.skipped) process.stdout.write(`  skipped ${s.device}: ${s.reason}\n`);
    if (!summary.ok) {
      throw new EdgevolveError('E_COEVO_ROLLED_BACK', result.outcome === 'rolled-back' ? `rolled back: ${result.reason}` : `promoted, but ${result.failed.join(', ')} did not confirm the deploy`, { context: { ref } });
    }
  } finally {
    await client?.endAsync();
    await worker.close();
    db.close();
  }
}

interface DistilFlags {
  student: string;
  teacher: string[];
  samples: string;
  heldOut: string;
  output: string;
  replayDigits?: string;
  replay: string;
  temperature: string;
  alpha: string;
  epochs: string;
  minGain: string;
  json?: boolean;
}

async function distilCommand(opts: DistilFlags): Promise<void> {
  const temperature = Number(opts.temperature);
  const alpha = Number(opts.alpha);
  const epochs = Number(opts.epochs);
  const minGain = Number(opts.minGain) / 100;
  if (!(temperature > 0)) throw usageError(`--temperature ${opts.temperature} must be > 0`);
  if (!(alpha >= 0 && alpha <= 1)) throw usageError(`--alpha ${opts.alpha} must be within 0..1`);
  if (!(Number.isInteger(epochs) && epochs > 0)) throw usageError(`--epochs ${opts.epochs} must be a positive integer`);
  const student = await readFile(opts.student);
  const hard = await readReceivedSamples(opts.samples);
  if (hard.count === 0) throw new EdgevolveError('E_COEVO_INVALID', `no hard samples under ${opts.samples}`);
  const heldOut = await readLabelled(opts.heldOut);
  const replay = opts.replayDigits === undefined ? undefined : await loadTrainingReplay(opts.replayDigits, Number(opts.replay));
  const teachers: Predictor[] = [];
  const opened: Predictor[] = [];
  try {
    for (const file of opts.teacher) teachers.push(await openPredictor(file, { threads: 1 }));
    opened.push(...teachers);
    const distilled = await distilStudent(student, teachers, hard, replay, { ...DEFAULT_DISTIL_OPTIONS, temperature, alpha, epochs });
    const previous = await openPredictor(student, { threads: 1 });
    opened.push(previous);
    const candidate = await openPredictor(distilled.model, { threads: 1 });
    opened.push(candidate);
    const labels = await labelWithTeachers(teachers, hard.inputs, hard.count, 1);
    const gate = await compareStudents(previous, candidate, heldOut, { inputs: hard.inputs, labels: labels.labels, count: hard.count }, minGain);
    if (gate.better) await writeFileAtomic(opts.output, distilled.model);
    const result = { ok: true, written: gate.better, output: gate.better ? opts.output : null, hardSamples: hard.count, batches: hard.batches, replayed: replay?.count ?? 0, seconds: distilled.seconds, previous: gate.previous, candidate: gate.candidate, reason: gate.reason };
    if (opts.json) printJson(result);
    else process.stdout.write(`${gate.better ? `wrote ${opts.output}` : 'not written'}: ${gate.reason} (${hard.count} hard samples, ${distilled.seconds.toFixed(1)} s)\n`);
  } finally {
    for (const p of opened) await p.release();
  }
}

async function readLabelled(dir: string): Promise<FieldSet> {
  const input = await readNpy(`${dir}/input.npy`);
  const labels = await readNpy(`${dir}/labels.npy`);
  const count = input.shape[0] ?? 0;
  if (input.dtype !== 'float32' || labels.shape[0] !== count) {
    throw new EdgevolveError('E_COEVO_INVALID', `${dir}: need float32 input.npy and labels.npy with the same first dimension`);
  }
  return { inputs: input.data as Float32Array, labels: Uint8Array.from(Array.from(labels.data as ArrayLike<number | bigint>, Number)), count, sampleShape: input.shape.slice(1) };
}
