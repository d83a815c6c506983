/**
 * The protobufjs schema keeps every part of a model a pass does not touch: metadata,
 * doc strings, training info, local functions, sparse initializers, quantization
 * annotations, segment info, typed tensor fields and non-tensor types.
 */
import { describe, expect, it } from 'vitest';
import { AttributeType, DataType, decodeModel, encodeModel, makeTensor, makeValueInfo, type ModelProto } from '../../../src/onnx/index.ts';
import { tinyMlp } from '../../helpers/onnx-builders.ts';

function everythingModel(): ModelProto {
  const m = tinyMlp();
  m.docString = 'model doc';
  m.domain = 'org.example';
  m.modelVersion = 7;
  m.producerVersion = '1.2.3';
  m.metadataProps = [{ key: 'author', value: 'edgevolve' }];
  const g = m.graph!;
  g.docString = 'graph doc';
  g.metadataProps = [{ key: 'stage', value: 'test' }];
  g.node![0]!.docString = 'node doc';
  g.node![0]!.metadataProps = [{ key: 'origin', value: 'fc1' }];
  g.node![0]!.overload = 'v2';
  g.sparseInitializer = [
    { values: makeTensor('S', DataType.FLOAT, [2], [1, 2]), indices: makeTensor('S_idx', DataType.INT64, [2], [0n, 5n]), dims: [3, 3] },
  ];
  g.quantizationAnnotation = [{ tensorName: 'W', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 'W_scale' }] }];
  g.valueInfo = [
    { name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'n', denotation: 'BATCH' }] } } } } }, docString: 'vi doc' },
    { name: 'map', type: { mapType: { keyType: DataType.INT64, valueType: { tensorType: { elemType: DataType.FLOAT } } } } },
    { name: 'opt', type: { optionalType: { elemType: { tensorType: { elemType: DataType.INT8 } } } } },
  ];
  g.initializer!.push({ name: 'typed', dataType: DataType.FLOAT, dims: [2], floatData: [1.5, 2.5], segment: { begin: 0, end: 2 }, docString: 'tensor doc' });
  m.trainingInfo = [
    {
      initialization: { name: 'init', node: [], output: [makeValueInfo('W', DataType.FLOAT, [4, 3])] },
      algorithm: { name: 'step', node: [] },
      initializationBinding: [{ key: 'W', value: 'W' }],
      updateBinding: [{ key: 'W', value: 'W_new' }],
    },
  ];
  m.functions = [
    {
      name: 'Twice',
      domain: 'local',
      input: ['a'],
      output: ['b'],
      attribute: ['alpha'],
      attributeProto: [{ name: 'beta', type: AttributeType.FLOAT, f: 0.5 }],
      node: [{ opType: 'Add', input: ['a', 'a'], output: ['b'] }],
      opsetImport: [{ domain: '', version: 17 }],
      docString: 'fn doc',
      valueInfo: [makeValueInfo('b', DataType.FLOAT, null)],
      metadataProps: [{ key: 'k', value: 'v' }],
    },
  ];
  m.opsetImport!.push({ domain: 'local', version: 1 });
  return m;
}

describe('field preservation', () => {
  it('keeps every field through encode → decode → encode, byte for byte', () => {
    const first = encodeModel(everythingModel());
    const decoded = decodeModel(first);
    expect(Buffer.from(encodeModel(decoded)).equals(Buffer.from(first))).toBe(true);
    expect(decoded.metadataProps).toEqual([{ key: 'author', value: 'edgevolve' }]);
    expect(decoded.docString).toBe('model doc');
    expect(decoded.graph?.metadataProps?.[0]?.value).toBe('test');
    expect(decoded.graph?.node?.[0]?.overload).toBe('v2');
    expect(decoded.graph?.sparseInitializer?.[0]?.values?.name).toBe('S');
    expect(decoded.graph?.quantizationAnnotation?.[0]?.quantParameterTensorNames?.[0]?.value).toBe('W_scale');
    expect(decoded.graph?.valueInfo?.[0]?.type?.sequenceType?.elemType?.tensorType?.shape?.dim?.[0]?.denotation).toBe('BATCH');
    expect(decoded.graph?.valueInfo?.[1]?.type?.mapType?.keyType).toBe(DataType.INT64);
    expect(decoded.graph?.initializer?.[2]?.floatData).toEqual([1.5, 2.5]);
    expect(decoded.trainingInfo?.[0]?.updateBinding?.[0]?.value).toBe('W_new');
    expect(decoded.functions?.[0]?.attributeProto?.[0]?.f).toBe(0.5);
    expect(decoded.functions?.[0]?.metadataProps?.[0]?.key).toBe('k');
  });
});
