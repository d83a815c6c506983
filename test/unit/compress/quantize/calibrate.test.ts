import { describe, expect, it } from 'vitest';
import { augmentForMinMax, calibrate, entropyRange, Histogram, percentileRange } from '../../../../src/compress/quantize/calibrate.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { convGraph, feedsOf, randomInput, runModel, seeded } from './graphs.ts';
import type { OpenCalibrationSession } from '../../../../src/compress/quantize/calibrate.ts';

const open: OpenCalibrationSession = async (bytes) => {
  const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
  return { run: (f, o) => s.run(f, o), release: () => s.release() };
};

function minMaxOf(data: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

describe('minmax calibration', () => {
  it('adds ReduceMin, ReduceMax and Size scalar outputs per tensor, not the tensors', () => {
    const { model, outputs } = augmentForMinMax(convGraph(), ['c1', 'c2']);
    expect(model.graph!.output!.length).toBe(1 + 6);
    expect(model.graph!.node!.slice(-6).map((n) => n.opType)).toEqual(['ReduceMin', 'ReduceMax', 'Size', 'ReduceMin', 'ReduceMax', 'Size']);
    expect([...outputs.keys()]).toEqual(['c1', 'c2']);
  });

  it('gives the min and max over all batches of each intermediate tensor, as exposing the tensors shows', async () => {
    const g = convGraph();
    const inputs = [randomInput([1, 3, 12, 12], 1), randomInput([1, 3, 12, 12], 2, 3)];
    const feeds = feedsOf(() => inputs.map((x) => ({ x })));
    const result = await calibrate(g, ['c1', 'r1', 'cat'], feeds, open, { method: 'minmax' });
    expect(result.batches).toBe(2);
    // Ground truth: the same tensors as extra outputs of the float model.
    const exposed = { ...g, graph: { ...g.graph!, output: [...g.graph!.output!, ...['c1', 'r1', 'cat'].map((name) => ({ name, type: { tensorType: { elemType: 1 } } }))] } };
    const want = new Map<string, [number, number]>();
    for (const x of inputs) {
      const out = await runModel(exposed, { x }, 'disabled');
      for (const t of ['c1', 'r1', 'cat']) {
        const [lo, hi] = minMaxOf(out[t]!.data as Float32Array);
        const prev = want.get(t) ?? [Infinity, -Infinity];
        want.set(t, [Math.min(prev[0], lo), Math.max(prev[1], hi)]);
      }
    }
    for (const t of ['c1', 'r1', 'cat']) expect(result.ranges.get(t)).toEqual(want.get(t));
    expect(result.ranges.get('r1')![0]).toBe(0);
  });

  it('refuses an empty calibration set', async () => {
    const feeds = feedsOf(() => []);
    await expect(calibrate(convGraph(), ['c1'], feeds, open, { method: 'minmax' })).rejects.toMatchObject({ code: 'E_DATA_SET_INVALID' });
  });

  it('streams histograms in chunks of tensors: percentile ranges lie within the min/max ones', async () => {
    const feeds = feedsOf(() => [0, 1, 2].map((i) => ({ x: randomInput([1, 3, 12, 12], 10 + i) })));
    const tensors = ['c1', 'r1', 'c2', 'c3', 'sum', 'cat'];
    const mm = await calibrate(convGraph(), tensors, feeds, open, { method: 'minmax' });
    const pct = await calibrate(convGraph(), tensors, feeds, open, { method: 'percentile', percentile: 99, tensorsPerRun: 4 });
    for (const t of tensors) {
      const [lo, hi] = pct.ranges.get(t)!;
      const [mlo, mhi] = mm.ranges.get(t)!;
      expect(lo).toBeGreaterThanOrEqual(mlo);
      expect(hi).toBeLessThanOrEqual(mhi);
      expect(hi - lo).toBeLessThan(mhi - mlo);
    }
  });
});

describe('histogram thresholds', () => {
  it('percentile: edge[searchsorted(cdf, p/100)] of |x|, symmetric, clamped to the observed range', () => {
    const h = new Histogram(0, 10, 10, 0, 10);
    // 90 values in [0, 1), 9 in [5, 6), 1 in [9, 10].
    const data = new Float32Array(100);
    for (let i = 0; i < 90; i++) data[i] = 0.5;
    for (let i = 90; i < 99; i++) data[i] = -5.5;
    data[99] = 10;
    h.add(data, true);
    expect(Array.from(h.counts)).toEqual([90, 0, 0, 0, 0, 9, 0, 0, 0, 1]);
    expect(percentileRange(h, 90)).toEqual([0, 0]);
    expect(percentileRange(h, 99)).toEqual([0, 5]);
    expect(percentileRange(h, 100)).toEqual([0, 9]);
    const signed = new Histogram(0, 10, 10, -5.5, 10);
    signed.add(data, true);
    expect(percentileRange(signed, 99)).toEqual([-5, 5]);
  });

  it('entropy: clips a long-tailed distribution well inside its extremes but keeps the bulk', () => {
    const rand = seeded(7);
    const data = new Float32Array(200000);
    for (let i = 0; i < data.length; i++) {
      // Roughly Gaussian bulk (sum of uniforms) plus rare outliers up to ±40.
      const g = (rand() + rand() + rand() + rand()) * 0.5;
      data[i] = i % 5000 === 0 ? 40 * rand() : g;
    }
    const [lo, hi] = minMaxOf(data);
    const bound = Math.max(-lo, hi);
    const h = new Histogram(-bound, bound, 2048, lo, hi);
    h.add(data, false);
    const [tlo, thi] = entropyRange(h, 128);
    expect(thi).toBeLessThan(hi / 2);
    expect(thi).toBeGreaterThan(1.5);
    expect(tlo).toBeLessThan(-1.5);
    expect(tlo).toBeGreaterThanOrEqual(lo);
  });
});
