/**
 * Outbox throughput to a loopback mosquitto (issue 7 target: >= 5,000 messages/s
 * sustained with every message committed to SQLite before it is sent).
 *
 * Rows, all in one run against the same broker:
 *   raw mqtt.js      QoS 1 publishes with no outbox (the baseline: what the link costs on top)
 *   outbox, B per commit   messages committed B per transaction while the link drains
 *                          them concurrently (QoS 1, one message per publish, deleted on PUBACK)
 *   ... up to 50 per publish   the same, as telemetry records that a backlog drain
 *                          combines into `{v, batch}` publishes (mqtt.batchMaxMessages)
 *   service.publish, C callers   the API src/control and co-evolution use: C publish()
 *                          calls per event-loop turn, each awaited until its commit;
 *                          the service group-commits one turn's calls in one transaction
 * A message counts when its PUBACK has arrived and its row is deleted.
 *
 * With --rounds R every row runs R times, the rows alternating within each round (load
 * on a shared machine then hits all rows alike), and the median of each row is shown.
 *
 *   npm run bench:mqtt -- [--messages 50000] [--inflight 64] [--rounds 1]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { systemClock, systemRandom } from '../src/host/index.ts';
import { silentLogger } from '../src/log/index.ts';
import { mqttConfigSchema, telemetryConfigSchema } from '../src/telemetry/config.ts';
import { PRIORITY } from '../src/telemetry/outbox.ts';
import { openTelemetry } from '../src/telemetry/service.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' }, inflight: { type: 'string', default: '64' }, rounds: { type: 'string', default: '1' } } });
const N = Number(values.messages);
const INFLIGHT = Number(values.inflight);
const ROUNDS = Number(values.rounds);
const PAYLOAD = { v: 1, kind: 'bench', values: [0.1, 0.2, 0.3, 0.4], note: 'x'.repeat(64) };

async function rawBaseline(url: string): Promise<number> {
  const client = await mqtt.connectAsync(url, { clientId: 'bench-raw', protocolVersion: 5, reconnectPeriod: 0 });
  const started = performance.now();
  let sent = 0;
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent < N && sent - acked < INFLIGHT) {
        const body = JSON.stringify({ ...PAYLOAD, seq: sent + 1 });
        sent += 1;
        client.publish('bench/raw', body, { qos: 1 }, (err) => {
          if (err) {
            reject(err);
            return;
          }
          acked += 1;
          if (acked === N) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const seconds = (performance.now() - started) / 1000;
  await client.endAsync();
  return seconds;
}

/** How the bench produces: straight into the outbox B per transaction, or through service.publish with C concurrent callers. */
type Producer = { readonly kind: 'enqueueMany'; readonly perCommit: number; readonly batchable: boolean } | { readonly kind: 'publish'; readonly callers: number };

async function outbox(url: string, producer: Producer): Promise<number> {
  const stateDir = mkdtempSync(join(tmpdir(), 'edgevolve-bench-mqtt-'));
  const service = openTelemetry({
    mqtt: mqttConfigSchema.parse({ urls: [url], fleet: 'bench', maxInflight: INFLIGHT, batchMaxMessages: 50 }),
    telemetry: telemetryConfigSchema.parse({ outbox: { maxRows: N * 2, maxBytes: 1 << 30 } }),
    stateDir,
    device: producer.kind === 'publish' ? `bench-publish-${producer.callers}` : `bench-${producer.perCommit}-${producer.batchable ? 'b' : 'u'}`,
    clock: systemClock,
    random: systemRandom,
    logger: silentLogger(),
    sampler: { sample: () => Promise.reject(new Error('unused')) },
    birth: () => ({ agentVersion: 'bench', hardware: { arch: process.arch }, model: null, budgets: {} }),
  });
  service.start();
  await service.link.waitConnected();
  // Drain the agent-start event first so the measurement holds only bench messages.
  while (service.outbox.stats().rows > 0) await new Promise((r) => setTimeout(r, 5));
  const topic = service.topics.telemetry;
  const started = performance.now();
  let produced = 0;
  const raw = JSON.stringify(PAYLOAD);
  // The producer yields to the event loop between commits, as a real agent does.
  while (produced < N) {
    if (producer.kind === 'enqueueMany') {
      const count = Math.min(producer.perCommit, N - produced);
      service.outbox.enqueueMany(Array.from({ length: count }, () => ({ topic, priority: PRIORITY.metric, body: PAYLOAD, batchable: producer.batchable })));
      produced += count;
      service.link.notify();
      await new Promise((r) => setImmediate(r));
    } else {
      const count = Math.min(producer.callers, N - produced);
      await Promise.all(Array.from({ length: count }, () => service.publish(service.topics.samples, raw)));
      produced += count;
    }
  }
  while (service.outbox.stats().rows > 0) await new Promise((r) => setTimeout(r, 1));
  const seconds = (performance.now() - started) / 1000;
  await service.stop();
  rmSync(stateDir, { recursive: true, force: true });
  return seconds;
}

const broker = await startMosquitto();
try {
  const modes: { mode: string; run: () => Promise<number> }[] = [
    { mode: 'raw mqtt.js QoS 1 (baseline, no outbox)', run: () => rawBaseline(broker.url) },
    ...[1, 10, 100].map((batch) => ({ mode: `outbox, ${batch} per commit, 1 per publish`, run: () => outbox(broker.url, { kind: 'enqueueMany', perCommit: batch, batchable: false }) })),
    { mode: 'outbox, 100 per commit, up to 50 per publish (telemetry batching)', run: () => outbox(broker.url, { kind: 'enqueueMany', perCommit: 100, batchable: true }) },
    ...[1, 100].map((callers) => ({
      mode: `service.publish, ${callers} concurrent caller${callers === 1 ? '' : 's'} (group commit per event-loop turn)`,
      run: () => outbox(broker.url, { kind: 'publish', callers }),
    })),
  ];
  const times = modes.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, m] of modes.entries()) times[i]?.push(await m.run());
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const rows = modes.map((m, i) => ({ mode: m.mode, seconds: median(times[i] ?? []) }));
  const base = rows[0]?.seconds ?? 1;
  console.log(`\n${N} messages of ${JSON.stringify(PAYLOAD).length + 30} bytes, QoS 1, ${INFLIGHT} in flight, loopback mosquitto (${broker.url}), median of ${ROUNDS} alternating round(s)\n`);
  console.log('| mode | seconds | messages/s | time vs baseline |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.mode} | ${r.seconds.toFixed(2)} | ${Math.round(N / r.seconds)} | ${(r.seconds / base).toFixed(2)}x |`);
} finally {
  await broker.close();
}
