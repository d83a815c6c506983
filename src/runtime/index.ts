/** runtime/: onnxruntime-node sessions speaking the IR's TensorValue. */
export { createSession, type Session, type SessionOptions, type SessionValueInfo } from './session.ts';
export { toOrtTensor, fromOrtTensor, ortTypeOf, dataTypeOfOrtType, isPassableDataType } from './ort-tensor.ts';
export { compareTensors, ONNX_BACKEND_TOLERANCE, EXACT, type Tolerance, type Mismatch } from './compare.ts';
export { listDataSetDirs, readTestDataSets, readTensorFile, type TestDataSet, type NamedTensor } from './onnx-test-data.ts';
