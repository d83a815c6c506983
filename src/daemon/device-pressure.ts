/**
 * What the budget watch reads about the device: whether the CPU is throttled (the kernel's
 * thermal trip points, and on a Raspberry Pi the firmware's `vcgencmd get_throttled` word)
 * and how much memory is left (MemAvailable) against this process's resident size. Read
 * through the host seam, parsed by hardware/parse; anything unreadable is null, never a guess.
 */
import { kernelThrottling, readThermalZones } from '../hardware/probe.ts';
import { describeThrottle, parseGetThrottled } from '../hardware/parse/throttled.ts';
import type { RunCommand } from '../host/commands.ts';
import type { ListDir, ReadTextFile } from '../host/files.ts';
import type { ProcessMemory } from '../host/process-memory.ts';
import type { SystemInfo } from '../host/system-info.ts';

export interface ThrottleReading {
  readonly throttled: boolean;
  /** What was read, for the operator: `thermal_zone0 (cpu-thermal) 86.0 °C reached passive trip; vcgencmd throttled=0x50005: …`. */
  readonly detail: string;
}

export interface MemoryReading {
  /** What a new allocation can get without swapping (MemAvailable). */
  readonly availableBytes: number;
  /** This process's resident size (every served model, the runtime and Node). */
  readonly residentBytes: number;
}

/** The budget watch's view of the device; tests inject readings a real device cannot be made to produce on demand. */
export interface DevicePressure {
  /** Null when neither thermal zones nor the firmware can tell. */
  throttle(): Promise<ThrottleReading | null>;
  /** Null when /proc cannot be read. */
  memory(): Promise<MemoryReading | null>;
}

export interface HostPressureDeps {
  readonly files: ReadTextFile & ListDir;
  readonly commands: RunCommand;
  readonly systemInfo: Pick<SystemInfo, 'memory'>;
  readonly processMemory: Pick<ProcessMemory, 'read'>;
}

export function hostDevicePressure(deps: HostPressureDeps): DevicePressure {
  return {
    throttle: async () => {
      const zones = await readThermalZones(
        (file) => deps.files.readTextFile(file),
        async (dir) => (await deps.files.listDir(dir)) ?? [],
      ).catch(() => []);
      const notes = zones.filter((z) => z.reached.length > 0).map((z) => `${z.name} (${z.type}) ${z.celsius === null ? '?' : z.celsius.toFixed(1)} °C reached ${z.reached.join(', ')} trip`);
      // vcgencmd only exists on a Raspberry Pi; elsewhere runCommand resolves undefined at once.
      const result = await deps.commands.runCommand('vcgencmd', ['get_throttled'], { timeoutMs: 3000 }).catch(() => undefined);
      const pi = result?.exitCode === 0 ? parseGetThrottled(result.stdout) : undefined;
      if (zones.length === 0 && pi === undefined) return null;
      const firmware = pi !== undefined && (pi.throttledNow || pi.frequencyCappedNow || pi.softTempLimitNow);
      if (pi !== undefined) notes.push(`vcgencmd throttled=0x${pi.raw.toString(16)}${describeThrottle(pi).length === 0 ? '' : `: ${describeThrottle(pi).join(', ')}`}`);
      const throttled = kernelThrottling(zones) || firmware;
      return { throttled, detail: notes.length > 0 ? notes.join('; ') : `${zones.length} thermal zones below their trip points` };
    },
    memory: async () => {
      try {
        const [info, resident] = [await deps.systemInfo.memory(), deps.processMemory.read().residentBytes];
        return { availableBytes: info.availableBytes, residentBytes: resident };
      } catch {
        return null;
      }
    },
  };
}
