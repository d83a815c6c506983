import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEVICE_PROFILE_VERSION,
  MicroBenchCache,
  hardwareFingerprint,
  probeExecutionProviders,
  profileDevice,
  runMicroBenchmarks,
  type FingerprintInput,
} from '../../../src/hardware/index.ts';
import { openStateDatabase, type StateDatabase } from '../../../src/store/index.ts';
import { fixtureHost, type Board } from './fixture-host.ts';

const base: FingerprintInput = {
  cpu: { isa: 'arm', arch: 'arm64', modelName: '4x Cortex-A76', cores: 4, featureSummary: ['NEON', 'dotprod', 'fp16'] },
  memoryTotalBytes: 4243611648,
  board: { model: 'Raspberry Pi 5 Model B Rev 1.0', soc: 'bcm2712' },
  ortVersion: '1.30.0',
};

describe('hardwareFingerprint', () => {
  it('is stable under feature order and a few MiB of MemTotal drift between kernels', () => {
    const a = hardwareFingerprint(base);
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hardwareFingerprint({ ...base, cpu: { ...base.cpu, featureSummary: ['fp16', 'NEON', 'dotprod'] } })).toBe(a);
    expect(hardwareFingerprint({ ...base, memoryTotalBytes: base.memoryTotalBytes - 12 * 1024 * 1024 })).toBe(a);
  });

  it('changes with the CPU, its features, the core count, memory size, board or onnxruntime version', () => {
    const a = hardwareFingerprint(base);
    const variants: FingerprintInput[] = [
      { ...base, cpu: { ...base.cpu, modelName: '4x Cortex-A72' } },
      { ...base, cpu: { ...base.cpu, featureSummary: ['NEON'] } },
      { ...base, cpu: { ...base.cpu, cores: 2 } },
      { ...base, memoryTotalBytes: 8 * 1024 ** 3 },
      { ...base, board: { model: 'Raspberry Pi 5 Model B Rev 1.1', soc: 'bcm2712' } },
      { ...base, ortVersion: '1.31.0' },
    ];
    for (const v of variants) expect(hardwareFingerprint(v)).not.toBe(a);
  });
});

describe('runMicroBenchmarks (real onnxruntime, tiny shapes)', () => {
  it('measures every kernel and derives the int8 speedups from the medians', async () => {
    const m = await runMicroBenchmarks({ scale: 'tiny', sliceMs: 50 });
    expect(m.kernels.map((k) => k.name)).toEqual(['gemm-fp32', 'gemm-int8', 'conv-fp32', 'conv-int8', 'memory-add']);
    for (const k of m.kernels) {
      expect(k.runs).toBeGreaterThanOrEqual(5);
      expect(k.medianMs).toBeGreaterThan(0);
      expect(k.perSecond).toBeGreaterThan(0);
    }
    const [gf, gi] = m.kernels;
    expect(m.gemmInt8Speedup).toBeCloseTo(gf!.medianMs / gi!.medianMs, 9);
    expect(m.memoryBandwidthGBps).toBeGreaterThan(0);
  });
});

describe('profileDevice with the SQLite cache', () => {
  let dir: string;
  let db: StateDatabase;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgevolve-profile-'));
    db = openStateDatabase(join(dir, 'state.db'));
  });
  afterAll(async () => {
    db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('measures once per fingerprint, reuses the cache, and re-measures on --refresh or other hardware', async () => {
    const cache = new MicroBenchCache(db);
    let measurements = 0;
    // A counting wrapper around the real micro-benchmarks, to see when the cache is bypassed.
    const measure = async (): Promise<Awaited<ReturnType<typeof runMicroBenchmarks>>> => {
      measurements++;
      return runMicroBenchmarks({ scale: 'tiny', sliceMs: 20 });
    };
    const profile = (board: Board, refresh = false) =>
      profileDevice({ host: fixtureHost(board), cache, measure, probeProviders: () => Promise.resolve([]) }, { stateDir: '/', arch: 'arm64', refresh });

    const first = await profile('rpi5');
    expect(first.version).toBe(DEVICE_PROFILE_VERSION);
    expect(first.measured).not.toBeNull();
    expect(measurements).toBe(1);

    const second = await profile('rpi5');
    expect(measurements).toBe(1);
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(second.measured).toEqual(first.measured);

    await profile('rpi5', true);
    expect(measurements).toBe(2);

    const other = await profile('rpi4');
    expect(other.fingerprint).not.toBe(first.fingerprint);
    expect(measurements).toBe(3);
    expect(db.prepare('SELECT count(*) AS n FROM hardware_benchmarks').get()).toEqual({ n: 2 });
  });

  it('is plain JSON: a round trip through JSON.stringify gives the same profile', async () => {
    const p = await profileDevice({ host: fixtureHost('rock5b-rk3588'), probeProviders: () => Promise.resolve([]) }, { stateDir: '/', arch: 'arm64', measure: false });
    expect(p.measured).toBeNull();
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });
});

describe('probeExecutionProviders (real onnxruntime-node)', () => {
  it('finds CPU usable and gives every unusable provider a reason', async () => {
    const providers = await probeExecutionProviders({ timeoutMs: 60_000 });
    expect(providers.find((p) => p.name === 'cpu')).toEqual({ name: 'cpu', bundled: true, usable: true, reason: null });
    for (const p of providers.filter((x) => !x.usable)) expect(p.reason).toMatch(/\S/);
  });
});
