import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  adjustWeightScalesForBias,
  computeScaleZeroPoint,
  quantizeBias,
  quantizeWeight,
  quantRange,
  roundHalfEven,
} from '../../../../src/compress/quantize/quant-math.ts';
import { requireTool } from '../../../helpers/require-tool.ts';
import { seeded } from './graphs.ts';

describe('roundHalfEven', () => {
  it('rounds exact ties to the even neighbour like numpy.round, where Math.round goes up', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 4]);
    expect(Math.round(2.5)).toBe(3);
  });
  it('rounds non-ties to the nearest integer', () => {
    expect([0.49, 0.51, -0.51, 126.7, -127.2].map(roundHalfEven)).toEqual([0, 1, -1, 127, -127]);
  });
});

describe('quantRange', () => {
  it('matches onnxruntime get_qmin_qmax_for_qType: reduce_range wins over symmetric over full', () => {
    expect(quantRange('int8', { symmetric: false, reduceRange: false })).toEqual({ qmin: -128, qmax: 127 });
    expect(quantRange('int8', { symmetric: true, reduceRange: false })).toEqual({ qmin: -127, qmax: 127 });
    expect(quantRange('int8', { symmetric: true, reduceRange: true })).toEqual({ qmin: -64, qmax: 64 });
    expect(quantRange('uint8', { symmetric: false, reduceRange: false })).toEqual({ qmin: 0, qmax: 255 });
    expect(quantRange('uint8', { symmetric: true, reduceRange: false })).toEqual({ qmin: 0, qmax: 254 });
    expect(quantRange('uint8', { symmetric: false, reduceRange: true })).toEqual({ qmin: 0, qmax: 127 });
  });
});

describe('computeScaleZeroPoint', () => {
  it('asymmetric uint8 over [-1, 3]: scale 4/255, zero point round(0 + 1/scale) = round(63.75) = 64', () => {
    const p = computeScaleZeroPoint(-1, 3, { qmin: 0, qmax: 255 }, false);
    expect(p.scale).toBe(Math.fround(4 / 255));
    expect(p.zeroPoint).toBe(64);
  });
  it('extends the range to include zero: [2, 5] quantizes as [0, 5] with zero point 0', () => {
    const p = computeScaleZeroPoint(2, 5, { qmin: 0, qmax: 255 }, false);
    expect(p.scale).toBe(Math.fround(5 / 255));
    expect(p.zeroPoint).toBe(0);
  });
  it('symmetric int8 uses max |r| over 127 with zero point 0', () => {
    const p = computeScaleZeroPoint(-0.5, 2.54, { qmin: -127, qmax: 127 }, true);
    expect(p.scale).toBe(Math.fround(5.08 / 254));
    expect(p.zeroPoint).toBe(0);
  });
  it('symmetric uint8 [0, 254] gets zero point 127', () => {
    expect(computeScaleZeroPoint(-1, 1, { qmin: 0, qmax: 254 }, true).zeroPoint).toBe(127);
  });
  it('an all-zero range gets scale 1 and zero point 0', () => {
    expect(computeScaleZeroPoint(0, 0, { qmin: -127, qmax: 127 }, true)).toEqual({ scale: 1, zeroPoint: 0 });
  });
  it('rounds the zero point half to even: [-0.5, 0.5] over [0, 255] ties at 127.5 → 128', () => {
    expect(computeScaleZeroPoint(-0.5, 0.5, { qmin: 0, qmax: 255 }, false).zeroPoint).toBe(128);
    // -2.5/ (4/4) → qmin - rmin/scale = 0 + 2.5 → 2 (even), not 3.
    expect(computeScaleZeroPoint(-2.5, 1.5, { qmin: 0, qmax: 4 }, false).zeroPoint).toBe(2);
  });
});

describe('quantizeWeight', () => {
  it('per tensor: symmetric int8, values clipped to the full range', () => {
    const q = quantizeWeight(Float32Array.of(-1, 0, 0.5, 1, 0.25), [5], { type: 'int8', symmetric: true, reduceRange: false });
    expect(q.scales[0]).toBe(Math.fround(2 / 254));
    expect(Array.from(q.data)).toEqual([-127, 0, 64, 127, 32]);
    expect(q.zeroPoints[0]).toBe(0);
  });
  it('per channel along axis 1 of a [2, 3] weight uses each column\'s own max |w|', () => {
    const w = Float32Array.of(1, -2, 0.5, -0.5, 1, 0.25);
    const q = quantizeWeight(w, [2, 3], { type: 'int8', symmetric: true, reduceRange: false, axis: 1 });
    expect(Array.from(q.scales)).toEqual([Math.fround(2 / 254), Math.fround(4 / 254), Math.fround(1 / 254)]);
    expect(Array.from(q.data)).toEqual([127, -127, 127, -64, 64, 64]);
  });
  it('per channel along axis 0 of a conv weight [2, 1, 2, 1]', () => {
    const q = quantizeWeight(Float32Array.of(0.1, -0.2, 3, 1.5), [2, 1, 2, 1], { type: 'int8', symmetric: true, reduceRange: true, axis: 0 });
    expect(Array.from(q.scales)).toEqual([Math.fround(0.4 / 128), Math.fround(6 / 128)]);
    expect(Array.from(q.data)).toEqual([32, -64, 64, 32]);
  });
});

describe('quantizeBias', () => {
  it('uses scale = input scale × weight scale per channel and rounds half to even', () => {
    const qb = quantizeBias(Float32Array.of(0.5, -0.25), 0.5, Float32Array.of(0.5, 0.1));
    expect(Array.from(qb.scales)).toEqual([0.25, Math.fround(0.05)]);
    expect(Array.from(qb.data)).toEqual([2, -5]);
    expect(qb.saturated).toBe(0);
  });
  it('counts values that saturate int32', () => {
    expect(quantizeBias(Float32Array.of(1e6), 1e-6, Float32Array.of(1e-6)).saturated).toBe(1);
  });
});

describe('adjustWeightScalesForBias', () => {
  it('grows the scale of a channel whose bias would not fit in int32, and leaves the others', () => {
    const scales = Float32Array.of(1e-12, 0.01);
    const changed = adjustWeightScalesForBias(0.01, scales, Float32Array.of(5, 5));
    expect(changed).toEqual([0]);
    expect(5 / (0.01 * scales[0]!)).toBeLessThan(2147483647);
    expect(scales[1]).toBe(Math.fround(0.01));
  });
});

describe.runIf(requireTool({ name: 'python3-numpy', debianPackage: 'python3-numpy', check: () => (execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }), true) }))(
  'against NumPy (onnxruntime quant_utils formulas)',
  () => {
    it('per-channel symmetric int8 and asymmetric uint8 quantization agree bit for bit', () => {
      const rand = seeded(42);
      const w = new Float32Array(6 * 40);
      // Some exact ties on purpose: multiples of half a step.
      for (let i = 0; i < w.length; i++) w[i] = i % 7 === 0 ? (Math.round(rand() * 20) + 0.5) / 64 : rand() * 3;
      const sym = quantizeWeight(w, [6, 40], { type: 'int8', symmetric: true, reduceRange: false, axis: 0 });
      const asym = quantizeWeight(w, [6, 40], { type: 'uint8', symmetric: false, reduceRange: false });
      const script = `
import sys, json, numpy as np
w = np.array(json.loads(sys.stdin.read()), dtype=np.float32).reshape(6, 40)
out = {"sym": [], "symScale": [], "asym": None}
for c in range(6):
    r = w[c]
    rmin, rmax = min(r.min(), 0.0), max(r.max(), 0.0)
    a = max(abs(rmin), abs(rmax))
    scale = np.float32((np.float64(a) - np.float64(-a)) / 254.0)
    q = np.clip((r.astype(np.float32) / scale).round() + 0, -128, 127).astype(np.int8)
    out["sym"] += q.tolist(); out["symScale"].append(float(scale))
rmin, rmax = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
scale = np.float32((np.float64(rmax) - np.float64(rmin)) / 255.0)
zp = int(np.round(0 - np.float64(rmin) / np.float64(scale)))
q = np.clip((w.astype(np.float32) / scale).round() + zp, 0, 255).astype(np.uint8)
out["asym"] = {"q": q.flatten().tolist(), "scale": float(scale), "zp": zp}
print(json.dumps(out))
`;
      const result = JSON.parse(execFileSync('python3', ['-c', script], { input: JSON.stringify(Array.from(w)) }).toString()) as {
        sym: number[];
        symScale: number[];
        asym: { q: number[]; scale: number; zp: number };
      };
      expect(Array.from(sym.data)).toEqual(result.sym);
      expect(Array.from(sym.scales)).toEqual(result.symScale);
      expect(Array.from(asym.data)).toEqual(result.asym.q);
      expect(asym.scales[0]).toBe(result.asym.scale);
      expect(asym.zeroPoints[0]).toBe(result.asym.zp);
    });
  },
);
