/**
 * Measured capability: short onnxruntime runs of the micro-models (micro-models.ts)
 * that tell the planner what this device really does with fp32 and int8, and how
 * fast it moves memory. Sized to take a few seconds on a Raspberry Pi 4; each kernel
 * gets a time slice and reports the median of its runs.
 */
import { createSession, type Session, type SessionOptions } from '../runtime/session.ts';
import { measureLatencies } from '../runtime/bench/measure.ts';
import { percentileOfSorted } from '../runtime/bench/stats.ts';
import { convFp32, convInt8, gemmFp32, gemmInt8, memoryAdd } from './micro-models.ts';

export const MICRO_BENCH_VERSION = 1;

export interface KernelResult {
  readonly name: string;
  readonly medianMs: number;
  readonly runs: number;
  /** Operations per second (multiply-add = 2) for GEMM/Conv; bytes per second for memory. */
  readonly perSecond: number;
}

export interface MicroBenchmarks {
  readonly version: typeof MICRO_BENCH_VERSION;
  /** ISO 8601 time the measurement ran. */
  readonly measuredAt: string;
  readonly durationMs: number;
  /** Intra-op threads per session (1 unless asked otherwise): the numbers are per core. */
  readonly threads: number;
  readonly gemmFp32Gflops: number;
  readonly gemmInt8Gops: number;
  /** int8 time advantage on GEMM: > 1 means int8 is faster here. */
  readonly gemmInt8Speedup: number;
  readonly convFp32Gflops: number;
  readonly convInt8Gops: number;
  readonly convInt8Speedup: number;
  readonly memoryBandwidthGBps: number;
  readonly kernels: readonly KernelResult[];
}

export interface MicroBenchOptions {
  /** Wall time each kernel may spend in timed runs. Default 700 ms: five kernels plus session creation stay well under 10 s. */
  readonly sliceMs?: number;
  /**
   * Intra-op threads per session. Default 1: five sessions alive at once each keep a
   * thread pool whose idle workers spin, and on this project's 2-core VM that made
   * multi-threaded fp32 GEMM 20x slower than alone (30 ms vs 1.6 ms). One thread gives
   * per-core numbers that are stable; the planner scales them by the core count.
   */
  readonly threads?: number;
  /** Smaller shapes for tests. */
  readonly scale?: 'full' | 'tiny';
  readonly now?: () => number;
}

const SHAPES = {
  full: { gemm: { m: 128, k: 512, n: 512 }, conv: { channelsIn: 32, channelsOut: 64, size: 32 }, memoryElements: 4 * 1024 * 1024 },
  tiny: { gemm: { m: 16, k: 64, n: 64 }, conv: { channelsIn: 8, channelsOut: 8, size: 8 }, memoryElements: 64 * 1024 },
} as const;

/**
 * Sessions are created first, then the kernels take turns in short rounds: on a
 * loaded or thermally drifting device every kernel sees the same conditions, so the
 * int8/fp32 ratios stay meaningful even when the absolute numbers wander.
 */
export async function runMicroBenchmarks(options: MicroBenchOptions = {}, clock: { now(): number } = { now: () => Date.now() }): Promise<MicroBenchmarks> {
  const shapes = SHAPES[options.scale ?? 'full'];
  const sliceMs = options.sliceMs ?? 700;
  const started = clock.now();
  const threads = options.threads ?? 1;
  const sessionOptions: SessionOptions = { threads };
  const models = [gemmFp32(shapes.gemm), gemmInt8(shapes.gemm), convFp32(shapes.conv), convInt8(shapes.conv), memoryAdd(shapes.memoryElements)];
  const sessions: Session[] = [];
  try {
    for (const model of models) sessions.push(await createSession(model.bytes, sessionOptions));
    const samples = models.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < models.length; k++) {
        const model = models[k]!;
        const session = sessions[k]!;
        const measurement = await measureLatencies(() => session.run(model.feeds), {
          // Warm each session once before its first timed round; later rounds follow directly.
          warmup: round === 0 ? 2 : 0,
          iterations: 10_000,
          maxMs: sliceMs / ROUNDS,
          ...(options.now === undefined ? {} : { now: options.now }),
        });
        samples[k]!.push(...measurement.samplesMs);
      }
    }
    const kernels = models.map((model, k): KernelResult => {
      const sorted = Float64Array.from(samples[k]!).sort();
      const medianMs = percentileOfSorted(sorted, 50);
      return { name: model.name, medianMs, runs: sorted.length, perSecond: model.work / (medianMs / 1000) };
    });
    const [gf, gi, cf, ci, mem] = kernels as [KernelResult, KernelResult, KernelResult, KernelResult, KernelResult];
    return {
      version: MICRO_BENCH_VERSION,
      measuredAt: new Date(started).toISOString(),
      durationMs: clock.now() - started,
      threads,
      gemmFp32Gflops: gf.perSecond / 1e9,
      gemmInt8Gops: gi.perSecond / 1e9,
      gemmInt8Speedup: gf.medianMs / gi.medianMs,
      convFp32Gflops: cf.perSecond / 1e9,
      convInt8Gops: ci.perSecond / 1e9,
      convInt8Speedup: cf.medianMs / ci.medianMs,
      memoryBandwidthGBps: mem.perSecond / 1e9,
      kernels,
    };
  } finally {
    for (const session of sessions) await session.release();
  }
}

/** Turns each kernel takes; enough to average over load changes, few enough that a slow kernel still runs every round. */
const ROUNDS = 5;
