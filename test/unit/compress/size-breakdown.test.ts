import { describe, expect, it } from 'vitest';
import { sizeBreakdown } from '../../../src/compress/size-breakdown.ts';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, type ModelProto } from '../../../src/onnx/index.ts';

/** x → Q/DQ → Conv(DQ(int8 weight), float bias) → Reshape(shape constant) → y, plus a float_data (not raw_data) constant. */
function quantizedConv(): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'g',
      nodes: [
        makeNode('QuantizeLinear', ['x', 'xs', 'xz'], ['xq'], {}, { name: 'xQ' }),
        makeNode('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd'], {}, { name: 'xD' }),
        makeNode('DequantizeLinear', ['wq', 'ws'], ['wd'], { axis: 0 }, { name: 'wD' }),
        makeNode('Conv', ['xd', 'wd', 'b'], ['c'], { kernel_shape: [1, 1] }, { name: 'conv' }),
        makeNode('Reshape', ['c', 'shape'], ['r'], {}, { name: 'reshape' }),
        makeNode('Add', ['r', 'offset'], ['y'], {}, { name: 'add' }),
      ],
      inputs: [makeValueInfo('x', DataType.FLOAT, [1, 2, 3, 3])],
      outputs: [makeValueInfo('y', DataType.FLOAT, [1, 36])],
      initializers: [
        makeTensor('xs', DataType.FLOAT, [], [0.02]),
        makeTensor('xz', DataType.UINT8, [], Uint8Array.of(128)),
        makeTensor('wq', DataType.INT8, [4, 2, 1, 1], Int8Array.of(1, -2, 3, -4, 5, -6, 7, -8)),
        makeTensor('ws', DataType.FLOAT, [4], [0.1, 0.2, 0.3, 0.4]),
        makeTensor('b', DataType.FLOAT, [4], [1, 2, 3, 4]),
        makeTensor('shape', DataType.INT64, [2], [1, 36]),
        { name: 'offset', dataType: DataType.FLOAT, dims: [1], floatData: [0.5] },
      ],
    }),
    opsets: [{ domain: '', version: 13 }],
  });
}

describe('sizeBreakdown', () => {
  it('splits the encoded size into parts that add up to it exactly, with initializer data by role', () => {
    const m = quantizedConv();
    const b = sizeBreakdown(m);
    expect(b.total).toBe(encodeModel(m).length);
    expect(b.weights + b.biases + b.quantParams + b.otherConstants + b.initializerHeaders + b.nodes + b.graphIo + b.other).toBe(b.total);
    // int8 weight read through its DQ: 8 bytes; float bias: 16; scales and zero points: 4 + 1 + 16.
    expect(b.weights).toBe(8);
    expect(b.biases).toBe(16);
    expect(b.quantParams).toBe(21);
    // The int64 shape (16 bytes of raw data) and the float_data constant (tag, length and 4 bytes).
    expect(b.otherConstants).toBe(16 + 6);
    expect(b.initializerCount).toBe(7);
    expect(b.nodeCount).toBe(6);
    expect(Object.keys(b.nodesByOpType).sort()).toEqual(['Add', 'Conv', 'DequantizeLinear', 'QuantizeLinear', 'Reshape']);
    expect(Object.values(b.nodesByOpType).reduce((a, c) => a + c, 0)).toBe(b.nodes);
    expect(b.graphIo).toBeGreaterThan(0);
    // Names: initializers (2+2+2+2+1+5+6), node names (2+2+2+4+7+3), node inputs/outputs, graph I/O (1+1).
    const nodeIo = ['x', 'xs', 'xz', 'xq', 'xq', 'xs', 'xz', 'xd', 'wq', 'ws', 'wd', 'xd', 'wd', 'b', 'c', 'c', 'shape', 'r', 'r', 'offset', 'y'].join('').length;
    expect(b.names).toBe(20 + 20 + nodeIo + 2);
  });

  it('counts a model without a graph as all other', () => {
    const m = makeModel({ graph: makeGraph({ name: 'g', nodes: [], inputs: [], outputs: [], initializers: [] }), opsets: [{ domain: '', version: 13 }] });
    const b = sizeBreakdown({ ...m, graph: null });
    expect(b.other).toBe(b.total);
    expect(b.nodes + b.weights + b.graphIo).toBe(0);
  });
});
