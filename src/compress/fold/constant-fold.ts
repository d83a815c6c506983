/**
 * Constant folding: nodes whose inputs are all constants (initializers that are not
 * overridable graph inputs, or results folded earlier) and whose op the TS evaluator
 * knows are replaced by initializers holding their result. Shape of a value whose
 * shape is statically declared folds too. Everything else is left alone: this pass
 * never runs onnxruntime.
 */
import { DataType, makeTensor, opsetVersion, readTensor, topologicalOrder, valueType } from '../../onnx/index.ts';
import type { ModelProto } from '../../onnx/index.ts';
import type { Change } from '../pass.ts';
import { evaluateNode, FOLDABLE_OPS, type ConstValue, type KnownInput } from './evaluate.ts';
import { dropStaleValueInfo } from './graph-util.ts';

export interface ConstantFoldOptions {
  /** Largest folded result in elements (default 1M); bigger results would bloat the file. */
  readonly maxElements?: number;
}

export function foldConstants(model: ModelProto, options: ConstantFoldOptions = {}): Change[] {
  const graph = model.graph;
  if (!graph) return [];
  const opset = opsetVersion(model) ?? 1;
  const ctx = { opset, maxElements: options.maxElements ?? 1 << 20 };
  const overridable = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const outputs = new Set((graph.output ?? []).map((v) => v.name ?? ''));
  const known = new Map<string, ConstValue>();
  const readCache = new Map<string, ConstValue | null>();
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));

  const constant = (name: string): ConstValue | undefined => {
    const folded = known.get(name);
    if (folded !== undefined) return folded;
    if (overridable.has(name)) return undefined;
    const cached = readCache.get(name);
    if (cached !== undefined) return cached ?? undefined;
    const t = initializers.get(name);
    let value: ConstValue | null = null;
    if (t !== undefined) {
      const v = readTensor(t);
      if (!Array.isArray(v.data) && v.dataType !== DataType.FLOAT16 && v.dataType !== DataType.BFLOAT16) value = { dataType: v.dataType, dims: v.dims, data: v.data };
    }
    readCache.set(name, value);
    return value ?? undefined;
  };

  const changes: Change[] = [];
  const removed = new Set<unknown>();
  for (const node of topologicalOrder(graph)) {
    const op = node.opType ?? '';
    if (!FOLDABLE_OPS.has(op) || (node.domain ?? '') !== '' || (node.output?.length ?? 0) !== 1) continue;
    const out = node.output![0]!;
    if (!out || outputs.has(out)) continue;
    const inputs: KnownInput[] = [];
    let complete = true;
    for (const [slot, name] of (node.input ?? []).entries()) {
      if (!name) {
        inputs.push({});
        continue;
      }
      const value = constant(name);
      if (value !== undefined) {
        inputs.push({ value });
        continue;
      }
      if (op === 'Shape' && slot === 0) {
        const shape = valueType(graph, name)?.shape;
        if (shape && shape.every((d): d is number => typeof d === 'number' && d >= 0)) {
          inputs.push({ shape });
          continue;
        }
      }
      complete = false;
      break;
    }
    if (!complete) continue;
    const result = evaluateNode(node, inputs, ctx);
    if (result === undefined) continue;
    known.set(out, result);
    removed.add(node);
    (graph.initializer ??= []).push(makeTensor(out, result.dataType, result.dims, result.data));
    changes.push({ target: node.name || out, action: 'folded', detail: `${op} → constant [${result.dims.join(',')}]` });
  }
  if (changes.length === 0) return changes;
  graph.node = (graph.node ?? []).filter((n) => !removed.has(n));
  dropStaleValueInfo(graph);
  return changes;
}
