/**
 * One benchmark, start to finish, in the current process: memory baseline, session,
 * inputs, warm-up, timed runs, peak memory. The child entry runs this in isolation;
 * scripts/bench-bench.ts runs it in-process to measure what isolation costs.
 */
import { performance } from 'node:perf_hooks';
import { EdgevolveError } from '../../errors/index.ts';
import type { ProcessMemory } from '../../host/process-memory.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import { createSession, type Session } from '../session.ts';
import { generateInput, resolveInputShapes } from './inputs.ts';
import { measureLatencies } from './measure.ts';
import type { BenchInputReport, BenchPhase, BenchRequest, BenchResult } from './protocol.ts';
import { summarizeLatencies } from './stats.ts';

export async function runBenchmark(request: BenchRequest, memory: ProcessMemory, onPhase: (phase: BenchPhase) => void = () => undefined): Promise<BenchResult> {
  // Reset VmHWM to VmRSS so the peak below is the model's, not Node's and tsx's start-up.
  const peakReset = memory.resetPeak();
  const before = memory.read();
  const baselineBytes = peakReset ? before.residentBytes : before.peakBytes;

  onPhase('session');
  const t0 = performance.now();
  const session = await createSession(request.model, {
    ...(request.threads === undefined ? {} : { threads: request.threads }),
    ...(request.executionProviders === undefined ? {} : { executionProviders: request.executionProviders }),
  });
  const sessionCreateMs = performance.now() - t0;
  try {
    onPhase('inputs');
    const { feeds, inputs } = request.dataDir === undefined ? generateFeeds(session, request) : await readFeeds(session, request, request.dataDir);
    onPhase('warmup');
    const measurement = await measureLatencies(() => session.run(feeds), { warmup: request.warmup, iterations: request.iterations });
    onPhase('measure');
    const latency = summarizeLatencies(measurement.samplesMs);
    const after = memory.read();
    const inferencesPerSecond = measurement.samplesMs.length / (measurement.totalMs / 1000);
    const batch = inputs[0]?.dims[0] ?? 1;
    return {
      sessionCreateMs,
      executionProviders: request.executionProviders ?? ['cpu'],
      inputs,
      warmup: { runs: request.warmup, ms: measurement.warmupMs },
      latency,
      throughput: { inferencesPerSecond, samplesPerSecond: inferencesPerSecond * Math.max(1, batch) },
      memory: {
        baselineBytes,
        peakBytes: after.peakBytes,
        peakDeltaBytes: Math.max(0, after.peakBytes - baselineBytes),
        peakReset,
        source: after.source,
      },
      samplesMs: measurement.samplesMs,
    };
  } finally {
    await session.release();
  }
}

function generateFeeds(session: Session, request: BenchRequest): { feeds: Record<string, TensorValue>; inputs: BenchInputReport[] } {
  const resolved = resolveInputShapes(session.inputs, { shapes: request.shapes, ...(request.batch === undefined ? {} : { batch: request.batch }) });
  const feeds: Record<string, TensorValue> = {};
  resolved.forEach((input, i) => (feeds[input.name] = generateInput(input, request.seed + i)));
  return { feeds, inputs: resolved.map((r) => ({ ...r, source: 'generated' as const })) };
}

/** The first batch of the data set, shaped the way the model takes it. */
async function readFeeds(session: Session, request: BenchRequest, dir: string): Promise<{ feeds: Record<string, TensorValue>; inputs: BenchInputReport[] }> {
  // Loaded only with --data: most benchmarks generate their inputs, and the child starts faster without it.
  const { checkAgainstModel, openDataset } = await import('../../data/index.ts');
  const dataset = await openDataset(dir);
  try {
    const binding = checkAgainstModel(dataset, session.inputs);
    const batchSize = binding.fixedBatch ?? (binding.mode === 'batched' ? (request.batch ?? 1) : 1);
    const first = await binding.dataset.batches(batchSize).next();
    if (first.done === true) throw new EdgevolveError('E_DATA_SET_INVALID', `data set ${dir} has no samples`, { context: { path: dir } });
    const feeds: Record<string, TensorValue> = {};
    for (const [name, value] of Object.entries(first.value.feeds)) {
      // A model that takes one sample without a batch axis gets the sample's own shape.
      feeds[name] = binding.hasBatchAxis[name] === false ? { ...value, dims: value.dims.slice(1) } : value;
    }
    return {
      feeds,
      inputs: Object.entries(feeds).map(([name, v]) => ({ name, dataType: v.dataType, dims: v.dims, source: 'data' as const, defaulted: [] })),
    };
  } finally {
    await dataset.close();
  }
}
