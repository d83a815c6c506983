/**
 * The search on real models with real onnxruntime sessions and the real isolated
 * benchmark (child processes), on small subsets so that it takes seconds.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../../src/data/index.ts';
import { readModelFile } from '../../../src/onnx/index.ts';
import { bySensitivity, isolatedBench, optimize, type OptimizeDeps, type OptimizeOptions } from '../../../src/planner/index.ts';
import { createSession } from '../../../src/runtime/index.ts';

const MODELS = path.resolve('test/fixtures/models');
const MNIST = path.resolve('test/fixtures/data/mnist-test');

const base: OptimizeOptions = {
  budgets: {},
  objective: 'latency',
  timeLimitS: 300,
  threads: 1,
  subsetSamples: 100,
  sensitivitySamples: 50,
  calibrationSamples: 64,
  evalSamples: 300,
  quickMs: 120,
  maxFullCandidates: 20,
  pruneRatios: [0.3],
  pruneThenQuantizeRatios: [],
  mixed: false,
  maxSensitivityLayers: 16,
};

function deps(lines: string[]): OptimizeDeps {
  return { bench: isolatedBench(1, 150), now: () => performance.now(), progress: (l) => lines.push(l), measured: null };
}

describe('optimize (real sessions, real isolated benchmark)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'edgevolve-optimize-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('mnist-cnn, latency objective and a 1-point accuracy budget: the choice is feasible and the fastest measured feasible candidate; every candidate says why', async () => {
    const { model } = await readModelFile(path.join(MODELS, 'mnist-cnn.onnx'));
    const dataset = await openDataset(MNIST);
    const lines: string[] = [];
    try {
      const only = ['int8-dynamic', 'int8-static:minmax:pc', 'prune0.3'];
      const r = await optimize(model, dataset, { ...base, budgets: { maxAccuracyDrop: 1 }, only }, deps(lines));
      expect(r.candidates.map((c) => c.id)).toEqual(['fp32', ...only]);
      expect(r.metric.kind).toBe('top1-labels');
      expect(r.chosen).not.toBeNull();
      const chosen = r.candidates.find((c) => c.id === r.chosen!.id)!;
      expect(chosen.status).toBe('chosen');
      expect(chosen.accuracy!.drop).toBeLessThanOrEqual(1);
      const feasible = r.candidates.filter((c) => c.status === 'feasible');
      for (const f of feasible) expect(chosen.bench!.p95Ms).toBeLessThanOrEqual(f.bench!.p95Ms);
      for (const c of r.candidates) {
        expect(c.reason.length).toBeGreaterThan(0);
        if (c.status === 'feasible' || c.status === 'chosen') expect(c.bench).not.toBeNull();
      }
      // The fp32 baseline is always fully measured; sizes are exact for every built candidate.
      const fp32 = r.candidates.find((c) => c.id === 'fp32')!;
      expect(fp32.bench!.p95Ms).toBeGreaterThan(0);
      expect(fp32.accuracy!.samples).toBe(300);
      expect(r.candidates.find((c) => c.id === 'int8-dynamic')!.sizeBytes).toBeLessThan(fp32.sizeBytes!);
      expect(r.pareto).toContain(r.chosen!.id === 'fp32' ? 'fp32' : r.pareto[0]);
      expect(lines.some((l) => l.includes('accuracy metric: top-1 accuracy against labels.npy'))).toBe(true);
      // The chosen bytes are a model onnxruntime runs.
      const session = await createSession(r.chosenBytes!);
      expect(session.outputs.length).toBe(1);
      await session.release();
    } finally {
      await dataset.close();
    }
  }, 180_000);

  it('without labels.npy, a classifier is scored by top-1 agreement with fp32; a zero-drop budget sends int8 to mixed precision with layers ranked by sensitivity', async () => {
    const data = path.join(root, 'unlabelled');
    mkdirSync(data);
    copyFileSync(path.join(MNIST, 'input.npy'), path.join(data, 'input.npy'));
    const { model } = await readModelFile(path.join(MODELS, 'mnist-teacher.onnx'));
    const dataset = await openDataset(data);
    try {
      const r = await optimize(
        model,
        dataset,
        // int8-static entropy flips 1 of these 300 samples here (and int8-dynamic none, which would win before mixed is needed).
        { ...base, budgets: { maxAccuracyDrop: 0 }, mixed: true, only: ['int8-static:entropy:pc'], subsetSamples: 300, evalSamples: 300, calibrationSamples: 64 },
        deps([]),
      );
      expect(r.metric.kind).toBe('top1-agreement');
      expect(r.baseline.score).toBe(100);
      // fp32 agrees with itself, so something is always feasible.
      expect(r.chosen).not.toBeNull();
      const int8 = r.candidates.find((c) => c.id === 'int8-static:entropy:pc')!;
      expect(int8.status).toBe('rejected');
      expect(int8.misses.map((m) => m.budget)).toEqual(['accuracy-drop']);
      // Three Gemm layers, ranked by the drop left with each reverted alone, then the drop each alone causes in int8, then its output error.
      expect(r.sensitivity).not.toBeNull();
      const layers = r.sensitivity!.layers;
      expect(layers.map((l) => l.opType)).toEqual(['Gemm', 'Gemm', 'Gemm']);
      expect([...layers].sort(bySensitivity)).toEqual(layers);
      for (const l of layers) expect(l.error).toBeGreaterThan(0);
      // Mixed plans keep the most sensitive layers in fp32, the rest int8.
      const mixed = r.candidates.filter((c) => c.id.startsWith('mixed:int8-static:entropy:keep'));
      expect(mixed.length).toBeGreaterThan(0);
      for (const m of mixed) {
        const step = m.steps.at(-1)!;
        expect(step.kind).toBe('mixed');
        if (step.kind !== 'mixed') continue;
        const k = Number(m.id.split('keep')[1]);
        expect(step.fp32Kept).toEqual(r.sensitivity!.layers.slice(0, k).map((l) => l.node));
        expect(step.int8Nodes.some((n) => step.fp32Kept.includes(n))).toBe(false);
      }
    } finally {
      await dataset.close();
    }
  }, 180_000);

  it('a time limit already spent leaves every candidate after the baseline unmeasured, with the reason', async () => {
    const { model } = await readModelFile(path.join(MODELS, 'mnist-cnn.onnx'));
    const dataset = await openDataset(MNIST);
    try {
      const r = await optimize(model, dataset, { ...base, timeLimitS: 0.001 }, deps([]));
      expect(r.stoppedBy).toBe('time-limit');
      const others = r.candidates.filter((c) => c.id !== 'fp32');
      expect(others.length).toBeGreaterThan(0);
      for (const c of others) {
        expect(c.status).toBe('predicted-only');
        expect(c.reason).toMatch(/time limit/);
        expect(c.bench).toBeNull();
      }
      // fp32 (meets the empty budgets) is the answer rather than nothing.
      expect(r.chosen?.id).toBe('fp32');
    } finally {
      await dataset.close();
    }
  }, 120_000);

  it('mnist-mlp at batch 32, agreement budget 0.05 pt: all-int8 dynamic misses it, reverting fc2 alone fixes it (the interaction one layer at a time cannot see), and the plan keeping only fc2 in fp32 is measured at batch 32', async () => {
    const data = path.join(root, 'unlabelled-mlp');
    mkdirSync(data);
    copyFileSync(path.join(MNIST, 'input.npy'), path.join(data, 'input.npy'));
    const { model } = await readModelFile(path.join(MODELS, 'mnist-mlp.onnx'));
    const dataset = await openDataset(data);
    const benchedShapes: number[][] = [];
    const benchedP95: number[] = [];
    const real = deps([]);
    // The real isolated benchmark; the wrapper only records what it was asked to run and what it measured.
    const recording: OptimizeDeps = {
      ...real,
      bench: async (bytes, shapes, expectedMs) => {
        benchedShapes.push([...(shapes.input ?? [])]);
        const numbers = await real.bench(bytes, shapes, expectedMs);
        benchedP95.push(numbers.p95Ms);
        return numbers;
      },
    };
    try {
      // All 2000 images: int8-dynamic per-tensor flips 2 of them (0.10 pt), with fc2 kept in fp32 none (measured).
      const r = await optimize(
        model,
        dataset,
        { ...base, budgets: { maxAccuracyDrop: 0.05 }, mixed: true, only: ['int8-dynamic'], subsetSamples: 2000, sensitivitySamples: 2000, evalSamples: undefined, batch: 32 },
        recording,
      );
      expect(r.batch).toBe(32);
      const int8 = r.candidates.find((c) => c.id === 'int8-dynamic')!;
      expect(int8.misses.map((m) => m.budget)).toEqual(['accuracy-drop']);
      expect(int8.accuracy?.drop ?? int8.subset?.drop).toBeCloseTo(0.1, 9);
      const layers = r.sensitivity!.layers;
      expect(layers[0]!.node).toBe('fc2');
      expect(layers[0]!.revertedDrop).toBe(0);
      // One at a time, fc2 alone in int8 flips no more than another layer alone: that ranking alone could not single it out.
      expect(layers[0]!.drop).toBeLessThanOrEqual(Math.max(...layers.slice(1).map((l) => l.drop)));
      const keep1 = r.candidates.find((c) => c.id === 'mixed:int8-dynamic:keep1')!;
      expect(['feasible', 'chosen']).toContain(keep1.status);
      expect(keep1.accuracy!.drop).toBe(0);
      const step = keep1.steps.at(-1)!;
      expect(step.kind === 'mixed' && step.fp32Kept).toEqual(['fc2']);
      expect(step.kind === 'mixed' && [...step.int8Nodes].sort()).toEqual(['fc1', 'fc3']);
      expect(keep1.bench).not.toBeNull();
      // fp32 is benchmarked twice first (its p95 is the bar and the scale of every quick estimate) and the lower p95 kept.
      expect(r.candidates.find((c) => c.id === 'fp32')!.bench!.p95Ms).toBe(Math.min(benchedP95[0]!, benchedP95[1]!));
      expect(r.baseline.p95Ms).toBe(Math.min(benchedP95[0]!, benchedP95[1]!));
      expect(benchedShapes.length).toBeGreaterThanOrEqual(3);
      for (const shape of benchedShapes) expect(shape).toEqual([32, 1, 28, 28]);
    } finally {
      await dataset.close();
    }
  }, 180_000);

  it('a latency batch larger than the data set is a usage error naming both', async () => {
    const { model } = await readModelFile(path.join(MODELS, 'mnist-mlp.onnx'));
    const dataset = await openDataset(MNIST);
    try {
      const error = await optimize(model, dataset.take(8), { ...base, batch: 16 }, deps([])).then(
        () => null,
        (err: unknown) => err as { code?: string; message?: string },
      );
      expect(error?.code).toBe('E_USAGE');
      expect(error?.message).toMatch(/--batch 16: the data set has only 8 samples/);
    } finally {
      await dataset.close();
    }
  }, 60_000);

  it('a candidate over the p95 budget by less than 25% is benchmarked again and keeps the lower p95; one over by more is not (fp32 always runs twice)', async () => {
    const { model } = await readModelFile(path.join(MODELS, 'mnist-mlp.onnx'));
    const dataset = await openDataset(MNIST);
    // Scripted benchmark numbers (fault injection: a preempted run cannot be produced on demand); sessions and accuracy are real.
    // fp32 gets 1.0 then 1.2 ms (1.0 kept); the budget is 0.9 ms, so int8's quick estimate (about 0.7x at batch 32) passes.
    const scripted = (p95s: number[]): { deps: OptimizeDeps; calls: () => number } => {
      let i = 0;
      const bench: OptimizeDeps['bench'] = () => {
        const p95Ms = p95s[i++];
        if (p95Ms === undefined) throw new Error('more benchmark runs than scripted');
        return Promise.resolve({ p50Ms: p95Ms / 2, p95Ms, p99Ms: p95Ms, peakBytes: 1 });
      };
      return { deps: { ...deps([]), bench }, calls: () => i };
    };
    const options: OptimizeOptions = { ...base, budgets: { latencyP95Ms: 0.9, maxAccuracyDrop: 5 }, only: ['int8-dynamic'], batch: 32 };
    try {
      const near = scripted([1.0, 1.2, 1.05, 0.85]);
      const r1 = await optimize(model, dataset, options, near.deps);
      expect(near.calls()).toBe(4);
      expect(r1.baseline.p95Ms).toBe(1.0);
      const int8 = r1.candidates.find((c) => c.id === 'int8-dynamic')!;
      expect(int8.bench!.p95Ms).toBe(0.85);
      expect(r1.chosen?.id).toBe('int8-dynamic');

      const far = scripted([1.0, 1.2, 1.2]);
      const r2 = await optimize(model, dataset, options, far.deps);
      expect(far.calls()).toBe(3);
      expect(r2.candidates.find((c) => c.id === 'int8-dynamic')!.misses.map((m) => m.budget)).toEqual(['latency-p95']);
      expect(r2.chosen).toBeNull();
    } finally {
      await dataset.close();
    }
  }, 60_000);
});
