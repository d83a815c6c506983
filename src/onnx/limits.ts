import { DEFAULT_ONNX_LIMITS, type OnnxLimits } from './limits-schema.ts';
import { EdgevolveError } from '../errors/index.ts';
import { int64ToNumberClamped } from './int64.ts';
import type { Int64 } from './types.ts';

export { onnxLimitsSchema, DEFAULT_ONNX_LIMITS, type OnnxLimits } from './limits-schema.ts';

/** Fills the caps a caller left out with the defaults. */
export function resolveLimits(limits: Partial<OnnxLimits> | undefined): OnnxLimits {
  return limits === undefined ? DEFAULT_ONNX_LIMITS : { ...DEFAULT_ONNX_LIMITS, ...limits };
}

/** Why a shape is unacceptable, or undefined when it is fine. */
export interface ShapeProblem {
  code: 'E_ONNX_TENSOR' | 'E_ONNX_TOO_LARGE';
  message: string;
}

/**
 * The element count of `dims`, checked against the caps. Overflow-proof: the product
 * stops growing once it passes the cap (a zero dim anywhere still gives 0), so a
 * declared [2^62, 2^62] never becomes Infinity or wraps.
 */
export function checkedElementCount(
  dims: readonly Int64[] | readonly number[],
  limits: OnnxLimits,
): { elements: number; problem?: undefined } | { elements?: undefined; problem: ShapeProblem } {
  if (dims.length > limits.maxDims) {
    return { problem: { code: 'E_ONNX_TOO_LARGE', message: `rank ${dims.length} exceeds limits.maxDims (${limits.maxDims})` } };
  }
  let elements = 1;
  let overCap = false;
  for (const dim of dims) {
    const d = int64ToNumberClamped(dim);
    if (d < 0 || !Number.isFinite(d)) {
      return { problem: { code: 'E_ONNX_TENSOR', message: `negative dimension ${String(d)} in [${dims.map(String).join(', ')}]` } };
    }
    if (d === 0) return { elements: 0 };
    if (!overCap) {
      elements *= d;
      if (elements > limits.maxTensorElements) overCap = true;
    }
  }
  if (overCap) {
    return {
      problem: {
        code: 'E_ONNX_TOO_LARGE',
        message: `shape [${dims.map(String).join(', ')}] has more elements than limits.maxTensorElements (${limits.maxTensorElements})`,
      },
    };
  }
  return { elements };
}

/** Throws the shape problem as an EdgevolveError. */
export function elementCountOrThrow(dims: readonly Int64[], limits: OnnxLimits, context: Record<string, unknown>): number {
  const result = checkedElementCount(dims, limits);
  if (result.problem !== undefined) throw new EdgevolveError(result.problem.code, result.problem.message, { context });
  return result.elements;
}
