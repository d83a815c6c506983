/**
 * hardware/: the device profile. `profileDevice` collects the facts through the host
 * seam, asks onnxruntime which providers work, fingerprints the stable parts and
 * attaches the measured micro-benchmarks, from the cache when the fingerprint is known.
 */
import type { Clock } from '../host/index.ts';
import type { MicroBenchCache } from './cache.ts';
import { hardwareFingerprint } from './fingerprint.ts';
import { runMicroBenchmarks, type MicroBenchmarks, type MicroBenchOptions } from './micro-bench.ts';
import { onnxruntimeVersion, probeExecutionProviders } from './ort-providers.ts';
import { collectHardware, type ProbeHost, type ProbeOptions } from './probe.ts';
import { DEVICE_PROFILE_VERSION, type DeviceProfile, type ExecutionProviderStatus } from './profile.ts';

export interface ProfileOptions extends ProbeOptions {
  /** Measure even when the cache has this fingerprint. */
  readonly refresh?: boolean;
  /** Skip the micro-benchmarks entirely (measured: null unless cached). */
  readonly measure?: boolean;
  readonly microBench?: MicroBenchOptions;
  /** Skip trying each execution provider (faster; providers are then listed as unknown). */
  readonly probeProviders?: boolean;
}

export interface ProfileDeps {
  readonly host: ProbeHost & Clock;
  /** Where measurements are kept; without it they are measured every time. */
  readonly cache?: MicroBenchCache;
  /** Injected so tests can stand in for onnxruntime's answers. */
  readonly probeProviders?: () => Promise<ExecutionProviderStatus[]>;
  readonly measure?: (options: MicroBenchOptions) => Promise<MicroBenchmarks>;
}

export async function profileDevice(deps: ProfileDeps, options: ProfileOptions): Promise<DeviceProfile> {
  const facts = await collectHardware(deps.host, options);
  const ortVersion = onnxruntimeVersion();
  const providers = options.probeProviders === false ? [] : await (deps.probeProviders ?? probeExecutionProviders)();
  const fingerprint = hardwareFingerprint({ cpu: facts.cpu, memoryTotalBytes: facts.memory.totalBytes, board: facts.board, ortVersion });
  let measured: MicroBenchmarks | null = options.refresh === true ? null : (deps.cache?.get(fingerprint) ?? null);
  if (measured === null && options.measure !== false) {
    measured = await (deps.measure ?? ((o: MicroBenchOptions) => runMicroBenchmarks(o, deps.host)))(options.microBench ?? {});
    deps.cache?.put(fingerprint, measured, deps.host.now());
  }
  return {
    version: DEVICE_PROFILE_VERSION,
    fingerprint,
    collectedAt: new Date(deps.host.now()).toISOString(),
    ...facts,
    onnxruntime: { version: ortVersion, executionProviders: providers },
    measured,
  };
}

export { MicroBenchCache } from './cache.ts';
export { readCpuIsa, type CpuIsa } from './cpu-isa.ts';
export { collectHardware, readThermalZones, kernelThrottling, type ProbeHost, type ProbeOptions } from './probe.ts';
export { hardwareFingerprint, type FingerprintInput } from './fingerprint.ts';
export { runMicroBenchmarks, MICRO_BENCH_VERSION, type MicroBenchmarks, type KernelResult } from './micro-bench.ts';
export { probeExecutionProviders, onnxruntimeVersion } from './ort-providers.ts';
export * from './profile.ts';
