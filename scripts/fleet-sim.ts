/**
 * Fleet simulator (issue 7 target): N devices in one process against one mosquitto, each
 * with its own MQTT client id, telemetry every few seconds, and the real control module
 * (command store file, signature check, idempotency) with a trivial ping handler. The
 * "cloud" signs a command and fans it out with ONE publish on the fleet-wide topic
 * (edgevolve/v1/<fleet>/$all/cmd; the broker does the fan-out), or with --mode each one
 * publish per device, and collects every result.
 *
 * Reported: fan-out latency (publish → result received by the cloud) p50/p95/max over all
 * devices and rounds, failures (refused, failed or missing results), telemetry sent and
 * received; the baseline, measured in the same run, is the round trip of the same command
 * to ONE device of the same idle fleet.
 *
 * Usage: npx tsx scripts/fleet-sim.ts [--devices 1000] [--rounds 3] [--mode fleet|each]
 *          [--telemetry-interval 5] [--warmup 5] [--timeout 60] [--broker mqtt://host:port]
 *          [--state-dir /dev/shm]   (where the N command stores go; a disk directory adds N × 2 fsyncs per round)
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import {
  CommandChannel,
  CommandStore,
  controlConfigSchema,
  controlSettings,
  encodeCommand,
  mqttCommandTransport,
  parsePrivateKey,
  parsePublicKey,
  resultSchema,
  sendCommand,
  type CommandResult,
} from '../src/control/index.ts';
import { systemClock } from '../src/host/index.ts';
import { silentLogger } from '../src/log/index.ts';
import { startMosquitto, type RunningMosquitto } from '../test/helpers/mosquitto.ts';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const DEVICES = Number(option('devices', '1000'));
const ROUNDS = Number(option('rounds', '3'));
const MODE = option('mode', 'fleet');
const TELEMETRY_S = Number(option('telemetry-interval', '5'));
const WARMUP_S = Number(option('warmup', '5'));
const TIMEOUT_MS = Number(option('timeout', '60')) * 1000;
const BROKER = option('broker', '');
// tmpfs by default: in one process all devices share one disk and one thread, so their
// fsyncs would queue behind each other; on a real fleet each device flushes its own disk.
const STATE_PARENT = option('state-dir', existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const BASELINE_ROUNDS = 10;
const FLEET = 'sim';
const CONNECT_CONCURRENCY = 50;

if (!(DEVICES >= 1) || !(ROUNDS >= 1) || (MODE !== 'fleet' && MODE !== 'each')) {
  console.error('usage: fleet-sim [--devices N>=1] [--rounds N>=1] [--mode fleet|each] [--telemetry-interval s] [--warmup s] [--timeout s] [--broker url]');
  process.exit(2);
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '-');
const deviceId = (i: number): string => `dev-${String(i).padStart(5, '0')}`;

/**
 * mqtt.js leaves Nagle's algorithm on; a small ack or result then waits for the peer's
 * delayed ACK (~40 ms on Linux). Off for every client, as mosquitto's set_tcp_nodelay is.
 */
function noDelay(client: MqttClient): MqttClient {
  const stream = client.stream as unknown as { setNoDelay?: (on: boolean) => void };
  stream.setNoDelay?.(true);
  return client;
}

interface SimDevice {
  readonly id: string;
  readonly client: MqttClient;
  readonly store: CommandStore;
  readonly channel: CommandChannel;
  timer?: NodeJS.Timeout;
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(STATE_PARENT, 'edgevolve-fleet-sim-'));
  let broker: RunningMosquitto | undefined;
  const devices: SimDevice[] = [];
  let cloud: MqttClient | undefined;
  const counters = { telemetrySent: 0, telemetryFailed: 0, telemetryReceived: 0, pings: 0 };
  try {
    if (BROKER === '') {
      // The cloud subscriber gets 2 messages per device per command (ack + result) in one burst;
      // mosquitto's default per-client queue (max_queued_messages 1000) would drop past 500 devices.
      broker = await startMosquitto({ extraConfig: [`max_queued_messages ${Math.max(1000, DEVICES * 4)}`, 'max_inflight_messages 0', 'set_tcp_nodelay true'] });
    }
    const url = BROKER === '' ? (broker?.url ?? '') : BROKER;
    const pair = generateKeyPairSync('ed25519');
    const signer = parsePrivateKey('sim-fleet', pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const publicKey = parsePublicKey('sim-fleet', pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const settings = controlSettings(controlConfigSchema.parse({}));

    const t0 = performance.now();
    for (let start = 0; start < DEVICES; start += CONNECT_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONNECT_CONCURRENCY, DEVICES - start) }, async (_x, k) => {
        const id = deviceId(start + k);
        const client = noDelay(await mqtt.connectAsync(url, { clientId: id, reconnectPeriod: 1000, connectTimeout: 30_000, keepalive: 60 }));
        const store = CommandStore.open(join(stateDir, `${id}.db`));
        const channel = new CommandChannel({
          address: { fleet: FLEET, device: id },
          transport: await mqttCommandTransport(client, { fleet: FLEET, device: id }),
          store,
          handlers: {
            ping: (payload) => {
              counters.pings++;
              return Promise.resolve({ pong: true, echo: payload.echo ?? null });
            },
          },
          keys: new Map([['sim-fleet', publicKey]]),
          settings,
          clock: systemClock,
          logger: silentLogger(),
        });
        await channel.start();
        devices.push({ id, client, store, channel });
      });
      await Promise.all(batch);
    }
    const connectS = (performance.now() - t0) / 1000;
    console.error(`${DEVICES} devices connected and subscribed in ${connectS.toFixed(1)} s`);

    cloud = noDelay(await mqtt.connectAsync(url, { clientId: 'sim-cloud', reconnectPeriod: 0 }));
    cloud.on('message', (topic) => {
      if (topic.endsWith('/telemetry')) counters.telemetryReceived++;
    });
    await cloud.subscribeAsync(`edgevolve/v1/${FLEET}/+/telemetry`, { qos: 1 });

    // Telemetry: each device on its own phase, so the broker sees a steady stream.
    let seq = 0;
    for (const d of devices) {
      const publish = (): void => {
        const doc = { v: 1, device: d.id, seq: seq++, at: Date.now(), inferences: 100, errors: 0, latencyMs: { p50: 4.2, p95: 7.9, p99: 11.3 }, cpu: 0.31, memMb: 212 };
        d.client.publishAsync(`edgevolve/v1/${FLEET}/${d.id}/telemetry`, JSON.stringify(doc), { qos: 1 }).then(
          () => counters.telemetrySent++,
          () => counters.telemetryFailed++,
        );
      };
      setTimeout(() => {
        publish();
        d.timer = setInterval(publish, TELEMETRY_S * 1000);
      }, Math.random() * TELEMETRY_S * 1000).unref();
    }
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));

    // Baseline: the same signed ping to one device, same broker, same telemetry load.
    const baseline: number[] = [];
    for (let i = 0; i < BASELINE_ROUNDS; i++) {
      const one = await sendCommand(cloud, { fleet: FLEET, device: deviceId(0), type: 'ping', payload: { echo: `b${i}` }, signer, timeoutMs: TIMEOUT_MS });
      const answer = one.results.get(deviceId(0));
      if (answer !== undefined && answer.result.status === 'done') baseline.push(answer.receivedAt - one.sentAt);
    }

    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    const latencies: number[] = [];
    const perRound: { round: number; results: number; failures: number; p50: number; p95: number; max: number; wallMs: number; cpuMs: number }[] = [];
    const failureCodes = new Map<string, number>();
    for (let round = 1; round <= ROUNDS; round++) {
      const roundLatencies: number[] = [];
      let failures = 0;
      const onResult = (result: CommandResult, latency: number): void => {
        if (result.status === 'done') roundLatencies.push(latency);
        else {
          failures++;
          const code = result.error?.code ?? result.status;
          failureCodes.set(code, (failureCodes.get(code) ?? 0) + 1);
        }
      };
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      let results = 0;
      if (MODE === 'fleet') {
        const outcome = await sendCommand(cloud, {
          fleet: FLEET,
          device: '+',
          type: 'ping',
          payload: { echo: `round-${round}` },
          signer,
          timeoutMs: TIMEOUT_MS,
          expectResults: DEVICES,
          onResult: (result, { sentAt, receivedAt }) => onResult(result, receivedAt - sentAt),
        });
        results = outcome.results.size;
      } else {
        results = await fanOutEach(cloud, signer, round, onResult);
      }
      const missing = DEVICES - results;
      if (missing > 0) failureCodes.set('no result', (failureCodes.get('no result') ?? 0) + missing);
      roundLatencies.sort((a, b) => a - b);
      latencies.push(...roundLatencies);
      perRound.push({
        round,
        results,
        failures: failures + missing,
        p50: percentile(roundLatencies, 50),
        p95: percentile(roundLatencies, 95),
        max: roundLatencies.at(-1) ?? Number.NaN,
        wallMs: performance.now() - started,
        cpuMs: ((c) => (c.user + c.system) / 1000)(process.cpuUsage(cpuStart)),
      });
    }

    const cpu = process.cpuUsage(cpuBefore);
    const busy = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
    latencies.sort((a, b) => a - b);
    baseline.sort((a, b) => a - b);
    const rows: string[][] = [
      ['what', 'devices', 'results', 'failures', 'p50', 'p95', 'max', 'sim CPU'],
      ['baseline: ping to one device', '1', String(baseline.length), String(BASELINE_ROUNDS - baseline.length), ms(percentile(baseline, 50)), ms(percentile(baseline, 95)), ms(baseline.at(-1) ?? Number.NaN), '-'],
      ...perRound.map((r) => [`fan-out round ${r.round} (${MODE === 'fleet' ? '1 publish on $all' : `${DEVICES} publishes`})`, String(DEVICES), String(r.results), String(r.failures), ms(r.p50), ms(r.p95), ms(r.max), ms(r.cpuMs)]),
      [`fan-out, all ${ROUNDS} rounds`, String(DEVICES * ROUNDS), String(latencies.length), String(perRound.reduce((s, r) => s + r.failures, 0)), ms(percentile(latencies, 50)), ms(percentile(latencies, 95)), ms(latencies.at(-1) ?? Number.NaN), ms(perRound.reduce((s, r) => s + r.cpuMs, 0))],
    ];
    const widths = rows[0]?.map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '));
    console.log('');
    console.log(`fan-out p50 / one-device p50: ${(percentile(latencies, 50) / percentile(baseline, 50)).toFixed(1)}x`);
    console.log(`failures by reason: ${failureCodes.size === 0 ? 'none' : [...failureCodes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(`handler calls: ${counters.pings} (expected ${DEVICES * ROUNDS + BASELINE_ROUNDS})`);
    console.log(`telemetry: ${counters.telemetrySent} published (PUBACKed), ${counters.telemetryFailed} failed, ${counters.telemetryReceived} received by the cloud subscriber; every ${TELEMETRY_S} s per device`);
    console.log(`during the rounds this process was on CPU ${(busy * 100).toFixed(0)}% of the wall time; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs`);
    console.log(`command stores: ${DEVICES} SQLite files (WAL, synchronous=FULL) under ${STATE_PARENT}`);
    console.log(`connect + subscribe of ${DEVICES} devices: ${connectS.toFixed(1)} s; node RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB; ulimit -n must exceed ~${DEVICES * 4 + 50} (socket + SQLite db, -wal, -shm per device)`);
  } finally {
    for (const d of devices) clearInterval(d.timer);
    await Promise.all(devices.map(async (d) => {
      await d.channel.stop(100);
      await d.client.endAsync(true).catch(() => undefined);
      d.store.close();
    }));
    await cloud?.endAsync(true).catch(() => undefined);
    await broker?.close();
    await rm(stateDir, { recursive: true, force: true });
  }

  /** One signed command per device on its own cmd topic; results collected on one wildcard subscription. */
  async function fanOutEach(client: MqttClient, signer: ReturnType<typeof parsePrivateKey>, round: number, onResult: (r: CommandResult, latency: number) => void): Promise<number> {
    const sentAt = new Map<string, number>();
    const seen = new Set<string>();
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const ids = new Map<string, string>();
    const listener = (topic: string, payload: Buffer): void => {
      if (!topic.endsWith('/result')) return;
      const parsed = resultSchema.safeParse(JSON.parse(payload.toString('utf8')));
      if (!parsed.success || ids.get(parsed.data.device) !== parsed.data.id || seen.has(parsed.data.device)) return;
      seen.add(parsed.data.device);
      onResult(parsed.data, Date.now() - (sentAt.get(parsed.data.device) ?? 0));
      if (seen.size === DEVICES) done();
    };
    client.on('message', listener);
    const filter = `edgevolve/v1/${FLEET}/+/cmd/+/result`;
    await client.subscribeAsync(filter, { qos: 1 });
    const timer = setTimeout(done, TIMEOUT_MS);
    await Promise.all(
      devices.map((d) => {
        const id = `r${round}-${d.id}`;
        ids.set(d.id, id);
        const encoded = encodeCommand({ id, type: 'ping', target: { fleet: FLEET, device: d.id }, payload: { echo: `round-${round}` } }, signer, Date.now());
        sentAt.set(d.id, Date.now());
        return client.publishAsync(`edgevolve/v1/${FLEET}/${d.id}/cmd`, encoded.text, { qos: 1 });
      }),
    );
    await all;
    clearTimeout(timer);
    client.removeListener('message', listener);
    await client.unsubscribeAsync(filter);
    return seen.size;
  }
}

await main();
