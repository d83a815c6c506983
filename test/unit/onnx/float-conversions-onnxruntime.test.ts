/**
 * Our float16/bfloat16/float8 conversions against the runtime that executes the models:
 * onnxruntime's Cast (float32 → T → float32) on every float16 value plus every float8
 * value and midpoint. They agree bit for bit except in two bands of non-saturating
 * float8 casts, where onnxruntime 1.30 departs from the ONNX Cast table and IEEE
 * overflow rules; those bands are pinned here so a change in either side shows up.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  DataType,
  bfloat16BitsToFloat32,
  encodeModel,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  float32ToFloat8Bits,
  float8BitsToFloat32,
  makeGraph,
  makeModel,
  makeNode,
  makeValueInfo,
  type Float8Type,
} from '../../../src/onnx/index.ts';

const FLOAT8: Float8Type[] = [DataType.FLOAT8E4M3FN, DataType.FLOAT8E4M3FNUZ, DataType.FLOAT8E5M2, DataType.FLOAT8E5M2FNUZ];

function stressInputs(): Float32Array {
  const values: number[] = [];
  for (let h = 0; h < 0x10000; h++) values.push(float16BitsToFloat32(h));
  for (const t of FLOAT8) {
    for (let c = 0; c < 255; c++) {
      const a = float8BitsToFloat32(c, t);
      const b = float8BitsToFloat32(c + 1, t);
      if (Number.isFinite(a) && Number.isFinite(b)) values.push(a, (a + b) / 2);
    }
  }
  return Float32Array.from(values);
}

async function castRoundTrip(x: Float32Array, to: number, saturate?: number): Promise<Float32Array> {
  const attrs: Record<string, number> = { to };
  if (saturate !== undefined) attrs.saturate = saturate;
  const model = makeModel({
    graph: makeGraph({
      name: 'cast',
      nodes: [makeNode('Cast', ['x'], ['h'], attrs), makeNode('Cast', ['h'], ['y'], { to: DataType.FLOAT })],
      inputs: [makeValueInfo('x', DataType.FLOAT, [null])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [null])],
    }),
    opsets: [{ domain: '', version: 21 }],
  });
  const session = await ort.InferenceSession.create(encodeModel(model));
  try {
    const result = await session.run({ x: new ort.Tensor('float32', x, [x.length]) });
    return result.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const same = (a: number, b: number): boolean => (Number.isNaN(a) && Number.isNaN(b)) || a === b;

function differences(x: Float32Array, ortValues: Float32Array, ours: (v: number) => number): { x: number; ort: number; ours: number }[] {
  const out: { x: number; ort: number; ours: number }[] = [];
  const f32 = new Float32Array(1);
  for (let i = 0; i < x.length; i++) {
    f32[0] = ours(x[i]!);
    if (!same(f32[0], ortValues[i]!)) out.push({ x: x[i]!, ort: ortValues[i]!, ours: f32[0] });
  }
  return out;
}

describe('conversions agree with onnxruntime Cast', () => {
  const x = stressInputs();

  it('float16 and bfloat16: bit for bit on every input', async () => {
    expect(differences(x, await castRoundTrip(x, DataType.FLOAT16), (v) => float16BitsToFloat32(float32ToFloat16Bits(v)))).toEqual([]);
    expect(differences(x, await castRoundTrip(x, DataType.BFLOAT16), (v) => bfloat16BitsToFloat32(float32ToBfloat16Bits(v)))).toEqual([]);
  });

  it('all four float8 types with saturate=1 (the default): bit for bit on every input', async () => {
    for (const t of FLOAT8) {
      expect(differences(x, await castRoundTrip(x, t, 1), (v) => float8BitsToFloat32(float32ToFloat8Bits(v, t, true), t)), `type ${t}`).toEqual([]);
    }
  });

  it('float8 with saturate=0: equal except the two bands where onnxruntime leaves the ONNX rules', async () => {
    for (const t of FLOAT8) {
      const diffs = differences(x, await castRoundTrip(x, t, 0), (v) => float8BitsToFloat32(float32ToFloat8Bits(v, t, false), t));
      if (t === DataType.FLOAT8E4M3FN) {
        // |x| in [480, 496): onnxruntime clamps to ±448 where its truncated code is the NaN pattern,
        // while 470 overflows to NaN on both sides. We overflow to NaN throughout, as the Cast table says.
        expect(diffs.every((d) => Math.abs(d.x) >= 480 && Math.abs(d.x) < 496 && Math.abs(d.ort) === 448 && Number.isNaN(d.ours))).toBe(true);
        expect(diffs.length).toBeGreaterThan(0);
      } else if (t === DataType.FLOAT8E5M2) {
        // |x| in [61440, 65536): onnxruntime gives NaN; the Cast table (and IEEE) say ±Inf, which we give.
        expect(diffs.every((d) => Math.abs(d.x) >= 61440 && Math.abs(d.x) < 65536 && Number.isNaN(d.ort) && Math.abs(d.ours) === Infinity)).toBe(true);
        expect(diffs.length).toBeGreaterThan(0);
      } else {
        expect(diffs, `type ${t}`).toEqual([]);
      }
    }
  });
});
