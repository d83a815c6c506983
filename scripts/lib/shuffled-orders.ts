/**
 * Run orders for benchmarks that time several models in turns. A fixed rotation makes each
 * model always run right after the same one, and in bench-compress the session after fp32
 * (whose weights had just evicted the caches) measured 4–6% slower than the same graph two
 * places later; a new seeded shuffle per round spreads that, and the other jobs' load on this
 * shared VM, over every model alike while keeping runs reproducible.
 */
import { uniform01 } from '../../src/data/prng.ts';

/** Each call returns a new order of 0..count-1 (Fisher–Yates; the same sequence for the same seed). */
export function shuffledOrders(count: number, seed = 20260428): () => readonly number[] {
  const random = uniform01(seed);
  const order = Array.from({ length: count }, (_, j) => j);
  return () => {
    for (let j = order.length - 1; j > 0; j--) {
      const r = Math.floor(random() * (j + 1));
      [order[j], order[r]] = [order[r]!, order[j]!];
    }
    return order;
  };
}
