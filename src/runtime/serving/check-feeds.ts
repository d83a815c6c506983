/**
 * Checks request tensors against the loaded model's inputs before onnxruntime sees
 * them, so a caller's mistake is reported as such (naming the input and both sides)
 * instead of surfacing as a kernel failure of the model.
 */
import { EdgevolveError } from '../../errors/index.ts';
import { dataTypeName } from '../../onnx/dtype.ts';
import type { TensorValue } from '../../onnx/tensor.ts';
import type { SessionValueInfo } from '../session.ts';

export function checkFeeds(inputs: readonly SessionValueInfo[], feeds: Readonly<Record<string, TensorValue>>): void {
  for (const name of Object.keys(feeds)) {
    if (!inputs.some((i) => i.name === name)) {
      throw invalid(`the model has no input '${name}' (inputs: ${inputs.map((i) => i.name).join(', ')})`, { input: name });
    }
  }
  for (const input of inputs) {
    const feed = feeds[input.name];
    if (feed === undefined) throw invalid(`input '${input.name}' is missing`, { input: input.name });
    if (input.dataType !== undefined && feed.dataType !== input.dataType) {
      throw invalid(`input '${input.name}' is ${dataTypeName(input.dataType)}, the request sends ${dataTypeName(feed.dataType)}`, {
        input: input.name,
        expected: dataTypeName(input.dataType),
        actual: dataTypeName(feed.dataType),
      });
    }
    // An empty declared shape means onnxruntime does not know it; nothing to check.
    if (input.shape.length === 0) continue;
    if (feed.dims.length !== input.shape.length) {
      throw invalid(`input '${input.name}' has rank ${input.shape.length} [${input.shape.join(', ')}], the request sends shape [${feed.dims.join(', ')}]`, {
        input: input.name,
        expected: input.shape,
        actual: feed.dims,
      });
    }
    for (let axis = 0; axis < input.shape.length; axis++) {
      const declared = input.shape[axis];
      if (typeof declared === 'number' && declared >= 0 && declared !== feed.dims[axis]) {
        throw invalid(`input '${input.name}' dimension ${axis} must be ${declared} (shape [${input.shape.join(', ')}]), the request sends [${feed.dims.join(', ')}]`, {
          input: input.name,
          expected: input.shape,
          actual: feed.dims,
        });
      }
    }
  }
}

function invalid(message: string, context: Record<string, unknown>): EdgevolveError {
  return new EdgevolveError('E_SERVING_INPUT_INVALID', message, { context });
}

/** Refuses output names the model does not have (onnxruntime would fail the run instead). */
export function checkOutputNames(outputs: readonly SessionValueInfo[], names: readonly string[] | undefined): void {
  if (names === undefined) return;
  for (const name of names) {
    if (!outputs.some((o) => o.name === name)) {
      throw invalid(`the model has no output '${name}' (outputs: ${outputs.map((o) => o.name).join(', ')})`, { output: name });
    }
  }
}
