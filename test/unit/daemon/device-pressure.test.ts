import { describe, expect, it } from 'vitest';
import { hostDevicePressure } from '../../../src/daemon/device-pressure.ts';
import { memoryTight, stepSustained } from '../../../src/daemon/budget-watch.ts';
import { fixtureHost, type Board } from '../hardware/fixture-host.ts';

const MIB = 1024 * 1024;

function pressureOf(board: Board, residentBytes = 100 * MIB): ReturnType<typeof hostDevicePressure> {
  const host = fixtureHost(board);
  return hostDevicePressure({ files: host, commands: host, systemInfo: host, processMemory: { read: () => ({ residentBytes, peakBytes: residentBytes, source: 'proc-status' }) } });
}

describe('hostDevicePressure on recorded boards', () => {
  it('a Pi 4 on an under-sized supply is throttled, and says what the firmware word read', async () => {
    expect(await pressureOf('rpi4').throttle()).toEqual({
      throttled: true,
      detail: 'vcgencmd throttled=0x50005: under-voltage now, throttled now, under-voltage since boot, throttled since boot',
    });
  });
  it('an RK3588 whose SoC zone reached its passive trip is throttled by the kernel, and says which zone at what temperature', async () => {
    expect(await pressureOf('rock5b-rk3588').throttle()).toEqual({ throttled: true, detail: 'thermal_zone0 (soc-thermal) 86.2 °C reached passive trip' });
  });
  it('a Pi 5 at 52 °C (an active fan trip only) with throttled=0x0 is not throttled', async () => {
    expect(await pressureOf('rpi5').throttle()).toEqual({ throttled: false, detail: 'thermal_zone0 (cpu-thermal) 52.3 °C reached active trip; vcgencmd throttled=0x0' });
  });
  it('a VM with neither thermal zones nor vcgencmd cannot tell: null', async () => {
    expect(await pressureOf('x86-epyc-vm').throttle()).toBeNull();
  });
  it('memory: MemAvailable of the host and the resident size of the process', async () => {
    expect(await pressureOf('rpi4', 123 * MIB).memory()).toEqual({ availableBytes: 7388438528, residentBytes: 123 * MIB });
  });
});

describe('memory rules', () => {
  it('memoryTight: less than the budget available (a swap holds two sessions); the resident size (Node included) does not count', () => {
    expect(memoryTight({ availableBytes: 500 * MIB, residentBytes: 90 * MIB }, 100)).toBe(false);
    expect(memoryTight({ availableBytes: 500 * MIB, residentBytes: 300 * MIB }, 100)).toBe(false);
    expect(memoryTight({ availableBytes: 99 * MIB, residentBytes: 50 * MIB }, 100)).toBe(true);
  });
  it('stepSustained: starts, holds, fires after forMs, ends on false, ignores an unread value', () => {
    expect(stepSustained(null, true, 100, 50)).toEqual({ state: 100, replan: false });
    expect(stepSustained(100, undefined, 200, 50)).toEqual({ state: 100, replan: false });
    expect(stepSustained(100, true, 149, 50)).toEqual({ state: 100, replan: false });
    expect(stepSustained(100, true, 150, 50)).toEqual({ state: null, replan: true });
    expect(stepSustained(100, false, 150, 50)).toEqual({ state: null, replan: false });
  });
});
