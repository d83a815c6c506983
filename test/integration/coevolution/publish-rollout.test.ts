import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FleetDatabase } from '../../../src/coevolution/cloud/fleet-db.ts';
import { publishStudent } from '../../../src/coevolution/cloud/publish.ts';
import { judgeCanaries, pickCanaries, rollOut, type FleetCommander, type RolloutOptions } from '../../../src/coevolution/cloud/rollout.ts';
import { RegistryClient, signatureTag } from '../../../src/registry/index.ts';
import { systemClock, systemRandom } from '../../../src/host/index.ts';
import { telemetryRecordSchema } from '../../../src/telemetry/schemas.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { requireRegistry, startRegistry } from '../../helpers/registry-server.ts';
import { codeOf } from '../../helpers/error-code.ts';

describe.runIf(requireRegistry())('publishing a distilled student (real docker-registry)', () => {
  it('pushes fp32 and int8 variants under one index and signs it', async () => {
    const registry = await startRegistry();
    const tmp = await makeTempDir();
    const client = new RegistryClient({ registry: registry.host, repository: 'models/student', plainHttp: true, clock: systemClock, random: systemRandom });
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const published = await publishStudent({
        model: readFileSync('test/fixtures/models/mnist-student.onnx'), name: 'student', version: '1.1.0', compress: ['int8-dynamic'], accuracy: 0.8,
        workDir: tmp.dir, target: client, dockerReference: `${registry.host}/models/student`, tag: '1.1.0', key: privateKey,
      });
      expect(published.variants.map((v) => v.name)).toEqual(['fp32', 'int8']);
      expect(published.variants[1]!.bytes).toBeLessThan(published.variants[0]!.bytes * 0.5);
      const index = await client.resolve('1.1.0');
      expect(index.kind === 'index' && index.index.manifests.length).toBe(2);
      expect(await client.tryResolve(signatureTag(index.digest))).toBeDefined();
    } finally {
      await client.close();
      await registry.stop();
      await tmp.cleanup();
    }
  }, 60_000);
});

const EMPTY = { bounds: [0.5], counts: [0, 0] };
function telemetry(device: string, seq: number, ts: number, version: string, p95: number, hardSampleRate: number): string {
  return JSON.stringify(telemetryRecordSchema.parse({
    v: 1, device, stream: 's', seq, ts, kind: 'metrics', intervalMs: 1000,
    inference: { count: 50, errors: 0, latencyMs: { p50: 1, p95, p99: p95, max: p95, mean: 1, histogram: EMPTY } },
    queueDepth: { last: 0, max: 0 },
    system: { cpuPercent: null, memoryUsedBytes: null, memoryTotalBytes: null, processRssBytes: null, temperatureC: null, throttled: null, diskFreeBytes: null },
    model: { name: 'student', version }, budgets: { compliant: null, violations: [] },
    quality: { confidence: EMPTY, entropy: EMPTY, hardSampleRate, driftScore: null },
    outbox: { depth: 0, bytes: 0, droppedTotal: 0, degraded: false },
  }));
}

/**
 * Simulated devices (this test's stand-in for the control channel): a deploy makes the
 * device report telemetry on the new version with the given quality; a rollback is recorded.
 */
function simulatedFleet(db: FleetDatabase, clock: { t: number }, newP95: number, newHardRate: number): FleetCommander & { calls: string[] } {
  const seqs = new Map<string, number>();
  const report = (device: string, version: string, p95: number, rate: number): void => {
    const seq = (seqs.get(device) ?? 0) + 1;
    seqs.set(device, seq);
    db.ingest(`edgevolve/v1/f1/${device}/telemetry`, telemetry(device, seq, clock.t, version, p95, rate));
  };
  for (const d of DEVICES) report(d, '1.0.0', 2, 0.3);
  const calls: string[] = [];
  return {
    calls,
    deploy: (device) => {
      calls.push(`deploy ${device}`);
      clock.t += 10;
      report(device, '1.1.0', newP95, newHardRate);
      return Promise.resolve(true);
    },
    rollback: (device) => {
      calls.push(`rollback ${device}`);
      return Promise.resolve(true);
    },
  };
}

const DEVICES = ['d1', 'd2', 'd3', 'd4', 'd5'];
const OPTIONS: RolloutOptions = {
  fleet: 'f1', devices: DEVICES, canaryShare: 0.2, newVersion: '1.1.0', previousVersion: '1.0.0', ref: 'r/student:1.1.0',
  minInferences: 50, maxLatencyRatio: 1.5, maxHardRateIncrease: 0.05, maxErrorRate: 0.01, watchMs: 1000, pollMs: 100,
};

describe('canary rollout over the fleet database (real SQLite)', () => {
  async function run(newP95: number, newHardRate: number): Promise<{ result: Awaited<ReturnType<typeof rollOut>>; calls: string[] }> {
    const tmp = await makeTempDir();
    const db = FleetDatabase.open(path.join(tmp.dir, 'fleet.db'));
    const clock = { t: 1000 };
    const fleet = simulatedFleet(db, clock, newP95, newHardRate);
    try {
      const result = await rollOut(OPTIONS, fleet, db, { now: () => clock.t, sleep: (ms) => { clock.t += ms; return Promise.resolve(); } });
      return { result, calls: fleet.calls };
    } finally {
      db.close();
      await tmp.cleanup();
    }
  }

  it('deploys to the canary first and to the rest once the canary is no worse', async () => {
    const { result, calls } = await run(2.1, 0.1);
    expect(result.outcome).toBe('promoted');
    expect(result.canaries).toEqual(['d1']);
    expect(calls).toEqual(['deploy d1', 'deploy d2', 'deploy d3', 'deploy d4', 'deploy d5']);
  });

  it('rolls the canary back and never touches the rest when its latency worsens', async () => {
    const { result, calls } = await run(5, 0.1);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/p95/);
    expect(calls).toEqual(['deploy d1', 'rollback d1']);
  });

  it('rolls back when the canary finds more inputs hard than before', async () => {
    const { result } = await run(2, 0.6);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/hard-sample rate/);
  });

  it('picks at least one canary and refuses a share outside (0, 1]', () => {
    expect(pickCanaries(['b', 'a', 'c'], 0.01)).toEqual(['a']);
    expect(codeOf(() => pickCanaries(['a'], 0))).toBe('E_COEVO_INVALID');
    expect(judgeCanaries({ versionStats: () => ({ inferences: 0, errorRate: null, p95Ms: null, hardSampleRate: null }) }, OPTIONS, ['a'], 0)).toBeUndefined();
  });
});
