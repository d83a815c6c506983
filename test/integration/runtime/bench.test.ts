import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/index.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../../src/onnx/index.ts';
import { runIsolatedBenchmark, type BenchOutcome } from '../../../src/runtime/bench/parent.ts';
import type { BenchRequest } from '../../../src/runtime/bench/protocol.ts';

const FAULT_CHILD = fileURLToPath(new URL('./bench-fault-child.ts', import.meta.url));

/** y = relu(x · W), x [batch, 64], W [64, 32]: small, real, with a free batch dimension. */
function tinyModel(): Uint8Array {
  const w = new Float32Array(64 * 32).map((_, i) => ((i * 7919) % 13) / 13 - 0.5);
  return encodeModel(
    makeModel({
      graph: makeGraph({
        name: 'tiny',
        nodes: [makeNode('MatMul', ['x', 'w'], ['h']), makeNode('Relu', ['h'], ['y'])],
        inputs: [makeValueInfo('x', DataType.FLOAT, ['batch', 64])],
        outputs: [makeValueInfo('y', DataType.FLOAT, ['batch', 32])],
        initializers: [makeTensor('w', DataType.FLOAT, [64, 32], w)],
      }),
    }),
  );
}

const request = (over: Partial<BenchRequest> = {}): BenchRequest => ({ model: tinyModel(), warmup: 3, iterations: 50, shapes: {}, seed: 1, ...over });

function failure(outcome: BenchOutcome): Extract<BenchOutcome, { ok: false }>['failure'] {
  if (outcome.ok) throw new Error('expected the benchmark to fail');
  return outcome.failure;
}

describe('isolated benchmark (real onnxruntime in a forked child)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgevolve-bench-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('benchmarks a real model: ordered percentiles, positive throughput, peak memory above baseline', async () => {
    const outcome = await runIsolatedBenchmark({ request: request({ batch: 8 }), timeoutMs: 60_000 });
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure));
    const r = outcome.result;
    expect(outcome.child.pid).not.toBe(process.pid);
    expect(r.latency.count).toBe(50);
    expect(r.samplesMs).toHaveLength(50);
    expect(r.latency.minMs).toBeGreaterThan(0);
    expect(r.latency.p50Ms).toBeLessThanOrEqual(r.latency.p90Ms);
    expect(r.latency.p90Ms).toBeLessThanOrEqual(r.latency.p95Ms);
    expect(r.latency.p95Ms).toBeLessThanOrEqual(r.latency.p99Ms);
    expect(r.latency.p99Ms).toBeLessThanOrEqual(r.latency.maxMs);
    expect(r.sessionCreateMs).toBeGreaterThan(0);
    expect(r.throughput.samplesPerSecond).toBeCloseTo(r.throughput.inferencesPerSecond * 8, 6);
    expect(r.inputs).toEqual([{ name: 'x', dataType: DataType.FLOAT, dims: [8, 64], defaulted: [], source: 'generated' }]);
    expect(r.memory.peakBytes).toBeGreaterThan(0);
    expect(r.memory.peakDeltaBytes).toBeGreaterThan(0);
    expect(r.memory.peakBytes).toBeGreaterThanOrEqual(r.memory.baselineBytes);
    if (process.platform === 'linux') expect(r.memory).toMatchObject({ source: 'proc-status', peakReset: true });
  });

  it('reads a model from a path and feeds the first batch of a .npy data set', async () => {
    const modelPath = join(dir, 'tiny.onnx');
    await writeFile(modelPath, tinyModel());
    const data = join(dir, 'data');
    await mkdir(data, { recursive: true });
    await writeNpy(join(data, 'x.npy'), { dtype: 'float32', shape: [10, 64], data: new Float32Array(640).fill(0.25) });
    const outcome = await runIsolatedBenchmark({ request: request({ model: modelPath, dataDir: data, batch: 4, iterations: 5 }), timeoutMs: 60_000 });
    if (!outcome.ok) throw new Error(JSON.stringify(outcome.failure));
    expect(outcome.result.inputs).toEqual([{ name: 'x', dataType: DataType.FLOAT, dims: [4, 64], source: 'data', defaulted: [] }]);
  });

  it('reports a model onnxruntime cannot load with its own error code, and the parent carries on', async () => {
    const outcome = await runIsolatedBenchmark({ request: request({ model: new Uint8Array([8, 1, 0x12, 0xff, 0xff]) }), timeoutMs: 60_000 });
    const f = failure(outcome);
    expect(f.kind).toBe('error');
    expect(f.error.code).toBe('E_RUNTIME_SESSION_CREATE');
    expect(f.phase).toBe('session');
  });

  it('kills a hanging child after the timeout and says where it was stuck (fault-injection child)', async () => {
    const started = Date.now();
    const f = failure(await runIsolatedBenchmark({ request: request(), timeoutMs: 4000, childEntry: FAULT_CHILD, childArgs: ['hang'] }));
    expect(f).toMatchObject({ kind: 'timeout', signal: 'SIGKILL' });
    expect(f.error.code).toBe('E_BENCH_TIMEOUT');
    // The timeout covers start-up too: on a loaded machine the child may still be loading.
    expect(['load', 'session']).toContain(f.phase);
    expect(f.error.message).toContain(`stuck during ${f.phase}`);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(4000);
    expect(elapsed).toBeLessThan(20_000);
  });

  it('reports an aborting child as crashed with SIGABRT (fault-injection child)', async () => {
    const f = failure(await runIsolatedBenchmark({ request: request(), timeoutMs: 30_000, childEntry: FAULT_CHILD, childArgs: ['abort'] }));
    expect(f).toMatchObject({ kind: 'crashed', signal: 'SIGABRT', phase: 'session', exitCode: null });
    expect(f.error.code).toBe('E_BENCH_CRASHED');
    expect(f.error.message).toContain('SIGABRT');
  });

  it('reports a segfaulting child as crashed with SIGSEGV (fault-injection child)', async () => {
    const f = failure(await runIsolatedBenchmark({ request: request(), timeoutMs: 30_000, childEntry: FAULT_CHILD, childArgs: ['segv'] }));
    expect(f).toMatchObject({ kind: 'crashed', signal: 'SIGSEGV' });
  });

  it('reports a child that exits without a result with its exit code and last stderr line (fault-injection child)', async () => {
    const f = failure(await runIsolatedBenchmark({ request: request(), timeoutMs: 30_000, childEntry: FAULT_CHILD, childArgs: ['exit'] }));
    expect(f).toMatchObject({ kind: 'crashed', exitCode: 3, signal: null });
    expect(f.stderrTail).toContain('giving up on purpose');
    expect(f.error.message).toContain('exited with code 3');
    expect(f.error.message).toContain('giving up on purpose');
  });

  it('kills the child when the caller aborts', async () => {
    const controller = new AbortController();
    const pending = runIsolatedBenchmark({ request: request(), timeoutMs: 60_000, childEntry: FAULT_CHILD, childArgs: ['hang'], signal: controller.signal });
    setTimeout(() => controller.abort(), 1500);
    expect(failure(await pending)).toMatchObject({ kind: 'aborted', signal: 'SIGKILL' });
  });
});
