/**
 * Calibration feeds from a data set bound to a model (data/model-check.ts): batches
 * stacked along the batch axis when the model takes any batch size, one sample per
 * run when it fixes the batch at 1 or takes samples without a batch axis, each set
 * as it is in the ONNX test layout. Files are read by the data module as batches
 * are pulled; nothing here holds more than one batch.
 */
import type { ModelBinding } from '../../data/index.ts';
import type { TensorValue } from '../../onnx/index.ts';
import type { CalibrationFeeds } from './calibrate.ts';

export function calibrationFeeds(binding: ModelBinding, opts: { batchSize: number; maxSamples?: number | undefined }): CalibrationFeeds {
  const dataset = opts.maxSamples === undefined ? binding.dataset : binding.dataset.take(opts.maxSamples);
  const batchSize = binding.mode === 'batched' ? (binding.fixedBatch ?? opts.batchSize) : 1;
  return async function* feeds() {
    for await (const batch of dataset.batches(batchSize)) {
      // A model that fixes its batch size cannot take the smaller last batch; calibration can do without it.
      if (binding.fixedBatch !== undefined && batch.size !== binding.fixedBatch) continue;
      const feed: Record<string, TensorValue> = {};
      for (const [name, value] of Object.entries(batch.feeds)) {
        feed[name] = binding.mode === 'single' && binding.hasBatchAxis[name] === false ? { ...value, dims: value.dims.slice(1) } : value;
      }
      yield feed;
    }
  };
}
