/**
 * What the config blob says about an ONNX model, read from the model itself so a push
 * needs no hand-written metadata: graph inputs and outputs, opsets, and the precision
 * the weights are stored in.
 */
import { decodeModel } from '../onnx/codec.ts';
import { dataTypeName, elementTypeInfo } from '../onnx/dtype.ts';
import { int64ToNumber } from '../onnx/int64.ts';
import type { ValueInfoProto } from '../onnx/types.ts';

export interface TensorSignature {
  readonly name: string;
  readonly elemType: string;
  /** Dimension sizes; a string is a symbolic dimension, null an unknown one. */
  readonly shape: readonly (number | string | null)[] | null;
}

export interface ModelInfo {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  readonly opsets: Readonly<Record<string, number>>;
  readonly irVersion: number;
  readonly producer: string;
  /** The element type holding most initializer bytes, as a precision name (fp32, fp16, int8...). */
  readonly precision: string;
  readonly parameterBytes: number;
  /** The distinct `location`s of initializers stored as external data, in first-use order. */
  readonly externalLocations: readonly string[];
}

const PRECISION_BY_TYPE: Readonly<Record<string, string>> = {
  FLOAT: 'fp32',
  FLOAT16: 'fp16',
  BFLOAT16: 'bf16',
  DOUBLE: 'fp64',
  INT8: 'int8',
  UINT8: 'int8',
  INT4: 'int4',
  UINT4: 'int4',
};

function signature(value: ValueInfoProto): TensorSignature {
  const tensor = value.type?.tensorType;
  const dims = tensor?.shape?.dim;
  return {
    name: value.name ?? '',
    elemType: dataTypeName(tensor?.elemType ?? 0),
    shape:
      dims === undefined
        ? null
        : dims.map((d) => (d.dimParam !== undefined && d.dimParam !== '' ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? int64ToNumber(d.dimValue) : null)),
  };
}

export function readModelInfo(bytes: Uint8Array): ModelInfo {
  const model = decodeModel(bytes);
  const graph = model.graph ?? {};
  const initializerNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const bytesByType = new Map<string, number>();
  let parameterBytes = 0;
  const externalLocations: string[] = [];
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataLocation === 1) {
      const location = tensor.externalData?.find((e) => e.key === 'location')?.value ?? '';
      if (!externalLocations.includes(location)) externalLocations.push(location);
    }
    let elements = 1;
    for (const d of tensor.dims ?? []) elements *= int64ToNumber(d);
    const info = elementTypeInfo(tensor.dataType ?? 0);
    const size = info === undefined ? 0 : Math.ceil((elements * info.bits) / 8);
    parameterBytes += size;
    const name = dataTypeName(tensor.dataType ?? 0);
    bytesByType.set(name, (bytesByType.get(name) ?? 0) + size);
  }
  let dominant = 'FLOAT';
  let most = -1;
  for (const [name, size] of bytesByType) {
    if (size > most) {
      dominant = name;
      most = size;
    }
  }
  const opsets: Record<string, number> = {};
  for (const op of model.opsetImport ?? []) opsets[op.domain === undefined || op.domain === '' ? 'ai.onnx' : op.domain] = int64ToNumber(op.version);
  return {
    // Initializers listed as graph inputs (old exporters) are weights, not inputs.
    inputs: (graph.input ?? []).filter((i) => !initializerNames.has(i.name)).map(signature),
    outputs: (graph.output ?? []).map(signature),
    opsets,
    irVersion: int64ToNumber(model.irVersion),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    precision: PRECISION_BY_TYPE[dominant] ?? dominant.toLowerCase(),
    parameterBytes,
    externalLocations,
  };
}
