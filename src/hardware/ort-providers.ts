/**
 * Which onnxruntime execution providers work here. onnxruntime-node lists what it
 * was built with (listSupportedBackends); "listed" is not "usable" (CUDA needs its
 * libraries, WebGPU a Vulkan driver), so each is tried on a one-node model. Non-CPU
 * providers are tried in the isolated benchmark child: a broken driver may crash the
 * process that loads it, and it also prints its complaints to that process's stderr.
 */
import * as ort from 'onnxruntime-node';
import { runIsolatedBenchmark } from '../runtime/bench/parent.ts';
import { createSession } from '../runtime/session.ts';
import { identityModel } from './micro-models.ts';
import type { ExecutionProviderStatus } from './profile.ts';

export interface ProviderProbeOptions {
  /** Per provider; creating a TensorRT session can take long. Default 60 s. */
  readonly timeoutMs?: number;
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.common ?? 'unknown';
}

export async function probeExecutionProviders(options: ProviderProbeOptions = {}): Promise<ExecutionProviderStatus[]> {
  const backends = ort.listSupportedBackends();
  return Promise.all(backends.map((b) => (b.name === 'cpu' ? probeCpu(b.bundled) : probeIsolated(b.name, b.bundled, options.timeoutMs ?? 60_000))));
}

async function probeCpu(bundled: boolean): Promise<ExecutionProviderStatus> {
  const model = identityModel();
  try {
    const session = await createSession(model.bytes, { executionProviders: ['cpu'] });
    try {
      await session.run(model.feeds);
    } finally {
      await session.release();
    }
    return { name: 'cpu', bundled, usable: true, reason: null };
  } catch (err) {
    return { name: 'cpu', bundled, usable: false, reason: (err as Error).message };
  }
}

async function probeIsolated(name: string, bundled: boolean, timeoutMs: number): Promise<ExecutionProviderStatus> {
  const model = identityModel();
  const outcome = await runIsolatedBenchmark({
    request: { model: model.bytes, warmup: 0, iterations: 1, executionProviders: [name], shapes: {}, seed: 1 },
    timeoutMs,
  });
  if (outcome.ok) return { name, bundled, usable: true, reason: null };
  return { name, bundled, usable: false, reason: outcome.failure.error.message };
}
