import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { openDataset } from '../../../src/data/index.ts';
import { CandidateProbe, ReferenceProbe } from '../../../src/planner/probe.ts';
import { createSession } from '../../../src/runtime/index.ts';

const MLP = path.resolve('test/fixtures/models/mnist-mlp.onnx');
const CNN = path.resolve('test/fixtures/models/mnist-cnn.onnx');
const MNIST = path.resolve('test/fixtures/data/mnist-test');

describe('quick latency ratio (real sessions)', () => {
  // The spies only record which session each run went to; the runs themselves are onnxruntime's.
  it('alternates which session opens each round: fp32 first in rounds 0, 2, 4, the candidate in 1, 3, 5', async () => {
    const dataset = await openDataset(MNIST);
    const options = { threads: 1, quickMs: 60 };
    const reference = await ReferenceProbe.open(await readFile(MLP), dataset, options);
    const session = await createSession(await readFile(CNN), { threads: 1 });
    const candidate = new CandidateProbe(session, reference, dataset, options);
    try {
      const referenceRuns = vi.spyOn(reference.session, 'run');
      const candidateRuns = vi.spyOn(session, 'run');
      const ratio = await candidate.quickLatencyRatio();
      expect(ratio).toBeGreaterThan(0);
      expect(Number.isFinite(ratio)).toBe(true);

      const calls = [...referenceRuns.mock.invocationCallOrder.map((order) => ({ order, who: 'fp32' })), ...candidateRuns.mock.invocationCallOrder.map((order) => ({ order, who: 'candidate' }))].sort((a, b) => a.order - b.order);
      // Consecutive runs of one session merged: a slice, or two slices that meet at a round boundary.
      const stretches = calls.map((c) => c.who).filter((who, i, all) => i === 0 || all[i - 1] !== who);
      // fp32 | candidate | candidate fp32 | fp32 candidate | ... : 7 stretches for 6 rounds (fp32 always first would give 12).
      expect(stretches).toEqual(['fp32', 'candidate', 'fp32', 'candidate', 'fp32', 'candidate', 'fp32']);
    } finally {
      await candidate.release();
      await reference.release();
    }
  });
});
