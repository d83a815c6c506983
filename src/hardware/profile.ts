/**
 * The device profile: what the planner knows about the machine. Versioned and plain
 * JSON (null, never undefined) because it is cached, printed with --json and sent
 * to the cloud; bump DEVICE_PROFILE_VERSION when a field changes meaning.
 */
import type { Accelerator } from './parse/accelerators.ts';
import type { BoardFamily, JetsonRelease } from './parse/board.ts';
import type { IsaFeatures } from './parse/isa.ts';
import type { ThermalZone } from './parse/thermal.ts';
import type { PiThrottleState } from './parse/throttled.ts';
import type { MicroBenchmarks } from './micro-bench.ts';

export const DEVICE_PROFILE_VERSION = 1;

export interface CpuCluster {
  /** "Cortex-A76", or the x86 model name. */
  readonly coreName: string;
  readonly cpus: readonly number[];
  readonly minHz: number | null;
  readonly maxHz: number | null;
  readonly curHz: number | null;
  /** Below maxHz when something (nvpmodel, a thermal governor, a user) caps the clock. */
  readonly scalingMaxHz: number | null;
  readonly governor: string | null;
}

export interface BoardFacts {
  readonly family: BoardFamily;
  /** Device-tree model, DMI vendor and product, or the Pi's cpuinfo Model line. */
  readonly model: string | null;
  readonly soc: string | null;
  readonly compatible: readonly string[];
  readonly jetson: JetsonRelease | null;
}

export interface CpuFacts {
  readonly isa: 'x86' | 'arm' | 'unknown';
  /** Node's process.arch of the OS we run on (arm64 on a 64-bit Pi OS, arm on a 32-bit one). */
  readonly arch: string;
  readonly modelName: string;
  readonly vendor: string | null;
  /** Logical CPUs the kernel lists. */
  readonly cores: number;
  readonly clusters: readonly CpuCluster[];
  readonly features: IsaFeatures;
  /** The features that matter, for people: ["NEON", "dotprod", "fp16"]. */
  readonly featureSummary: readonly string[];
}

export interface MemoryFacts {
  readonly totalBytes: number;
  readonly availableBytes: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

export interface ThermalFacts {
  readonly zones: readonly ThermalZone[];
  /** From `vcgencmd get_throttled` on a Raspberry Pi; null elsewhere or when it cannot run. */
  readonly piThrottle: PiThrottleState | null;
  /** True when the kernel or the firmware is holding the clocks down right now. */
  readonly throttlingNow: boolean;
  /** Why throttlingNow, or what happened since boot, in words. */
  readonly notes: readonly string[];
}

export interface ExecutionProviderStatus {
  readonly name: string;
  /** Shipped inside onnxruntime-node's binary (cpu, webgpu) rather than needing system libraries (cuda, tensorrt). */
  readonly bundled: boolean;
  /** A session with this provider opened and ran a one-node model here. */
  readonly usable: boolean;
  readonly reason: string | null;
}

export interface HardwareFacts {
  readonly board: BoardFacts;
  readonly cpu: CpuFacts;
  readonly memory: MemoryFacts;
  readonly storage: { readonly path: string; readonly freeBytes: number | null };
  readonly thermal: ThermalFacts;
  readonly accelerators: readonly Accelerator[];
  readonly os: { readonly platform: string; readonly distro: string; readonly release: string; readonly kernel: string };
  /** What could not be read, one line each; the profile is still usable. */
  readonly warnings: readonly string[];
}

export interface DeviceProfile extends HardwareFacts {
  readonly version: typeof DEVICE_PROFILE_VERSION;
  /** sha256 over the stable parts (fingerprint.ts); measurements are cached under it. */
  readonly fingerprint: string;
  /** ISO 8601. */
  readonly collectedAt: string;
  readonly onnxruntime: { readonly version: string; readonly executionProviders: readonly ExecutionProviderStatus[] };
  readonly measured: MicroBenchmarks | null;
}
