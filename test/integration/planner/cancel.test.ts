/**
 * Cancelling a planner search (AbortSignal in OptimizeDeps) on mnist-mlp with real
 * onnxruntime sessions and the real isolated benchmark child: the search rejects with
 * E_PLAN_CANCELLED at the next step boundary, inside an evaluation between batches,
 * inside calibration between batches, and a running benchmark child is killed.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { openDataset } from '../../../src/data/index.ts';
import { readModelFile } from '../../../src/onnx/index.ts';
import { calibrationFrom, evaluateSessions, isolatedBench, optimize, type OptimizeDeps, type OptimizeOptions } from '../../../src/planner/index.ts';
import { createSession } from '../../../src/runtime/index.ts';

const MLP = path.resolve('test/fixtures/models/mnist-mlp.onnx');
const MNIST = path.resolve('test/fixtures/data/mnist-test');

const OPTIONS: OptimizeOptions = {
  budgets: { maxAccuracyDrop: 1 },
  objective: 'latency',
  timeLimitS: 300,
  threads: 1,
  subsetSamples: 100,
  sensitivitySamples: 50,
  calibrationSamples: 64,
  evalSamples: 300,
  quickMs: 120,
  maxFullCandidates: 20,
  only: ['int8-dynamic'],
  mixed: false,
  maxSensitivityLayers: 16,
};

describe('planner cancellation (real sessions, real benchmark child)', () => {
  it('an abort between steps rejects with E_PLAN_CANCELLED before the next step: no benchmark runs after it', async () => {
    const { model } = await readModelFile(MLP);
    const dataset = await openDataset(MNIST);
    const controller = new AbortController();
    let benches = 0;
    const deps: OptimizeDeps = {
      bench: (...args) => {
        benches++;
        return isolatedBench(1, 150)(...args);
      },
      now: () => performance.now(),
      // The line after the fp32 baseline evaluation; the fp32 benchmark would come next.
      progress: (line) => {
        if (line.startsWith('accuracy metric:')) controller.abort(new Error('test stop'));
      },
      measured: null,
      signal: controller.signal,
    };
    try {
      await expect(optimize(model, dataset, OPTIONS, deps)).rejects.toMatchObject({ code: 'E_PLAN_CANCELLED', message: expect.stringContaining('test stop') as unknown });
      expect(benches).toBe(0);
    } finally {
      await dataset.close();
    }
  }, 60_000);

  it('an abort during a benchmark kills its child: the benchmark ends as cancelled, not with numbers, and the search rejects', async () => {
    const { model } = await readModelFile(MLP);
    const dataset = await openDataset(MNIST);
    const controller = new AbortController();
    const benchOutcomes: string[] = [];
    const deps: OptimizeDeps = {
      // 60 s of timed runs per benchmark: only a killed child ends it within the test's timeout.
      bench: async (bytes, shapes, expectedMs, signal) => {
        setTimeout(() => controller.abort(new Error('stop during the benchmark')), 200);
        try {
          const numbers = await isolatedBench(1, 60_000)(bytes, shapes, Math.max(expectedMs, 0.2), signal);
          benchOutcomes.push('numbers');
          return numbers;
        } catch (err) {
          benchOutcomes.push((err as Error).message);
          throw err;
        }
      },
      now: () => performance.now(),
      progress: () => undefined,
      measured: null,
      signal: controller.signal,
    };
    try {
      await expect(optimize(model, dataset, OPTIONS, deps)).rejects.toMatchObject({ code: 'E_PLAN_CANCELLED' });
      expect(benchOutcomes).toHaveLength(1);
      expect(benchOutcomes[0]).toMatch(/cancelled.*child was killed/);
    } finally {
      await dataset.close();
    }
  }, 30_000);

  it('an evaluation stops between batches: an abort after the first batch rejects before the second is scored', async () => {
    const dataset = await openDataset(MNIST);
    const session = await createSession(MLP, { threads: 1 });
    const controller = new AbortController();
    const done: number[] = [];
    try {
      const evaluation = evaluateSessions(session, undefined, dataset, {
        batchSize: 32,
        signal: controller.signal,
        onProgress: (n) => {
          done.push(n);
          controller.abort(new Error('test stop'));
        },
      });
      await expect(evaluation).rejects.toMatchObject({ code: 'E_PLAN_CANCELLED' });
      expect(done).toEqual([32]);
    } finally {
      await session.release();
      await dataset.close();
    }
  });

  it('calibration feeds stop between batches once the signal is aborted', async () => {
    const dataset = await openDataset(MNIST);
    const session = await createSession(MLP, { threads: 1 });
    const controller = new AbortController();
    try {
      const calibration = calibrationFrom(dataset, session.inputs, 64, controller.signal);
      let batches = 0;
      const read = async (): Promise<void> => {
        for await (const feed of calibration.feeds()) {
          expect(Object.keys(feed)).toEqual(session.inputs.map((i) => i.name));
          batches++;
          controller.abort(new Error('test stop'));
        }
      };
      await expect(read()).rejects.toMatchObject({ code: 'E_PLAN_CANCELLED' });
      expect(batches).toBe(1);
    } finally {
      await session.release();
      await dataset.close();
    }
  });
});
