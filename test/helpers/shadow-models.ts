/**
 * Candidates for shadow-mode tests, built from the MNIST fixtures: one that behaves like the
 * original (int8-dynamic of the same network) and one that disagrees with it on purpose
 * (the same network with its ten classes reversed by a Gather on the logits).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { quantizeDynamic } from '../../src/compress/index.ts';
import { DataType, decodeModel, encodeModel, makeNode, makeTensor } from '../../src/onnx/index.ts';

export const MNIST_CNN = 'test/fixtures/models/mnist-cnn.onnx';

/** int8-dynamic (MatMul/Gemm, 7-bit weights so it is exact on CPUs without VNNI) of `source`, written to `path`. */
export async function writeInt8Dynamic(source: string, path: string): Promise<string> {
  const { model } = quantizeDynamic(decodeModel(await readFile(source)), { perChannel: false, reduceRange: true, opTypes: ['MatMul', 'Gemm'], exclude: [] });
  await writeFile(path, encodeModel(model));
  return path;
}

/** `source` with its `logits` output's classes in reverse order: same confidence, other answers. */
export async function writeReversedClasses(source: string, path: string): Promise<string> {
  const model = decodeModel(await readFile(source));
  const graph = model.graph;
  const last = graph?.node?.find((n) => n.output?.includes('logits'));
  if (graph?.node === undefined || last?.output === undefined) throw new Error(`${source} has no node producing 'logits'`);
  last.output = last.output.map((o) => (o === 'logits' ? 'logits.raw' : o));
  graph.initializer = [...(graph.initializer ?? []), makeTensor('reversed', DataType.INT64, [10], new BigInt64Array([9n, 8n, 7n, 6n, 5n, 4n, 3n, 2n, 1n, 0n]))];
  graph.node.push(makeNode('Gather', ['logits.raw', 'reversed'], ['logits'], { axis: 1 }, { name: 'reverse_classes' }));
  await writeFile(path, encodeModel(model));
  return path;
}
