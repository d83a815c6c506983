/**
 * Collects the hardware facts through the host seam: every file and command goes
 * through the injected capabilities, every string through a pure parser in parse/.
 * A probe that cannot read something records a warning and carries on: a profile
 * with a hole is more useful than none.
 */
import { dirname } from 'node:path';
import type { RunCommand } from '../host/commands.ts';
import type { ListDir, PathExists, ReadTextFile } from '../host/files.ts';
import type { DiskSpace } from '../host/index.ts';
import type { SystemInfo } from '../host/system-info.ts';
import { parseAccelerators, parseUeventDriver, type Accelerator } from './parse/accelerators.ts';
import { boardFamilyOf, describeDmi, parseDeviceTreeCompatible, parseDeviceTreeModel, parseJetsonRelease, socOf } from './parse/board.ts';
import { parseCpufreqPolicy } from './parse/cpufreq.ts';
import { parseCpuinfo, type Cpuinfo } from './parse/cpuinfo.ts';
import { commonFeatures, describeIsa, isaFeaturesOf } from './parse/isa.ts';
import { parseThermalZone, type ThermalZone } from './parse/thermal.ts';
import { describeThrottle, parseGetThrottled, type PiThrottleState } from './parse/throttled.ts';
import type { BoardFacts, CpuCluster, CpuFacts, HardwareFacts, ThermalFacts } from './profile.ts';

export type ProbeHost = ReadTextFile & ListDir & PathExists & RunCommand & SystemInfo & DiskSpace;

export interface ProbeOptions {
  /** The state directory: storage free space is measured on its filesystem. */
  readonly stateDir: string;
  /** process.arch of the running Node. */
  readonly arch: string;
}

const CPUFREQ = '/sys/devices/system/cpu/cpufreq';
const THERMAL = '/sys/class/thermal';

export async function collectHardware(host: ProbeHost, options: ProbeOptions): Promise<HardwareFacts> {
  const warnings: string[] = [];
  const read = async (path: string): Promise<string | undefined> => {
    try {
      return await host.readTextFile(path);
    } catch (err) {
      warnings.push(`${path}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const list = async (path: string): Promise<readonly string[]> => {
    try {
      return (await host.listDir(path)) ?? [];
    } catch (err) {
      warnings.push(`${path}: ${(err as Error).message}`);
      return [];
    }
  };

  const cpuinfoText = await read('/proc/cpuinfo');
  if (cpuinfoText === undefined) warnings.push('/proc/cpuinfo is missing: CPU model and features unknown');
  const cpuinfo = parseCpuinfo(cpuinfoText ?? '');
  const [board, clusters, thermal, accelerators, memory, os, storage] = await Promise.all([
    probeBoard(read, cpuinfo),
    probeClusters(read, list, cpuinfo),
    probeThermal(read, list, host, warnings),
    probeAccelerators(read, list),
    host.memory(),
    host.os(),
    probeStorage(host, options.stateDir, warnings),
  ]);
  const features = isaFeaturesOf(commonFeatures(cpuinfo.processors.map((p) => p.features)));
  const cpu: CpuFacts = {
    isa: cpuinfo.isa,
    arch: options.arch,
    modelName: cpuinfo.modelName,
    vendor: cpuinfo.vendor ?? null,
    cores: cpuinfo.processors.length,
    clusters,
    features,
    featureSummary: describeIsa(features),
  };
  return {
    board,
    cpu,
    memory,
    storage,
    thermal,
    accelerators,
    os: { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel },
    warnings,
  };
}

type Read = (path: string) => Promise<string | undefined>;
type List = (path: string) => Promise<readonly string[]>;

async function probeBoard(read: Read, cpuinfo: Cpuinfo): Promise<BoardFacts> {
  const [modelRaw, compatibleRaw, jetsonRaw, sysVendor, productName, boardVendor, boardName] = await Promise.all([
    read('/proc/device-tree/model'),
    read('/proc/device-tree/compatible'),
    read('/etc/nv_tegra_release'),
    read('/sys/class/dmi/id/sys_vendor'),
    read('/sys/class/dmi/id/product_name'),
    read('/sys/class/dmi/id/board_vendor'),
    read('/sys/class/dmi/id/board_name'),
  ]);
  const compatible = compatibleRaw === undefined ? [] : parseDeviceTreeCompatible(compatibleRaw);
  const jetson = jetsonRaw === undefined ? undefined : parseJetsonRelease(jetsonRaw);
  const model =
    (modelRaw === undefined ? undefined : parseDeviceTreeModel(modelRaw)) ??
    cpuinfo.boardModel ??
    describeDmi({ sysVendor, productName, boardVendor, boardName });
  return {
    family: boardFamilyOf({ model, compatible, jetson: jetson !== undefined, isa: cpuinfo.isa }),
    model: model ?? null,
    soc: socOf(compatible) ?? null,
    compatible,
    jetson: jetson ?? null,
  };
}

/** Clusters are cpufreq policies (CPUs sharing a clock); without cpufreq (VMs), CPUs grouped by core name. */
async function probeClusters(read: Read, list: List, cpuinfo: Cpuinfo): Promise<CpuCluster[]> {
  const policies = (await list(CPUFREQ)).filter((n) => /^policy\d+$/.test(n)).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  const nameOf = (cpu: number): string => cpuinfo.processors.find((p) => p.index === cpu)?.coreName ?? 'unknown';
  if (policies.length > 0) {
    const perPolicy = await Promise.all(
      policies.map(async (name) => {
        const dir = `${CPUFREQ}/${name}`;
        const [relatedCpus, affectedCpus, cpuinfoMinFreq, cpuinfoMaxFreq, scalingMaxFreq, scalingCurFreq, scalingGovernor] = await Promise.all([
          read(`${dir}/related_cpus`),
          read(`${dir}/affected_cpus`),
          read(`${dir}/cpuinfo_min_freq`),
          read(`${dir}/cpuinfo_max_freq`),
          read(`${dir}/scaling_max_freq`),
          read(`${dir}/scaling_cur_freq`),
          read(`${dir}/scaling_governor`),
        ]);
        const policy = parseCpufreqPolicy({ name, relatedCpus, affectedCpus, cpuinfoMinFreq, cpuinfoMaxFreq, scalingMaxFreq, scalingCurFreq, scalingGovernor });
        return {
          coreName: nameOf(policy.cpus[0] ?? -1),
          cpus: policy.cpus,
          minHz: policy.minHz ?? null,
          maxHz: policy.maxHz ?? null,
          curHz: policy.curHz ?? null,
          scalingMaxHz: policy.scalingMaxHz ?? null,
          governor: policy.governor ?? null,
        };
      }),
    );
    return mergePerCpuPolicies(perPolicy);
  }
  const groups = new Map<string, number[]>();
  for (const p of cpuinfo.processors) groups.set(p.coreName, [...(groups.get(p.coreName) ?? []), p.index]);
  return [...groups].map(([coreName, cpus]) => ({ coreName, cpus, minHz: null, maxHz: null, curHz: null, scalingMaxHz: null, governor: null }));
}

/**
 * x86 cpufreq drivers (intel_pstate, amd-pstate) give every CPU its own policy; a
 * cluster of one CPU each says nothing. Single-CPU policies with the same core name,
 * limits and governor are merged; multi-CPU policies (ARM clusters) are kept as they are,
 * and so are hybrid x86 P- and E-cores, whose maximum clocks differ.
 */
function mergePerCpuPolicies(clusters: readonly CpuCluster[]): CpuCluster[] {
  const merged: CpuCluster[] = [];
  let lastIsPerCpu = false;
  for (const cluster of clusters) {
    const last = merged.at(-1);
    const perCpu = cluster.cpus.length === 1;
    if (
      last !== undefined &&
      perCpu &&
      lastIsPerCpu &&
      last.coreName === cluster.coreName &&
      last.minHz === cluster.minHz &&
      last.maxHz === cluster.maxHz &&
      last.governor === cluster.governor
    ) {
      merged[merged.length - 1] = {
        ...last,
        cpus: [...last.cpus, ...cluster.cpus],
        // The lowest ceiling and the highest current clock of the group: what can run, what runs.
        scalingMaxHz: minOfNullable(last.scalingMaxHz, cluster.scalingMaxHz),
        curHz: maxOfNullable(last.curHz, cluster.curHz),
      };
    } else {
      merged.push(cluster);
      lastIsPerCpu = perCpu;
    }
  }
  return merged;
}

function minOfNullable(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

function maxOfNullable(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/**
 * Every /sys/class/thermal/thermal_zoneN with its trip points, in zone order. Shared with
 * telemetry's periodic sampler, which reads the same zones every interval.
 */
export async function readThermalZones(read: Read, list: List): Promise<ThermalZone[]> {
  const zoneNames = (await list(THERMAL)).filter((n) => /^thermal_zone\d+$/.test(n)).sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)));
  return Promise.all(
    zoneNames.map(async (name) => {
      const dir = `${THERMAL}/${name}`;
      const entries = await list(dir);
      const tripIds = entries.map((e) => /^trip_point_(\d+)_temp$/.exec(e)?.[1]).filter((k): k is string => k !== undefined).sort((a, b) => Number(a) - Number(b));
      const [type, temp, trips] = await Promise.all([
        read(`${dir}/type`),
        read(`${dir}/temp`),
        Promise.all(tripIds.map(async (k) => ({ type: await read(`${dir}/trip_point_${k}_type`), temp: await read(`${dir}/trip_point_${k}_temp`) }))),
      ]);
      return parseThermalZone({ name, type, temp, trips });
    }),
  );
}

/** True when a zone has reached a trip point at which the kernel throttles. */
export function kernelThrottling(zones: readonly ThermalZone[]): boolean {
  return zones.some((z) => z.reached.some((t) => t === 'passive' || t === 'hot' || t === 'critical'));
}

async function probeThermal(read: Read, list: List, commands: RunCommand, warnings: string[]): Promise<ThermalFacts> {
  const zones = await readThermalZones(read, list);
  let piThrottle: PiThrottleState | undefined;
  const result = await commands.runCommand('vcgencmd', ['get_throttled'], { timeoutMs: 3000 });
  if (result !== undefined) {
    piThrottle = result.exitCode === 0 ? parseGetThrottled(result.stdout) : undefined;
    if (piThrottle === undefined) warnings.push(`vcgencmd get_throttled: ${(result.stderr || result.stdout).trim().split('\n')[0] ?? 'no output'}`);
  }
  const notes: string[] = piThrottle === undefined ? [] : describeThrottle(piThrottle);
  for (const zone of zones) {
    if (zone.reached.length > 0) notes.push(`${zone.type} at ${zone.celsius ?? '?'} °C reached ${zone.reached.join(', ')} trip`);
  }
  const firmwareThrottling = piThrottle !== undefined && (piThrottle.throttledNow || piThrottle.frequencyCappedNow || piThrottle.softTempLimitNow);
  return { zones, piThrottle: piThrottle ?? null, throttlingNow: kernelThrottling(zones) || firmwareThrottling, notes };
}

async function probeAccelerators(read: Read, list: List): Promise<Accelerator[]> {
  const [dev, dri] = await Promise.all([list('/dev'), list('/dev/dri')]);
  const renderDrivers: Record<string, string> = {};
  await Promise.all(
    dri
      .filter((n) => n.startsWith('renderD'))
      .map(async (node) => {
        const uevent = await read(`/sys/class/drm/${node}/device/uevent`);
        const driver = uevent === undefined ? undefined : parseUeventDriver(uevent);
        if (driver !== undefined) renderDrivers[node] = driver;
      }),
  );
  return parseAccelerators({ dev, dri, renderDrivers });
}

/** Free space where the state directory is or will be: the nearest existing ancestor's filesystem. */
async function probeStorage(host: PathExists & DiskSpace, stateDir: string, warnings: string[]): Promise<{ path: string; freeBytes: number | null }> {
  let path = stateDir;
  try {
    while (!(await host.exists(path)) && dirname(path) !== path) path = dirname(path);
    return { path, freeBytes: await host.freeBytes(path) };
  } catch (err) {
    warnings.push(`free space of ${stateDir}: ${(err as Error).message}`);
    return { path, freeBytes: null };
  }
}
