/**
 * Checks that a rewritten model computes what the original did: both run in the real
 * onnxruntime on the same seeded random inputs, outputs compared element by element.
 * Also the IR-validation adapter that `runPass` takes as its postcondition.
 */
import { expect } from 'vitest';
import { DataType, encodeModel, validateModel, valueType, type ModelProto, type TensorValue } from '../../src/onnx/index.ts';
import { createSession } from '../../src/runtime/index.ts';
import type { ConditionFailure, RunPassOptions } from '../../src/compress/pass.ts';
import { uniform01 } from '../../src/data/prng.ts';

/** The IR validator as a pass postcondition: error-level findings only. */
export function irValidator(model: ModelProto): ConditionFailure[] {
  return validateModel(model)
    .filter((f) => f.severity === 'error')
    .map((f) => ({ message: `${f.code}: ${f.message}`, ...(f.node ?? f.value ? { target: f.node ?? f.value } : {}) }));
}

export const CHECKS: RunPassOptions = { validate: irValidator };

/** Seeded uniform values in [-1, 1): reproducible failures. */
export function seededFloats(n: number, seed: number): Float32Array {
  const next = uniform01(seed >>> 0 || 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * 2 - 1;
  return out;
}

/** Random float feeds for every graph input; symbolic or unknown dims take `dims[name]` or 1. */
export function randomFeeds(model: ModelProto, seed = 1, fixed: Readonly<Record<string, readonly number[]>> = {}): Record<string, TensorValue> {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const feeds: Record<string, TensorValue> = {};
  for (const input of graph.input ?? []) {
    const name = input.name ?? '';
    if (initializers.has(name)) continue;
    const type = valueType(graph, name);
    if (type?.elemType !== DataType.FLOAT) throw new Error(`randomFeeds: input '${name}' is not float`);
    const dims = fixed[name] ? [...fixed[name]] : (type.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    feeds[name] = { dataType: DataType.FLOAT, dims, data: seededFloats(dims.reduce((a, b) => a * b, 1), seed) };
  }
  return feeds;
}

/** Runs a model in onnxruntime (all outputs). */
export async function runModel(model: ModelProto, feeds: Record<string, TensorValue>): Promise<Record<string, TensorValue>> {
  const session = await createSession(encodeModel(model));
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Largest |a−b| / (atol + |b|) over all outputs; ≤ rtol means equivalent. */
export async function expectEquivalent(
  before: ModelProto,
  after: ModelProto,
  opts: { seed?: number; dims?: Readonly<Record<string, readonly number[]>>; rtol?: number; atol?: number } = {},
): Promise<void> {
  const feeds = randomFeeds(before, opts.seed ?? 1, opts.dims ?? {});
  const expected = await runModel(before, feeds);
  const actual = await runModel(after, feeds);
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  const rtol = opts.rtol ?? 1e-4;
  const atol = opts.atol ?? 1e-5;
  for (const name of Object.keys(expected)) {
    const e = expected[name]!;
    const a = actual[name]!;
    expect(a.dims, `shape of ${name}`).toEqual(e.dims);
    expect(a.dataType, `type of ${name}`).toBe(e.dataType);
    const ed = e.data as Float32Array;
    const ad = a.data as Float32Array;
    let worst = 0;
    let worstAt = -1;
    for (let i = 0; i < ed.length; i++) {
      const err = Math.abs(ad[i]! - ed[i]!) - atol - rtol * Math.abs(ed[i]!);
      if (err > worst || Number.isNaN(err)) {
        worst = err;
        worstAt = i;
      }
    }
    expect(worstAt, `output ${name} differs at ${worstAt}: ${ad[worstAt]} vs ${ed[worstAt]}`).toBe(-1);
  }
}
