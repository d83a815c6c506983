/**
 * Reconnect-storm soak (issue 7): N devices (real telemetry services: outbox file, MQTT
 * link with jittered backoff) in one process against one mosquitto, steady telemetry,
 * the broker stopped for T seconds and started again. Runs twice in one process: the
 * baseline with the jitter off (every device waits the full backoff ceiling, the lockstep
 * of a fixed-period client such as mqtt.js's own reconnect) and the real thing.
 *
 * Printed per run: reconnect attempts per second over time (from the moment the broker
 * stopped), the peak in any 100 ms window against N, time until every device was
 * connected again, the backlog and its drain time, and lost / duplicated / out-of-order
 * messages by per-device sequence number.
 *
 *   npm run mqtt-soak -- [--devices 500] [--outage 10] [--interval 1] [--steady 5]
 *     [--initial-delay 1000] [--max-delay 60000] [--state-dir /dev/shm] [--no-baseline]
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { histogram, peakInWindow, runSoak, type SoakReport } from '../test/integration/telemetry/soak.ts';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '500' },
    outage: { type: 'string', default: '10' },
    interval: { type: 'string', default: '1' },
    steady: { type: 'string', default: '5' },
    'initial-delay': { type: 'string', default: '1000' },
    'max-delay': { type: 'string', default: '60000' },
    // tmpfs: in one process all devices share one disk; on a real fleet each flushes its own.
    'state-dir': { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() },
    'no-baseline': { type: 'boolean', default: false },
  },
});
const DEVICES = Number(values.devices);
const OUTAGE_MS = Number(values.outage) * 1000;
const reconnect = { initialDelayMs: Number(values['initial-delay']), maxDelayMs: Number(values['max-delay']), multiplier: 2 };
if (!(DEVICES >= 1) || !(OUTAGE_MS > 0) || !(reconnect.initialDelayMs > 0) || !(reconnect.maxDelayMs >= reconnect.initialDelayMs)) {
  console.error('usage: mqtt-soak [--devices N>=1] [--outage s>0] [--interval s] [--steady s] [--initial-delay ms] [--max-delay ms] [--state-dir dir] [--no-baseline]');
  process.exit(2);
}

const quantile = (xs: readonly number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
};
const seconds = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '-' : `${(ms / 1000).toFixed(1)} s`);

async function run(jitter: boolean): Promise<SoakReport> {
  const stateDir = await mkdtemp(join(values['state-dir'], 'edgevolve-mqtt-soak-'));
  // Persistence: the cloud's persistent session keeps what was queued for it across the restart.
  // Queue limit: the drain bursts past mosquitto's default 1000 queued messages for the cloud.
  const broker = await startMosquitto({ persistence: true, extraConfig: [`max_queued_messages ${Math.max(100_000, DEVICES * 200)}`, 'set_tcp_nodelay true'] });
  try {
    const report = await runSoak({
      broker,
      stateDir,
      devices: DEVICES,
      outageMs: OUTAGE_MS,
      telemetryIntervalMs: Number(values.interval) * 1000,
      steadyMs: Number(values.steady) * 1000,
      reconnect,
      timeoutMs: reconnect.maxDelayMs * 2 + 60_000,
      jitter,
      progress: (line) => console.error(`  [${jitter ? 'jitter' : 'no jitter'}] ${line}`),
    });
    // What the broker saw that can delay a drain: session take-overs, keepalive timeouts, dropped queues.
    const log = broker.log();
    for (const [what, pattern] of [
      ['take-overs (client id already connected)', /already connected, closing old connection/g],
      ['keepalive timeouts', /exceeded timeout/g],
      ['outgoing messages dropped', /Outgoing messages are being dropped/g],
    ] as const) {
      console.error(`  [${jitter ? 'jitter' : 'no jitter'}] broker log: ${what}: ${(log.match(pattern) ?? []).length}`);
    }
    return report;
  } finally {
    await broker.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}

const runs: { name: string; report: SoakReport }[] = [];
if (!values['no-baseline']) runs.push({ name: 'baseline: no jitter (full ceiling)', report: await run(false) });
runs.push({ name: 'edgevolve: full jitter', report: await run(true) });

console.log(`\n${DEVICES} devices, broker down ${OUTAGE_MS / 1000} s under telemetry every ${values.interval} s per device; backoff ${reconnect.initialDelayMs} ms x2 up to ${reconnect.maxDelayMs} ms\n`);
console.log('| run | attempts | peak in 100 ms | peak / N | all reconnected after restart | p50 reconnect | backlog | backlog drained (p50 device / all) | lost | duplicates | out of order | dropped | extra connects |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const { name, report: r } of runs) {
  const peak = peakInWindow(r.attemptTimes, 100);
  console.log(
    `| ${name} | ${r.attemptTimes.length} | ${peak} | ${(peak / DEVICES).toFixed(2)} | ${r.notReconnected === 0 ? seconds(Math.max(...r.reconnectTimes)) : `${r.notReconnected} never`} | ${seconds(quantile(r.reconnectTimes, 0.5))} | ${r.backlogMessages} | ${seconds(quantile(r.deviceDrainMs.filter((x) => x !== undefined), 0.5))} / ${seconds(r.backlogDrainMs)} | ${r.lost} | ${r.duplicates} | ${r.outOfOrder} | ${r.dropped} | ${r.extraConnects} |`,
  );
}
for (const { name, report: r } of runs) {
  console.log(`\nreconnect attempts per second (planned instants), ${name} (t = 0: broker stopped; accepting again at ${(r.restartedAfterMs / 1000).toFixed(1)} s):`);
  const bins = histogram(r.attemptTimes, 1000);
  const widest = Math.max(1, ...bins);
  bins.forEach((count, i) => {
    const marker = i === Math.floor(r.restartedAfterMs / 1000) ? ' <- broker back' : '';
    console.log(`  ${String(i).padStart(3)} s ${String(count).padStart(6)} ${'#'.repeat(Math.round((count / widest) * 50))}${marker}`);
  });
}
console.log(`\nload average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs; node RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
