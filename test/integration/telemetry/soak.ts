/**
 * The reconnect-storm soak, shared by scripts/mqtt-soak.ts (500 devices) and its short
 * test: N real telemetry services (each its own outbox file and MqttLink) in one process
 * against one real mosquitto, steady telemetry, the broker stopped for a while and
 * started again. It records when each device planned its reconnect attempts (the link's
 * backoff sleeps, seen through a recording clock), when each reconnected, and every seq
 * the cloud received, and reports the attempt-rate histogram, the reconnect time, the
 * backlog drain time, lost and duplicated messages.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { uniform01 } from '../../../src/data/prng.ts';
import { systemClock, type Clock, type Random } from '../../../src/host/index.ts';
import { openTelemetry, type TelemetryService } from '../../../src/telemetry/service.ts';
import type { RunningMosquitto } from '../../helpers/mosquitto.ts';
import { seqsOf, serviceOptions, startCollector, testMqttConfig, testTelemetryConfig } from './support.ts';

export interface SoakOptions {
  readonly broker: RunningMosquitto;
  readonly stateDir: string;
  readonly devices: number;
  /** How long the broker stays down, ms. */
  readonly outageMs: number;
  /** Each device commits one telemetry record per interval, on its own phase. */
  readonly telemetryIntervalMs: number;
  /** Steady telemetry before the broker stops, ms. */
  readonly steadyMs: number;
  readonly reconnect: { readonly initialDelayMs: number; readonly maxDelayMs: number; readonly multiplier: number };
  /** Give up waiting for reconnects and the drain after this, ms. */
  readonly timeoutMs: number;
  /**
   * false: every device waits the full backoff ceiling (random() just below 1), the
   * lockstep of a fixed-period client: the baseline the jittered run is compared with.
   */
  readonly jitter: boolean;
  /**
   * With jitter: draw each device's delays from a PRNG seeded with seed + device index, so
   * a test's spread is the same in every run (the script leaves it unset: Math.random).
   */
  readonly seed?: number;
  /** Progress lines (the script prints them; the test ignores them). */
  readonly progress?: (line: string) => void;
}

function jitterSource(options: SoakOptions, device: number): { random?: Random } {
  if (!options.jitter) return { random: { random: () => 0.999_999 } };
  return options.seed === undefined ? {} : { random: { random: uniform01(options.seed + device) } };
}

export interface SoakReport {
  readonly devices: number;
  readonly outageMs: number;
  /** When the broker was started again, ms after it was stopped (the outage plus its stop time). */
  readonly restartedAfterMs: number;
  /** Planned instants of every reconnect attempt, ms after the broker stopped. */
  readonly attemptTimes: readonly number[];
  /** Planned instant of each device's first reconnect attempt (the storm itself), ms after the broker stopped. */
  readonly firstAttemptTimes: readonly number[];
  /** Instants at which each device was connected again, ms after the broker was started again. */
  readonly reconnectTimes: readonly number[];
  /** Devices not reconnected by the timeout. */
  readonly notReconnected: number;
  /** ms from the restart until every message committed before it had reached the cloud; undefined on timeout. */
  readonly backlogDrainMs: number | undefined;
  readonly backlogMessages: number;
  readonly produced: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  /** Evicted or refused by the outboxes (must be 0 with the soak's bounds). */
  readonly dropped: number;
  /** Connections after the restart beyond one per device (a connection lost again). */
  readonly extraConnects: number;
  /** Per device: ms from the restart until its backlog had all arrived (undefined: not by the timeout). */
  readonly deviceDrainMs: readonly (number | undefined)[];
}

/** Counts of `times` per bin of `binMs` starting at `from`. */
export function histogram(times: readonly number[], binMs: number, from = 0): number[] {
  const bins: number[] = [];
  for (const t of times) {
    const i = Math.floor((t - from) / binMs);
    if (i < 0) continue;
    while (bins.length <= i) bins.push(0);
    bins[i] = (bins[i] ?? 0) + 1;
  }
  return bins;
}

/** The most attempts that fall in any window of `windowMs` (sliding over the sorted instants). */
export function peakInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

interface Device {
  readonly id: string;
  readonly service: TelemetryService;
  timer?: NodeJS.Timeout;
  /** Highest n with 1..n all received by the cloud. */
  contiguous: number;
  readonly received: Set<number>;
  duplicates: number;
  lastArrived: number;
  outOfOrder: number;
  drainedAt?: number;
}

const deviceId = (i: number): string => `soak-${String(i).padStart(5, '0')}`;
const FLEET = 'soak';

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const { broker, devices: n, progress = () => undefined } = options;
  const attemptAt: number[] = [];
  /** The first planned attempt of each device after the broker stopped, by device index. */
  const firstAttemptAt = new Map<number, number>();
  let recording = true;
  // The link's only sleeps are its backoff waits: recording them gives each attempt's planned instant.
  const recordingClock = (device: number): Clock => ({
    now: () => systemClock.now(),
    sleep: (ms, signal) => {
      if (recording) {
        const at = systemClock.now() + ms;
        attemptAt.push(at);
        if (!firstAttemptAt.has(device)) firstAttemptAt.set(device, at);
      }
      return systemClock.sleep(ms, signal);
    },
  });
  const cloud = await startCollector(broker.url, `edgevolve/v1/${FLEET}/+/telemetry`);
  await cloud.client.subscribeAsync(`edgevolve/v1/${FLEET}/+/events`, { qos: 1 });
  const devices = new Map<string, Device>();
  cloud.client.on('message', (topic, payload) => {
    const device = devices.get(topic.split('/')[3] ?? '');
    if (device === undefined) return;
    for (const seq of seqsOf(JSON.parse(payload.toString('utf8')))) {
      if (device.received.has(seq)) {
        device.duplicates++;
        continue;
      }
      if (seq < device.lastArrived && topic.endsWith('/telemetry')) device.outOfOrder++;
      if (topic.endsWith('/telemetry')) device.lastArrived = seq;
      device.received.add(seq);
      while (device.received.has(device.contiguous + 1)) device.contiguous++;
    }
  });

  const mqtt = testMqttConfig({ urls: [broker.url], fleet: FLEET, reconnect: options.reconnect, connectTimeoutMs: 10_000 });
  const telemetry = testTelemetryConfig({ outbox: { maxRows: 1_000_000, maxBytes: 1 << 30, maxAgeHours: 24 } });
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const id = deviceId(i);
    const dir = join(options.stateDir, id);
    await mkdir(dir, { recursive: true });
    const service = openTelemetry({ ...serviceOptions(dir, id, mqtt, telemetry), clock: recordingClock(i), ...jitterSource(options, i) });
    devices.set(id, { id, service, contiguous: 0, received: new Set(), duplicates: 0, lastArrived: 0, outOfOrder: 0 });
  }
  const all = [...devices.values()];
  // Connect in groups, as devices booting over minutes would; the storm under test is the reconnect.
  for (let i = 0; i < all.length; i += 50) {
    const group = all.slice(i, i + 50);
    for (const d of group) d.service.start();
    await Promise.all(group.map((d) => d.service.link.waitConnected()));
  }
  progress(`${n} devices connected in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const d of all) {
    const tick = (): void => {
      d.service.tick().catch(() => undefined);
    };
    setTimeout(() => {
      tick();
      d.timer = setInterval(tick, options.telemetryIntervalMs);
    }, Math.random() * options.telemetryIntervalMs);
  }
  await new Promise((r) => setTimeout(r, options.steadyMs));
  attemptAt.length = 0;
  firstAttemptAt.clear();

  const stoppedAt = Date.now();
  await broker.stop();
  progress(`broker stopped; down for ${options.outageMs} ms under steady telemetry`);
  await new Promise((r) => setTimeout(r, Math.max(0, options.outageMs - (Date.now() - stoppedAt))));
  const backlogEnd = new Map(all.map((d) => [d.id, d.service.outbox.lastSeq()]));
  const backlogMessages = all.reduce((s, d) => s + (backlogEnd.get(d.id) ?? 0) - d.contiguous, 0);
  const connectsAtRestart = new Map(all.map((d) => [d.id, d.service.link.getStatus().connects]));
  // The reference is the moment the broker is started: devices may connect before start() has noticed it listens.
  const restartedAt = Date.now();
  await broker.start();
  progress(`broker restarted; ${backlogMessages} messages waiting in ${n} outboxes`);

  const deadline = restartedAt + options.timeoutMs;
  let backlogDrainMs: number | undefined;
  const reconnected = (d: Device): boolean => d.service.link.getStatus().state === 'connected' && (d.service.link.getStatus().connectedAt ?? 0) > stoppedAt;
  while (Date.now() < deadline) {
    for (const d of all) if (d.drainedAt === undefined && d.contiguous >= (backlogEnd.get(d.id) ?? 0)) d.drainedAt = Date.now();
    if (backlogDrainMs === undefined && all.every((d) => d.contiguous >= (backlogEnd.get(d.id) ?? 0))) backlogDrainMs = Date.now() - restartedAt;
    if (backlogDrainMs !== undefined && all.every(reconnected)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  recording = false;
  const reconnectTimes = all.filter(reconnected).map((d) => (d.service.link.getStatus().connectedAt ?? 0) - restartedAt);
  progress(`reconnected ${reconnectTimes.length} of ${n}; backlog drained ${backlogDrainMs === undefined ? 'NOT within the timeout' : `in ${backlogDrainMs} ms`}`);

  // Stop producing, then wait until everything committed has arrived (or the timeout).
  for (const d of all) clearInterval(d.timer);
  await new Promise((r) => setTimeout(r, 50));
  const produced = new Map(all.map((d) => [d.id, d.service.outbox.lastSeq()]));
  while (Date.now() < deadline + options.timeoutMs && !all.every((d) => d.contiguous >= (produced.get(d.id) ?? 0))) await new Promise((r) => setTimeout(r, 20));
  const report: SoakReport = {
    devices: n,
    outageMs: options.outageMs,
    restartedAfterMs: restartedAt - stoppedAt,
    attemptTimes: attemptAt.map((t) => t - stoppedAt),
    firstAttemptTimes: [...firstAttemptAt.values()].map((t) => t - stoppedAt),
    reconnectTimes,
    notReconnected: n - reconnectTimes.length,
    backlogDrainMs,
    backlogMessages,
    produced: all.reduce((s, d) => s + (produced.get(d.id) ?? 0), 0),
    lost: all.reduce((s, d) => s + Math.max(0, (produced.get(d.id) ?? 0) - d.received.size), 0),
    duplicates: all.reduce((s, d) => s + d.duplicates, 0),
    outOfOrder: all.reduce((s, d) => s + d.outOfOrder, 0),
    extraConnects: all.reduce((s, d) => s + Math.max(0, d.service.link.getStatus().connects - (connectsAtRestart.get(d.id) ?? 0) - 1), 0),
    deviceDrainMs: all.map((d) => (d.drainedAt === undefined ? undefined : d.drainedAt - restartedAt)),
    dropped: all.reduce((s, d) => s + d.service.outbox.stats().droppedTotal.metric + d.service.outbox.stats().droppedTotal.event, 0),
  };
  for (let i = 0; i < all.length; i += 50) await Promise.all(all.slice(i, i + 50).map((d) => d.service.stop()));
  await cloud.close();
  return report;
}
