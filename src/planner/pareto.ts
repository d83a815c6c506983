/** The Pareto front over measured candidates: lower accuracy drop, lower p95, smaller file. */

export interface ParetoPoint {
  readonly id: string;
  readonly drop: number;
  readonly p95Ms: number;
  readonly sizeBytes: number;
}

/** a dominates b: no worse on every axis and better on one. */
export function dominates(a: ParetoPoint, b: ParetoPoint): boolean {
  const noWorse = a.drop <= b.drop && a.p95Ms <= b.p95Ms && a.sizeBytes <= b.sizeBytes;
  const better = a.drop < b.drop || a.p95Ms < b.p95Ms || a.sizeBytes < b.sizeBytes;
  return noWorse && better;
}

/** Ids of the points no other point dominates, in input order. O(n²): n is tens. */
export function paretoFront(points: readonly ParetoPoint[]): string[] {
  return points.filter((p) => !points.some((q) => q !== p && dominates(q, p))).map((p) => p.id);
}
