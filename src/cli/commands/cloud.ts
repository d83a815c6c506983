import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../host/index.ts';
import { readNpy } from '../../data/npy.ts';
import { createLogger } from '../../log/index.ts';
import {
  DEFAULT_DISTIL_OPTIONS,
  compareStudents,
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
