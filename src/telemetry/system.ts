/**
 * The machine's vital signs for each telemetry interval, read through the host seam:
 * CPU busy share from /proc/stat deltas, memory through systeminformation, the process
 * resident size, the hottest thermal zone (parsed by hardware/parse/thermal.ts) and free
 * space of the state directory. Anything that cannot be read is null, never a guess.
 */
import { kernelThrottling, readThermalZones } from '../hardware/index.ts';
import type { DiskSpace } from '../host/index.ts';
import type { ListDir, ReadTextFile } from '../host/files.ts';
import type { ProcessMemory } from '../host/process-memory.ts';
import type { SystemInfo } from '../host/system-info.ts';

export interface SystemSample {
  readonly cpuPercent: number | null;
  readonly memoryUsedBytes: number | null;
  readonly memoryTotalBytes: number | null;
  readonly processRssBytes: number | null;
  readonly temperatureC: number | null;
  readonly throttled: boolean | null;
  readonly diskFreeBytes: number | null;
}

/** What the aggregator asks once per interval. */
export interface SystemSampler {
  sample(): Promise<SystemSample>;
}

export interface HostSamplerDeps {
  readonly files: ReadTextFile & ListDir;
  readonly systemInfo: Pick<SystemInfo, 'memory'>;
  readonly disk: DiskSpace;
  readonly processMemory: Pick<ProcessMemory, 'read'>;
  /** The directory whose filesystem's free space is reported (the state directory). */
  readonly stateDir: string;
}

interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

/** The aggregate `cpu` line of /proc/stat as busy and total jiffies; undefined when absent or malformed. */
export function parseProcStatCpu(text: string): CpuTimes | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return undefined;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((f) => !Number.isFinite(f))) return undefined;
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  // idle + iowait are not busy time.
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

export function hostSystemSampler(deps: HostSamplerDeps): SystemSampler {
  let previous: CpuTimes | undefined;
  const settle = async <T>(promise: Promise<T>): Promise<T | null> => {
    try {
      return await promise;
    } catch {
      return null;
    }
  };
  const cpuPercent = async (): Promise<number | null> => {
    const text = await deps.files.readTextFile('/proc/stat');
    const now = text === undefined ? undefined : parseProcStatCpu(text);
    if (now === undefined) return null;
    const before = previous;
    previous = now;
    if (before === undefined || now.total <= before.total) return null;
    return (100 * (now.busy - before.busy)) / (now.total - before.total);
  };
  const thermal = async (): Promise<{ temperatureC: number | null; throttled: boolean | null }> => {
    const zones = await readThermalZones(
      (file) => deps.files.readTextFile(file),
      async (dir) => (await deps.files.listDir(dir)) ?? [],
    );
    if (zones.length === 0) return { temperatureC: null, throttled: null };
    const temps = zones.map((z) => z.celsius).filter((c): c is number => c !== null);
    return {
      temperatureC: temps.length === 0 ? null : Math.max(...temps),
      throttled: kernelThrottling(zones),
    };
  };
  return {
    sample: async () => {
      const [cpu, memory, therm, disk] = await Promise.all([
        settle(cpuPercent()),
        settle(deps.systemInfo.memory()),
        settle(thermal()),
        settle(deps.disk.freeBytes(deps.stateDir)),
      ]);
      let rss: number | null = null;
      try {
        rss = deps.processMemory.read().residentBytes;
      } catch {
        rss = null;
      }
      return {
        cpuPercent: cpu,
        memoryUsedBytes: memory === null ? null : memory.totalBytes - memory.availableBytes,
        memoryTotalBytes: memory?.totalBytes ?? null,
        processRssBytes: rss,
        temperatureC: therm?.temperatureC ?? null,
        throttled: therm?.throttled ?? null,
        diskFreeBytes: disk,
      };
    },
  };
}
