import Long from 'long';
import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import {
  AttributeType,
  DataType,
  attr,
  decodeModel,
  encodeModel,
  getAttrFloat,
  getAttrFloats,
  getAttrInt,
  getAttrInts,
  getAttrString,
  getAttrStrings,
  getAttrTensor,
  getAttrGraph,
  getAttribute,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  readTensor,
  removeAttribute,
  setAttribute,
} from '../../../src/onnx/index.ts';

describe('attributes', () => {
  it('infers INT for whole numbers and FLOAT otherwise, and obeys the explicit helpers', () => {
    const node = makeNode('Conv', ['x', 'w'], ['y'], {
      group: 1,
      alpha: 0.5,
      beta: attr.float(1),
      pads: [1, 1, 1, 1],
      scales: [0.5, 2],
      exact: attr.floats([1, 2]),
      big: 2n ** 62n,
      mode: 'nearest',
      names: ['a', 'b'],
    });
    const types: Record<string, number | undefined> = Object.fromEntries(node.attribute!.map((a) => [a.name ?? '', a.type]));
    expect(types).toEqual({
      group: AttributeType.INT,
      alpha: AttributeType.FLOAT,
      beta: AttributeType.FLOAT,
      pads: AttributeType.INTS,
      scales: AttributeType.FLOATS,
      exact: AttributeType.FLOATS,
      big: AttributeType.INT,
      mode: AttributeType.STRING,
      names: AttributeType.STRINGS,
    });
  });

  it('reads every attribute kind back after an encode/decode round trip', () => {
    const body = makeGraph({ name: 'body', nodes: [], inputs: [], outputs: [] });
    const node = makeNode(
      'Custom',
      ['x'],
      ['y'],
      {
        axis: -1,
        eps: attr.float(1e-5),
        perm: [0, 2, 1],
        ratios: attr.floats([0.25, 4]),
        mode: 'constant',
        tags: ['a', 'é'],
        value: attr.tensor(makeTensor('v', DataType.INT64, [2], [1n, -(2n ** 63n)])),
        body: attr.graph(body),
      },
      { name: 'n', domain: 'my.domain' },
    );
    const model = makeModel({
      graph: makeGraph({ name: 'g', nodes: [node], inputs: [makeValueInfo('x', DataType.FLOAT, [1])], outputs: [makeValueInfo('y', DataType.FLOAT, [1])] }),
      opsets: [{ domain: '', version: 21 }, { domain: 'my.domain', version: 1 }],
    });
    const back = decodeModel(encodeModel(model)).graph!.node![0]!;
    expect(back.domain).toBe('my.domain');
    expect(getAttrInt(back, 'axis', 0)).toBe(-1);
    expect(getAttrFloat(back, 'eps', 0)).toBeCloseTo(1e-5, 10);
    expect(getAttrInts(back, 'perm', [])).toEqual([0, 2, 1]);
    expect(getAttrFloats(back, 'ratios', [])).toEqual([0.25, 4]);
    expect(getAttrString(back, 'mode', '')).toBe('constant');
    expect(getAttrStrings(back, 'tags')).toEqual(['a', 'é']);
    expect(Array.from(readTensor(getAttrTensor(back, 'value')!).data as BigInt64Array)).toEqual([1n, -(2n ** 63n)]);
    expect(getAttrGraph(back, 'body')?.name).toBe('body');
    expect(getAttrInt(back, 'missing', 7)).toBe(7);
    expect(getAttrInt(back, 'missing')).toBeUndefined();
  });

  it('throws E_ONNX_INVALID naming the attribute when its type is not the one asked for', () => {
    const node = makeNode('Foo', [], [], { mode: 'x' }, { name: 'foo' });
    try {
      getAttrInt(node, 'mode', 0);
      expect.unreachable();
    } catch (err) {
      expect(isEdgevolveError(err, 'E_ONNX_INVALID')).toBe(true);
      expect((err as Error).message).toContain("attribute 'mode'");
    }
  });

  it('reads int64 attributes beyond 2^53 as an error, not a rounded number', () => {
    const node = makeNode('Slice', [], [], {});
    node.attribute = [{ name: 'end', type: AttributeType.INT, i: Long.MAX_VALUE }];
    expect(() => getAttrInt(node, 'end', 0)).toThrow(/2\^53/);
  });

  it('sets and removes attributes in place', () => {
    const node = makeNode('Relu', ['x'], ['y']);
    setAttribute(node, 'alpha', attr.float(0.1));
    setAttribute(node, 'alpha', attr.float(0.2));
    expect(node.attribute).toHaveLength(1);
    expect(getAttrFloat(node, 'alpha', 0)).toBeCloseTo(0.2);
    expect(removeAttribute(node, 'alpha')).toBe(true);
    expect(getAttribute(node, 'alpha')).toBeUndefined();
  });
});

describe('makeValueInfo / makeModel', () => {
  it('writes fixed, symbolic and unknown dims, and a rank-unknown shape', () => {
    const v = makeValueInfo('x', DataType.FLOAT, [1, 'batch', null]);
    expect(v.type?.tensorType?.shape?.dim).toEqual([{ dimValue: 1 }, { dimParam: 'batch' }, {}]);
    expect(makeValueInfo('r', DataType.FLOAT, null).type?.tensorType?.shape).toBeUndefined();
  });

  it('defaults to IR 10 and opset 21', () => {
    const m = makeModel({ graph: makeGraph({ name: 'g', nodes: [], inputs: [], outputs: [] }) });
    expect(m.irVersion).toBe(10);
    expect(m.opsetImport).toEqual([{ domain: '', version: 21 }]);
  });
});
