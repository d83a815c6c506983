/**
 * A small training library in plain TypeScript: layers with hand-written backward passes
 * over Float32Arrays, Adam, softmax cross-entropy, a seeded training loop, and ONNX export.
 * It trains the project's reference MNIST models (scripts/train-fixtures.ts) and is the
 * base of the cloud-side distillation loop. Everything is seeded: the same seed on the
 * same machine gives the same bytes. Also here: synthetic text images for the PaddleOCR
 * fixtures (scripts/make-ocr-fixtures.ts), drawn with a built-in bitmap font.
 */
export { Rng } from './prng.ts';
export { gemmNN, gemmNT, gemmTN, transpose } from './gemm.ts';
export { sizeOf, type Layer, type LayerKind, type Param } from './layers/layer.ts';
export { Dense } from './layers/dense.ts';
export { Relu } from './layers/relu.ts';
export { Flatten } from './layers/flatten.ts';
export { Conv2d } from './layers/conv2d.ts';
export { BatchNorm2d } from './layers/batchnorm2d.ts';
export { MaxPool2d } from './layers/maxpool2d.ts';
export { softmaxCrossEntropy, argmaxRows } from './loss.ts';
export { Adam, type AdamOptions } from './optim.ts';
export { Sequential, accuracy } from './network.ts';
export { train, type LabelledSet, type TrainOptions, type EpochReport, type DistillationTargets } from './trainer.ts';
export { distillationLoss, softmaxRows } from './distill-loss.ts';
export { importMlpFromOnnx } from './import-onnx.ts';
export { shiftImage } from './augment.ts';
export { buildMlp, buildCnn, type BuildOptions, type ConvStage } from './architectures.ts';
export { parseMnistDigits, splitSet, selectSamples, MNIST_SIDE, MNIST_PIXELS } from './mnist.ts';
export { exportToOnnx, EXPORT_OPSET, EXPORT_IR_VERSION, type ExportOptions } from './export-onnx.ts';
export { makeDetInputs, makeRecInputs, makeClsInputs, randomText, type OcrBatch, type TextBox } from './synthetic-text.ts';
export { ctcGreedyDecode, paddleOcrAlphabet } from './ctc.ts';
export { FONT_CHARACTERS, GLYPH_WIDTH, GLYPH_HEIGHT, glyphMask } from './bitmap-font.ts';
