import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectHardware } from '../../../src/hardware/index.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import { fixtureHost } from './fixture-host.ts';

const options = { stateDir: '/var/lib/edgevolve', arch: 'arm64' };

describe('collectHardware on recorded and written boards', () => {
  it('x86 VM (recorded): one cluster from cpuinfo, no thermal zones, no accelerators, no warnings', async () => {
    const host = fixtureHost('x86-epyc-vm');
    const facts = await collectHardware(host, { ...options, arch: 'x64' });
    expect(facts.board).toMatchObject({ family: 'x86', model: null, soc: null, jetson: null });
    expect(facts.cpu).toMatchObject({ isa: 'x86', modelName: 'AMD EPYC', cores: 2, featureSummary: ['AVX2', 'FMA'] });
    expect(facts.cpu.clusters).toEqual([{ coreName: 'AMD EPYC', cpus: [0, 1], minHz: null, maxHz: null, curHz: null, scalingMaxHz: null, governor: null }]);
    expect(facts.thermal).toEqual({ zones: [], piThrottle: null, throttlingNow: false, notes: [] });
    expect(facts.accelerators).toEqual([]);
    expect(facts.memory.totalBytes).toBe(25276063744);
    expect(facts.warnings).toEqual([]);
    // vcgencmd is looked for on every machine; absent here, so nothing was recorded for it.
    expect(host.commandsRun).toEqual(['vcgencmd get_throttled']);
  });

  it('Raspberry Pi 4: board from the device tree, firmware throttling from vcgencmd, v3d render node', async () => {
    const facts = await collectHardware(fixtureHost('rpi4'), options);
    expect(facts.board).toMatchObject({ family: 'raspberry-pi', model: 'Raspberry Pi 4 Model B Rev 1.4', soc: 'bcm2711' });
    expect(facts.cpu.clusters).toEqual([{ coreName: 'Cortex-A72', cpus: [0, 1, 2, 3], minHz: 600e6, maxHz: 1800e6, curHz: 600e6, scalingMaxHz: 1800e6, governor: 'ondemand' }]);
    expect(facts.thermal.throttlingNow).toBe(true);
    expect(facts.thermal.piThrottle?.underVoltageNow).toBe(true);
    expect(facts.thermal.notes).toContain('under-voltage now');
    expect(facts.thermal.zones[0]).toMatchObject({ type: 'cpu-thermal', celsius: 61.855, reached: [] });
    expect(facts.accelerators).toEqual([{ kind: 'gpu-render-node', devices: ['/dev/dri/renderD128'], driver: 'v3d' }]);
  });

  it('Raspberry Pi 5: dotprod and fp16, fan trips reached are not throttling, Hailo found', async () => {
    const facts = await collectHardware(fixtureHost('rpi5'), options);
    expect(facts.cpu.featureSummary).toEqual(['NEON', 'dotprod', 'fp16']);
    expect(facts.thermal.zones[0]?.reached).toEqual(['active']);
    expect(facts.thermal.throttlingNow).toBe(false);
    expect(facts.accelerators.map((a) => a.kind)).toEqual(['hailo', 'gpu-render-node']);
  });

  it('Jetson Orin Nano: L4T release, two policies, powered-off cv zones, integrated GPU', async () => {
    const facts = await collectHardware(fixtureHost('jetson-orin-nano'), options);
    expect(facts.board).toMatchObject({ family: 'jetson', model: 'NVIDIA Jetson Orin Nano Developer Kit', soc: 'tegra234' });
    expect(facts.board.jetson?.l4t).toBe('35.4.1');
    expect(facts.cpu.modelName).toBe('6x Cortex-A78AE');
    expect(facts.cpu.clusters.map((c) => c.cpus)).toEqual([[0, 1, 2, 3], [4, 5]]);
    expect(facts.thermal.zones).toHaveLength(9);
    expect(facts.thermal.zones.find((z) => z.type === 'cv0-thermal')).toMatchObject({ celsius: -256, reached: [] });
    expect(facts.thermal.throttlingNow).toBe(false);
    expect(facts.thermal.piThrottle).toBeNull();
    expect(facts.accelerators).toEqual([{ kind: 'nvidia-tegra-gpu', devices: ['/dev/nvhost-ctrl-gpu', '/dev/nvhost-gpu'] }]);
  });

  it('RK3588: three clusters with the big ones capped, soc above its passive trip, NPU via its render node', async () => {
    const facts = await collectHardware(fixtureHost('rock5b-rk3588'), options);
    expect(facts.board).toMatchObject({ family: 'rockchip', model: 'Radxa ROCK 5B', soc: 'rk3588' });
    expect(facts.cpu.clusters.map((c) => [c.coreName, c.cpus.join(','), c.maxHz, c.scalingMaxHz])).toEqual([
      ['Cortex-A55', '0,1,2,3', 1800e6, 1800e6],
      ['Cortex-A76', '4,5', 2400e6, 1608e6],
      ['Cortex-A76', '6,7', 2400e6, 1608e6],
    ]);
    expect(facts.thermal.throttlingNow).toBe(true);
    expect(facts.thermal.notes).toEqual(['soc-thermal at 86.153 °C reached passive trip']);
    expect(facts.accelerators.map((a) => [a.kind, a.devices.join(' ')])).toEqual([
      ['rockchip-npu', '/dev/dri/renderD129'],
      ['arm-mali-gpu', '/dev/mali0'],
      ['gpu-render-node', '/dev/dri/renderD128'],
    ]);
  });

  it('measures storage on the nearest existing ancestor of a state directory that does not exist yet', async () => {
    const facts = await collectHardware(fixtureHost('rpi5', { freeBytes: 123 }), { ...options, stateDir: '/proc/not/there/yet' });
    expect(facts.storage).toEqual({ path: '/proc', freeBytes: 123 });
  });

  it('turns an unreadable file into a warning and still returns a profile', async () => {
    const host = fixtureHost('rpi5');
    // Fault injection: the real files cannot be made to fail with EIO on demand.
    const failing = {
      ...host,
      readTextFile: (path: string) => (path.endsWith('/temp') ? Promise.reject(new Error('EIO: i/o error')) : host.readTextFile(path)),
    };
    const facts = await collectHardware(failing, options);
    expect(facts.warnings).toEqual(['/sys/class/thermal/thermal_zone0/temp: EIO: i/o error']);
    expect(facts.thermal.zones[0]).toMatchObject({ type: 'cpu-thermal', celsius: null });
    expect(facts.cpu.cores).toBe(4);
  });
});

describe('clusters from per-CPU cpufreq policies (x86 intel_pstate / amd-pstate)', () => {
  let root: string;
  beforeAll(async () => {
    // A hybrid x86 laid out like intel_pstate does it: one policy per CPU, P-cores at 5.0 GHz, E-cores at 3.8 GHz.
    root = await mkdtemp(join(tmpdir(), 'edgevolve-hybrid-'));
    const flags = 'fpu sse sse2 avx avx2 fma avx_vnni';
    await mkdir(join(root, 'proc'), { recursive: true });
    await writeFile(join(root, 'proc/cpuinfo'), [0, 1, 2, 3].map((i) => `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: 12th Gen Intel(R) Core(TM) i5-1240P\nflags\t\t: ${flags}\n`).join('\n'));
    const maxima = [5000000, 5000000, 3800000, 3800000];
    for (const [cpu, max] of maxima.entries()) {
      const dir = join(root, `sys/devices/system/cpu/cpufreq/policy${cpu}`);
      await mkdir(dir, { recursive: true });
      for (const [file, value] of Object.entries({ related_cpus: cpu, cpuinfo_min_freq: 400000, cpuinfo_max_freq: max, scaling_max_freq: max, scaling_cur_freq: 1200000 + cpu, scaling_governor: 'powersave' })) {
        await writeFile(join(dir, file), `${value}\n`);
      }
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('merges same-kind single-CPU policies and keeps P- and E-cores apart', async () => {
    const host = { ...fixtureHost('x86-epyc-vm'), ...nodeFiles(root) };
    const facts = await collectHardware(host, { stateDir: '/', arch: 'x64' });
    expect(facts.cpu.featureSummary).toEqual(['AVX2', 'FMA', 'AVX-VNNI']);
    expect(facts.cpu.clusters.map((c) => [c.cpus, c.maxHz, c.curHz])).toEqual([
      [[0, 1], 5000e6, 1200.001e6],
      [[2, 3], 3800e6, 1200.003e6],
    ]);
  });
});
