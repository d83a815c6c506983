/**
 * The short fuzz run of the suite: 2,000 seeded mutations of real models (bit flips,
 * truncations at field boundaries, corrupted and huge length fields, huge dims, If
 * nested up to 10,000 deep, duplicated fields, hostile structural edits) through
 * decode, validation and tensor reads. The long run is `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { MUTATION_KINDS, loadFuzzSeeds, runFuzz } from '../../helpers/onnx-fuzz.ts';

describe('fuzz', () => {
  it('answers 2,000 mutated models with success or a typed E_ONNX_* error, each within 1 s of CPU, with bounded heap', () => {
    const seeds = loadFuzzSeeds({ corpusSample: 40, seed: 1, includeLarge: true });
    const summary = runFuzz({ count: 2000, seed: 20261128, seeds, timeLimitMs: 1000 });
    expect(summary.failures.slice(0, 5)).toEqual([]);
    // Every mutation kind ran, and the mutations really broke models in several distinct ways.
    for (const kind of MUTATION_KINDS) expect(summary.byKind[kind] ?? 0, kind).toBeGreaterThan(50);
    for (const code of ['E_ONNX_TRUNCATED', 'E_ONNX_DECODE', 'E_ONNX_TOO_DEEP', 'decoded+findings', 'decoded+valid']) {
      expect(summary.byOutcome[code] ?? 0, code).toBeGreaterThan(0);
    }
    expect(summary.maxHeapGrowthBytes).toBeLessThan(256 * 1024 * 1024);
  });
});
