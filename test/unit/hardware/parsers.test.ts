import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAccelerators, parseUeventDriver } from '../../../src/hardware/parse/accelerators.ts';
import { armCoreName } from '../../../src/hardware/parse/arm-cores.ts';
import { boardFamilyOf, describeDmi, parseDeviceTreeCompatible, parseDeviceTreeModel, parseJetsonRelease, socOf } from '../../../src/hardware/parse/board.ts';
import { parseCpuList } from '../../../src/hardware/parse/cpu-list.ts';
import { parseCpufreqPolicy } from '../../../src/hardware/parse/cpufreq.ts';
import { parseCpuinfo } from '../../../src/hardware/parse/cpuinfo.ts';
import { commonFeatures, describeIsa, isaFeaturesOf } from '../../../src/hardware/parse/isa.ts';
import { parseThermalZone } from '../../../src/hardware/parse/thermal.ts';
import { describeThrottle, parseGetThrottled } from '../../../src/hardware/parse/throttled.ts';
import { HOSTS_DIR } from './fixture-host.ts';

const recorded = (board: string, path: string): string => readFileSync(join(HOSTS_DIR, board, path), 'utf8');

describe('parseCpuinfo', () => {
  it('reads the recorded x86 VM: model name, two processors, AVX2 but no AVX-512', () => {
    const info = parseCpuinfo(recorded('x86-epyc-vm', 'proc/cpuinfo'));
    expect(info.isa).toBe('x86');
    expect(info.modelName).toBe('AMD EPYC');
    expect(info.vendor).toBe('AuthenticAMD');
    expect(info.processors).toHaveLength(2);
    const isa = isaFeaturesOf(commonFeatures(info.processors.map((p) => p.features)));
    expect(isa).toMatchObject({ avx2: true, fma: true, avx512f: false, avx512vnni: false, neon: false });
  });

  it('names the Raspberry Pi 4 cores Cortex-A72 and keeps the trailing Model and Revision', () => {
    const info = parseCpuinfo(recorded('rpi4', 'proc/cpuinfo'));
    expect(info.isa).toBe('arm');
    expect(info.modelName).toBe('4x Cortex-A72');
    expect(info.boardModel).toBe('Raspberry Pi 4 Model B Rev 1.4');
    expect(info.revision).toBe('d03114');
    const isa = isaFeaturesOf(commonFeatures(info.processors.map((p) => p.features)));
    // The A72 is ARMv8.0: NEON but no dot product and no fp16 arithmetic, so int8 gains little there.
    expect(isa).toMatchObject({ neon: true, dotprod: false, fp16Arithmetic: false, i8mm: false });
  });

  it('splits the RK3588 into its A55 and A76 cores in order of appearance', () => {
    const info = parseCpuinfo(recorded('rock5b-rk3588', 'proc/cpuinfo'));
    expect(info.modelName).toBe('4x Cortex-A55 + 4x Cortex-A76');
    expect(info.processors.map((p) => p.part)).toEqual([0xd05, 0xd05, 0xd05, 0xd05, 0xd0b, 0xd0b, 0xd0b, 0xd0b]);
    expect(describeIsa(isaFeaturesOf(commonFeatures(info.processors.map((p) => p.features))))).toEqual(['NEON', 'dotprod', 'fp16']);
  });

  it('gives unknown ARM parts their hex ids rather than a wrong name', () => {
    expect(armCoreName(0x41, 0xfff)).toBe('0x41:0xfff');
    expect(armCoreName(0x4e, 0x004)).toBe('Carmel');
    expect(armCoreName(0x41, 0xd42)).toBe('Cortex-A78AE');
  });

  it('returns an empty, unknown-ISA description for empty input instead of throwing', () => {
    const info = parseCpuinfo('');
    expect(info).toMatchObject({ isa: 'unknown', processors: [], modelName: 'unknown' });
  });
});

describe('ISA features', () => {
  it('detects int8 and fp16 extensions from kernel feature words', () => {
    expect(isaFeaturesOf(['asimd', 'asimddp', 'i8mm', 'fphp', 'asimdhp', 'sve', 'sve2', 'bf16'])).toMatchObject({
      neon: true, dotprod: true, i8mm: true, fp16Arithmetic: true, sve: true, sve2: true, bf16: true,
    });
    expect(isaFeaturesOf(['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'amx_int8', 'amx_tile'])).toMatchObject({
      avx2: true, avx512f: true, avx512vnni: true, avxVnni: true, amxInt8: true,
    });
    // fphp alone is scalar only: the vector fp16 kernels need asimdhp too.
    expect(isaFeaturesOf(['asimd', 'fphp']).fp16Arithmetic).toBe(false);
  });

  it('keeps only the features every core has (a big.LITTLE task may run on either)', () => {
    expect(commonFeatures([['asimd', 'asimddp', 'i8mm'], ['asimd', 'asimddp']])).toEqual(['asimd', 'asimddp']);
    expect(commonFeatures([])).toEqual([]);
  });
});

describe('board files', () => {
  it('strips the device tree model NUL and splits compatible strings', () => {
    expect(parseDeviceTreeModel(recorded('rpi5', 'proc/device-tree/model'))).toBe('Raspberry Pi 5 Model B Rev 1.0');
    const compatible = parseDeviceTreeCompatible(recorded('jetson-orin-nano', 'proc/device-tree/compatible'));
    expect(compatible).toEqual(['nvidia,p3768-0000+p3767-0005', 'nvidia,p3767-0005', 'nvidia,tegra234']);
    expect(socOf(compatible)).toBe('tegra234');
    expect(parseDeviceTreeModel('\0')).toBeUndefined();
  });

  it('reads the L4T version from nv_tegra_release', () => {
    expect(parseJetsonRelease(recorded('jetson-orin-nano', 'etc/nv_tegra_release'))).toEqual({
      l4tMajor: 35, revision: '4.1', l4t: '35.4.1', board: 't186ref', date: 'Tue Aug  1 19:57:35 UTC 2023',
    });
    expect(parseJetsonRelease('not a release file')).toBeUndefined();
  });

  it('ignores OEM placeholder DMI strings and avoids repeating the vendor', () => {
    expect(describeDmi({ sysVendor: 'Dell Inc.\n', productName: 'OptiPlex 7090\n' })).toBe('Dell Inc. OptiPlex 7090');
    expect(describeDmi({ sysVendor: 'To be filled by O.E.M.', productName: 'Default string', boardVendor: 'ASRock', boardName: 'N100DC-ITX' })).toBe('ASRock N100DC-ITX');
    expect(describeDmi({ sysVendor: 'LENOVO', productName: 'LENOVO ThinkCentre' })).toBe('LENOVO ThinkCentre');
    expect(describeDmi({})).toBeUndefined();
  });

  it('tells the board family, preferring Jetson over the generic tegra match', () => {
    expect(boardFamilyOf({ model: 'Raspberry Pi 4 Model B Rev 1.4', compatible: [], jetson: false, isa: 'arm' })).toBe('raspberry-pi');
    expect(boardFamilyOf({ model: 'Radxa ROCK 5B', compatible: ['radxa,rock-5b', 'rockchip,rk3588'], jetson: false, isa: 'arm' })).toBe('rockchip');
    expect(boardFamilyOf({ model: undefined, compatible: ['nvidia,tegra234'], jetson: false, isa: 'arm' })).toBe('jetson');
    expect(boardFamilyOf({ model: undefined, compatible: [], jetson: false, isa: 'x86' })).toBe('x86');
  });
});

describe('cpufreq and thermal', () => {
  it('parses kernel CPU lists with ranges, commas and spaces', () => {
    expect(parseCpuList('0-3,6\n')).toEqual([0, 1, 2, 3, 6]);
    expect(parseCpuList('4 5')).toEqual([4, 5]);
    expect(parseCpuList('')).toEqual([]);
  });

  it('converts kHz to Hz and keeps the capped scaling maximum', () => {
    const policy = parseCpufreqPolicy({ name: 'policy4', relatedCpus: '4 5\n', cpuinfoMinFreq: '408000\n', cpuinfoMaxFreq: '2400000\n', scalingMaxFreq: '1608000\n', scalingCurFreq: 'garbage', scalingGovernor: 'schedutil\n' });
    expect(policy).toEqual({ name: 'policy4', cpus: [4, 5], minHz: 408e6, maxHz: 2400e6, curHz: undefined, scalingMaxHz: 1608e6, governor: 'schedutil' });
  });

  it('reports the trips a zone has reached and drops parked trip values', () => {
    const zone = parseThermalZone({
      name: 'thermal_zone0', type: 'soc-thermal\n', temp: '86153\n',
      trips: [{ type: 'passive', temp: '75000' }, { type: 'passive', temp: '85000' }, { type: 'critical', temp: '115000' }, { type: 'hot', temp: '2147483647' }, { type: 'active', temp: '0' }],
    });
    expect(zone.celsius).toBeCloseTo(86.153, 6);
    expect(zone.trips.map((t) => t.celsius)).toEqual([75, 85, 115]);
    expect(zone.reached).toEqual(['passive']);
    expect(parseThermalZone({ name: 'thermal_zone3', temp: 'EINVAL', trips: [] })).toMatchObject({ type: 'thermal_zone3', celsius: null, reached: [] });
  });
});

describe('vcgencmd get_throttled', () => {
  it('decodes 0x50005: under-voltage and throttling now, and both since boot', () => {
    const commands = JSON.parse(recorded('rpi4', 'commands.json')) as Record<string, { stdout: string }>;
    const state = parseGetThrottled(commands['vcgencmd get_throttled']?.stdout ?? '');
    expect(state).toMatchObject({ raw: 0x50005, underVoltageNow: true, frequencyCappedNow: false, throttledNow: true, underVoltageOccurred: true, throttledOccurred: true, frequencyCappedOccurred: false });
    expect(describeThrottle(state!)).toEqual(['under-voltage now', 'throttled now', 'under-voltage since boot', 'throttled since boot']);
  });

  it('reads 0x0 as all clear and refuses output that is not a throttled line', () => {
    expect(describeThrottle(parseGetThrottled('throttled=0x0')!)).toEqual([]);
    expect(parseGetThrottled('VCHI initialization failed')).toBeUndefined();
  });
});

describe('accelerators', () => {
  it('finds the Jetson GPU and each DLA from nvhost nodes', () => {
    const found = parseAccelerators({ dev: ['nvhost-ctrl-gpu', 'nvhost-gpu', 'nvhost-ctrl-nvdla0', 'nvhost-ctrl-nvdla1', 'nvmap'], dri: [], renderDrivers: {} });
    expect(found).toEqual([
      { kind: 'nvidia-tegra-gpu', devices: ['/dev/nvhost-ctrl-gpu', '/dev/nvhost-gpu'] },
      { kind: 'nvidia-dla', devices: ['/dev/nvhost-ctrl-nvdla0', '/dev/nvhost-ctrl-nvdla1'] },
    ]);
  });

  it('recognises an RKNPU render node by its driver and keeps other render nodes as GPUs', () => {
    const found = parseAccelerators({ dev: ['mali0', 'apex_0'], dri: ['card0', 'renderD128', 'renderD129'], renderDrivers: { renderD128: 'rockchip-drm', renderD129: 'RKNPU' } });
    expect(found.map((a) => [a.kind, a.devices.join(' '), a.driver ?? null])).toEqual([
      ['rockchip-npu', '/dev/dri/renderD129', null],
      ['google-edgetpu', '/dev/apex_0', null],
      ['arm-mali-gpu', '/dev/mali0', null],
      ['gpu-render-node', '/dev/dri/renderD128', 'rockchip-drm'],
    ]);
  });

  it('reads the driver from a sysfs uevent', () => {
    expect(parseUeventDriver('OF_NAME=v3d\nDRIVER=v3d\n')).toBe('v3d');
    expect(parseUeventDriver('OF_NAME=x\n')).toBeUndefined();
  });
});
