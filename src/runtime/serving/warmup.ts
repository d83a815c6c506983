/**
 * Warm-up inputs for a freshly created session: one tensor per input, shaped from the
 * declared dims (free dims take 1, image-like spatial dims 224), filled with seeded data.
 * Running them before a swap makes onnxruntime allocate its arenas and pick kernels
 * while the old version still serves, so the first real request is not the slow one.
 */
import { EdgevolveError } from '../../errors/index.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import { DataType } from '../../onnx/types.ts';
import { generateInput, resolveInputShapes } from '../bench/inputs.ts';
import type { SessionValueInfo } from '../session.ts';

const WARMUP_SEED = 0x5eed;

export function warmupFeeds(inputs: readonly SessionValueInfo[]): Record<string, TensorValue> {
  const resolved = resolveInputShapes(inputs, { shapes: {}, batch: 1 });
  const feeds: Record<string, TensorValue> = {};
  for (const input of resolved) {
    if (input.dataType === DataType.STRING) {
      const count = input.dims.reduce((a, b) => a * b, 1);
      feeds[input.name] = { dataType: input.dataType, dims: [...input.dims], data: new Array<string>(count).fill('') };
      continue;
    }
    feeds[input.name] = generateInput(input, WARMUP_SEED);
  }
  if (Object.keys(feeds).length !== inputs.length) {
    throw new EdgevolveError('E_INTERNAL', 'warm-up inputs do not cover every model input');
  }
  return feeds;
}
