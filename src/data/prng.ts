/**
 * Seeded shuffling that gives the same order on every machine and Node version:
 * mulberry32 (32-bit integer state, Math.imul) drives a Fisher–Yates shuffle.
 * Math.random is neither seedable nor specified, so it cannot be used for splits
 * that must be reproducible.
 */

/** A generator of uint32 values from a 32-bit seed (mulberry32, public domain, Tommy Ettinger). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform values in [0, 1) from mulberry32: u32 / 2^32, exact in float64. */
export function uniform01(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/**
 * Shuffles `values` in place with Fisher–Yates. The index is drawn as
 * floor(u32 · (i + 1) / 2^32), exact below 2^21 elements and otherwise correctly
 * rounded IEEE-754 arithmetic, which JavaScript specifies: the same everywhere.
 */
export function shuffleInPlace(values: Uint32Array, seed: number): Uint32Array {
  const next = mulberry32(seed);
  for (let i = values.length - 1; i > 0; i--) {
    // min(): rounding of a huge product could otherwise reach i + 1.
    const j = Math.min(i, Math.floor((next() * (i + 1)) / 4294967296));
    const t = values[i] as number;
    values[i] = values[j] as number;
    values[j] = t;
  }
  return values;
}
