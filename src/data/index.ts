/** data/: NumPy files and data sets (one .npy per input, or the ONNX test layout), streamed in batches. */
export {
  parseNpy,
  readNpy,
  encodeNpy,
  writeNpy,
  openNpy,
  allocateNpyData,
  npyItemSize,
  NPY_DTYPES,
  type NpyArray,
  type NpyData,
  type NpyDtype,
  type NpyReader,
} from './npy.ts';
export {
  openDataset,
  describeDataType,
  DATA_TYPE_OF_NPY,
  LABELS_FILE,
  type Batch,
  type Dataset,
  type DatasetInput,
  type DatasetLayout,
} from './dataset.ts';
export { checkAgainstModel, type FeedMode, type ModelBinding, type ModelInputSpec } from './model-check.ts';
export { readTensorFile, listOnnxTestSets, type OnnxTestSet } from './onnx-test-layout.ts';
export { mulberry32, shuffleInPlace } from './prng.ts';
