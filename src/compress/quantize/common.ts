/**
 * Small pieces shared by the quantization passes: how a node is named in options and
 * reports, reading float initializers, turning quantized weights into initializers,
 * and the parameter-byte accounting of the report.
 */
import { EdgevolveError } from '../../errors/index.ts';
import { elementTypeInfo, makeTensor, rawByteLength, tensorDims, tensorToFloat32, type NameScope } from '../../onnx/index.ts';
import { DataType, type GraphProto, type NodeProto, type TensorProto } from '../../onnx/types.ts';
import { quantDataType, type QuantizedWeight } from './quant-math.ts';

/**
 * The name a node goes by in --exclude lists, precision plans and reports: its name,
 * or its first output when the converter left it unnamed (outputs are unique).
 */
export function nodeKey(node: NodeProto): string {
  return node.name || node.output?.[0] || `<${node.opType ?? '?'}>`;
}

/** Initializers by name. */
export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  return new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
}

/** The float32 initializer named `name`, or undefined (absent, or of another type). */
export function floatInitializer(inits: ReadonlyMap<string, TensorProto>, name: string | undefined): TensorProto | undefined {
  if (!name) return undefined;
  const t = inits.get(name);
  return t !== undefined && t.dataType === DataType.FLOAT ? t : undefined;
}

/** Bytes the tensor's elements take (what a file pays for it, headers aside). */
export function tensorBytes(t: TensorProto): number {
  const dims = tensorDims(t);
  const elements = dims.reduce((a, b) => a * b, 1);
  return rawByteLength(t.dataType ?? 0, elements) ?? 0;
}

/** Total bytes of all initializers of a graph. */
export function parameterBytes(graph: GraphProto): number {
  let total = 0;
  for (const t of graph.initializer ?? []) total += tensorBytes(t);
  return total;
}

/** Float32 values of an initializer, with its dims. */
export function readFloat(t: TensorProto): { data: Float32Array; dims: number[] } {
  return { data: tensorToFloat32(t), dims: tensorDims(t) };
}

export interface WeightInitializers {
  readonly quantized: TensorProto;
  readonly scale: TensorProto;
  readonly zeroPoint: TensorProto;
}

/**
 * The initializers for a quantized weight: `<base>_quantized`, `<base>_scale` and
 * `<base>_zero_point` (ORT's naming). Per-channel scale and zero point are 1-D of the
 * channel count; per-tensor ones are scalars.
 */
export function weightInitializers(q: QuantizedWeight, dims: readonly number[], base: string, names: NameScope): WeightInitializers {
  const paramDims = q.axis === undefined ? [] : [q.scales.length];
  const zpType = quantDataType(q.type);
  const zp = q.type === 'int8' ? Int8Array.from(q.zeroPoints) : Uint8Array.from(q.zeroPoints);
  return {
    quantized: makeTensor(names.fresh(`${base}_quantized`), zpType, dims, q.data),
    scale: makeTensor(names.fresh(`${base}_scale`), DataType.FLOAT, paramDims, q.scales),
    zeroPoint: makeTensor(names.fresh(`${base}_zero_point`), zpType, paramDims, zp),
  };
}

/** A scalar or 1-D summary of scales for a report. */
export function scaleStats(scales: Float32Array): Record<string, number> {
  if (scales.length === 1) return { scale: scales[0]! };
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of scales) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  return { scaleMin: lo, scaleMax: hi, channels: scales.length };
}

/** Fails with a typed error when a model has no graph. */
export function graphOf(model: { graph?: GraphProto | null }, pass: string): GraphProto {
  if (!model.graph) throw new EdgevolveError('E_COMPRESS_PRECONDITION', `${pass}: the model has no graph`);
  return model.graph;
}

/** Whether an element type is a float type the passes treat as real-valued. */
export function isFloat32(dataType: number | undefined): boolean {
  return dataType === DataType.FLOAT;
}

export { elementTypeInfo };
