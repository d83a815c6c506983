/**
 * The budget watch's causes and its memory watch, on a real deployment rig (real store,
 * real onnxruntime sessions, real re-plan to the int8 variant). The throttle and memory
 * readings are INJECTED: a test cannot make the CPU throttle or the host run short of
 * memory on demand. The clock is a fake one so "long enough" needs no waiting.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BudgetWatch, type DevicePressure, type MemoryReading, type ThrottleReading } from '../../../src/daemon/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { CNN, MLP, deployRig, publish, testConfig, type DeployRig } from './fixtures.ts';

const MIB = 1024 * 1024;
const BREACH_FOR_MS = 60_000;

class InjectedPressure implements DevicePressure {
  memoryReading: MemoryReading | null = null;
  throttleReading: ThrottleReading | null = null;
  throttle(): Promise<ThrottleReading | null> {
    return Promise.resolve(this.throttleReading);
  }
  memory(): Promise<MemoryReading | null> {
    return Promise.resolve(this.memoryReading);
  }
}

describe('budget watch: memory tight for long enough re-plans, and every breach says whether the CPU throttled and how much memory was left', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let rig: DeployRig;
  let now: number;
  let pressure: InjectedPressure;
  let watch: BudgetWatch;
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-budget-pressure-');
    now = 1_000_000;
    pressure = new InjectedPressure();
  });
  afterEach(async () => {
    watch.stop();
    await rig.close();
    await tmp.cleanup();
  });

  async function start(budgets: Record<string, number>): Promise<void> {
    const ref = await publish(join(tmp.dir, 'oci'), '1.0.0', [
      { name: 'fp32', modelPath: CNN, precision: 'fp32' },
      { name: 'int8', modelPath: MLP, precision: 'int8' },
    ]);
    const stateDir = join(tmp.dir, 'state');
    rig = await deployRig(stateDir, testConfig(stateDir, { daemon: { models: [{ name: 'm', ref, budgets }] }, deploy: { latencyTolerance: 1e12 } }));
    const desired = rig.config.daemon.models[0]!;
    await rig.reconciler.reconcile(desired, 'test');
    expect(rig.store.repository.active('m')?.variant).toBe('fp32');
    watch = new BudgetWatch({
      serving: rig.serving,
      clock: { now: () => now, sleep: () => Promise.resolve() },
      events: rig.events,
      logger: silentLogger(),
      rules: () => ({ enabled: true, breachForMs: BREACH_FOR_MS, minSamples: 5, checkIntervalMs: 10_000 }),
      budgetMs: () => budgets.latencyP95Ms,
      memoryBudgetMb: () => budgets.memoryMb,
      pressure,
      replan: (_name, reason) => rig.reconciler.replan(desired, reason),
    });
  }

  it('memory below the budget for breachForMs: budget-breach with cause memory and the readings, then a re-plan to int8', async () => {
    await start({ memoryMb: 100 });
    pressure.memoryReading = { availableBytes: 40 * MIB, residentBytes: 90 * MIB };
    pressure.throttleReading = { throttled: true, detail: 'thermal_zone0 (cpu-thermal) 86.0 °C reached passive trip' };
    await watch.check();
    now += BREACH_FOR_MS - 1;
    await watch.check();
    expect(rig.events.ofKind('budget-breach')).toHaveLength(0);
    now += 1;
    await watch.check();
    expect(rig.events.ofKind('budget-breach').map((e) => e.fields)).toEqual([
      {
        model: 'm',
        cause: 'memory',
        p95Ms: null,
        budgetMs: null,
        forMs: BREACH_FOR_MS,
        throttled: true,
        throttle: 'thermal_zone0 (cpu-thermal) 86.0 °C reached passive trip',
        memoryAvailableMb: 40,
        memoryResidentMb: 90,
        memoryBudgetMb: 100,
      },
    ]);
    const replan = rig.events.ofKind('replan')[0]?.fields;
    expect(replan).toMatchObject({ model: 'm', from: '1.0.0/fp32', to: 'int8' });
    expect(replan?.reason).toBe('memory tight against the 100 MB budget for 60 s (resident 90 MB, 40 MB available); CPU throttled (thermal_zone0 (cpu-thermal) 86.0 °C reached passive trip)');
    expect(rig.serving.loaded()[0]?.variant).toBe('int8');
  });

  it('memory that recovers before breachForMs does not re-plan; a resident size over the budget (Node included) never does', async () => {
    await start({ memoryMb: 100 });
    const tight = { availableBytes: 40 * MIB, residentBytes: 90 * MIB };
    const ample = { availableBytes: 4096 * MIB, residentBytes: 60 * MIB };
    pressure.memoryReading = tight;
    await watch.check();
    now += BREACH_FOR_MS / 2;
    pressure.memoryReading = ample;
    await watch.check();
    now += BREACH_FOR_MS / 2;
    pressure.memoryReading = tight;
    await watch.check();
    now += BREACH_FOR_MS - 1;
    await watch.check();
    expect(rig.events.ofKind('budget-breach')).toHaveLength(0);
    // An unreadable memory neither starts nor ends a breach: the one that began still counts.
    pressure.memoryReading = null;
    now += 1;
    await watch.check();
    expect(rig.events.ofKind('budget-breach')).toHaveLength(0);
    pressure.memoryReading = tight;
    await watch.check();
    expect(rig.events.ofKind('budget-breach')[0]?.fields).toMatchObject({ cause: 'memory', memoryAvailableMb: 40, memoryResidentMb: 90, throttled: null, throttle: null });
  });

  it('a process resident over memoryMb with memory available is reported, not re-planned (no variant can shrink Node)', async () => {
    await start({ memoryMb: 100 });
    pressure.memoryReading = { availableBytes: 4096 * MIB, residentBytes: 300 * MIB };
    for (let i = 0; i < 4; i++) {
      await watch.check();
      now += BREACH_FOR_MS;
    }
    expect(rig.events.ofKind('budget-breach')).toHaveLength(0);
  });

  it('a p95 breach reports the CPU as not throttled with what was read, and the memory left', async () => {
    await start({ latencyP95Ms: 0.000001 });
    pressure.memoryReading = { availableBytes: 2048 * MIB, residentBytes: 120 * MIB };
    pressure.throttleReading = { throttled: false, detail: 'vcgencmd throttled=0x0' };
    const feeds = { input: { dataType: 1, dims: [1, 1, 28, 28], data: new Float32Array(784) } };
    for (let i = 0; i < 5; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    now += BREACH_FOR_MS;
    for (let i = 0; i < 5; i++) await rig.serving.infer('m', feeds);
    await watch.check();
    const breach = rig.events.ofKind('budget-breach')[0]?.fields;
    expect(breach).toMatchObject({ model: 'm', cause: 'latency', budgetMs: 0.000001, throttled: false, throttle: 'vcgencmd throttled=0x0', memoryAvailableMb: 2048, memoryResidentMb: 120, memoryBudgetMb: null });
    expect(breach?.p95Ms).toBeGreaterThan(0);
    expect(rig.events.ofKind('replan')[0]?.fields.reason).toMatch(/^p95 \d+\.\d ms over the 0\.000001 ms budget for 60 s; CPU not throttled \(vcgencmd throttled=0x0\)$/);
  });
});
