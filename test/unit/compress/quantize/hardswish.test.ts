import { describe, expect, it } from 'vitest';
import { compressModel } from '../../../../src/compress/index.ts';
import { runPass } from '../../../../src/compress/pass.ts';
import { fuseHardSwishPass } from '../../../../src/compress/quantize/hardswish.ts';
import { DataType, attr, decodeModel, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, opsetVersion, type ModelProto, type NodeProto, type TensorProto } from '../../../../src/onnx/index.ts';
import { createSession } from '../../../../src/runtime/index.ts';
import { CHECKS } from '../../../helpers/ort-equivalence.ts';
import { cosine, feedsOf, maxAbsDiff, optimizedOpTypes, randomInput, randomTensor, runModel } from './graphs.ts';

const scalar = (name: string, v: number): TensorProto => makeTensor(name, DataType.FLOAT, [], [v]);

function model(nodes: NodeProto[], inits: TensorProto[], opset: number, shape = [1, 4, 6, 6]): ModelProto {
  return makeModel({
    graph: makeGraph({ name: 'g', nodes, inputs: [makeValueInfo('x', DataType.FLOAT, shape)], outputs: [makeValueInfo('y', DataType.FLOAT, shape)], initializers: inits }),
    opsets: [{ domain: '', version: opset }],
  });
}

/** Paddle2ONNX at opset 11: Conv → x·Clip(x+3, 0, 6)/6 (Clip bounds as inputs) → Conv. */
function paddleForm(): ModelProto {
  return model(
    [
      makeNode('Conv', ['x', 'W1', 'B1'], ['c'], { pads: [1, 1, 1, 1] }, { name: 'conv1' }),
      makeNode('Add', ['c', 'three'], ['a'], {}, { name: 'add3' }),
      makeNode('Clip', ['a', 'zero', 'six'], ['k'], {}, { name: 'clip' }),
      makeNode('Mul', ['c', 'k'], ['m'], {}, { name: 'mul' }),
      makeNode('Div', ['m', 'six'], ['h'], {}, { name: 'div6' }),
      makeNode('Conv', ['h', 'W2'], ['y'], { pads: [1, 1, 1, 1] }, { name: 'conv2' }),
    ],
    [randomTensor('W1', [4, 4, 3, 3], 1), randomTensor('B1', [4], 2), randomTensor('W2', [4, 4, 3, 3], 3), scalar('three', 3), scalar('zero', 0), scalar('six', 6)],
    11,
  );
}

const ops = (m: ModelProto): string[] => (m.graph?.node ?? []).map((n) => n.opType ?? '');

describe('fuse-hardswish', () => {
  it('rewrites x·Clip(x+3, 0, 6)/6 into one HardSwish, raises opset 11 to 14, keeps outputs within 1e-5, and onnxruntime runs it with no elementwise op left', async () => {
    const before = paddleForm();
    const result = runPass(fuseHardSwishPass, before, undefined, CHECKS);
    expect(ops(result.model)).toEqual(['Conv', 'HardSwish', 'Conv']);
    expect(opsetVersion(result.model)).toBe(14);
    expect(result.report.changes).toHaveLength(1);
    // The now unused constants 3 and 6 are gone.
    expect((result.model.graph?.initializer ?? []).map((t) => t.name).sort()).toEqual(['B1', 'W1', 'W2']);
    // Inputs scaled so the conv output covers all three branches (< -3, between, > 3).
    const feed = { x: randomInput([1, 4, 6, 6], 7, 4) };
    const [a, b] = [await runModel(before, feed), await runModel(result.model, feed)];
    expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeLessThan(1e-5);
    // onnxruntime then fuses the HardSwish into the Conv (activation=HardSwish of its NCHWc Conv): no elementwise op is left.
    const optimized = await optimizedOpTypes(result.model);
    for (const op of ['Add', 'Clip', 'Mul', 'Div']) expect(optimized).not.toContain(op);
    expect(await optimizedOpTypes(before)).toContain('Div');
  });

  it('also matches Add(3, x), Mul(Clip, x), a final Mul(1/6), and x·HardSigmoid(x) with alpha 1/6', async () => {
    const m = model(
      [
        makeNode('Add', ['three', 'x'], ['a'], {}, { name: 'add3' }),
        makeNode('Clip', ['a'], ['k'], { min: attr.float(0), max: attr.float(6) }, { name: 'clip' }),
        makeNode('Mul', ['k', 'x'], ['m'], {}, { name: 'mul' }),
        makeNode('Mul', ['m', 'sixth'], ['h'], {}, { name: 'times_sixth' }),
        makeNode('HardSigmoid', ['h'], ['g'], { alpha: attr.float(1 / 6), beta: attr.float(0.5) }, { name: 'hsig' }),
        makeNode('Mul', ['h', 'g'], ['y'], {}, { name: 'gate' }),
      ],
      [scalar('three', 3), scalar('sixth', 1 / 6)],
      10,
    );
    const result = runPass(fuseHardSwishPass, m, undefined, CHECKS);
    expect(ops(result.model)).toEqual(['HardSwish', 'HardSwish']);
    const feed = { x: randomInput([1, 4, 6, 6], 8, 6) };
    const [a, b] = [await runModel(m, feed), await runModel(result.model, feed)];
    expect(maxAbsDiff(a.y!.data as Float32Array, b.y!.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('leaves look-alikes alone: Clip(0, 5), an intermediate read elsewhere, HardSigmoid with its default alpha 0.2', () => {
    const clip5 = paddleForm();
    clip5.graph!.initializer!.push(scalar('five', 5));
    clip5.graph!.node![2]!.input![2] = 'five';
    expect(runPass(fuseHardSwishPass, clip5, undefined, CHECKS).modified).toBe(false);
    const shared = paddleForm();
    shared.graph!.node!.push(makeNode('Relu', ['a'], ['r'], {}, { name: 'reads_add' }));
    shared.graph!.output!.push(makeValueInfo('r', DataType.FLOAT, [1, 4, 6, 6]));
    expect(runPass(fuseHardSwishPass, shared, undefined, CHECKS).modified).toBe(false);
    const defaultAlpha = model([makeNode('HardSigmoid', ['x'], ['g'], {}, { name: 'hsig' }), makeNode('Mul', ['x', 'g'], ['y'], {}, { name: 'gate' })], [], 13);
    expect(runPass(fuseHardSwishPass, defaultAlpha, undefined, CHECKS).modified).toBe(false);
  });

  it('int8-static fuses by default: the QDQ graph keeps one float HardSwish between the quantized convs and stays close to float', async () => {
    const before = paddleForm();
    const open = async (bytes: Uint8Array) => {
      const s = await createSession(bytes, { graphOptimizationLevel: 'disabled', threads: 1 });
      return { run: (f: Parameters<typeof s.run>[0], o: readonly string[]) => s.run(f, o), release: () => s.release() };
    };
    const calibration = { feeds: feedsOf(() => [0, 1, 2, 3].map((i) => ({ x: randomInput([1, 4, 6, 6], 20 + i, 4) }))), open };
    const bytes = encodeModel(before);
    const fused = await compressModel(before, 'int8-static', { opTypes: ['Conv'] }, { calibration }, bytes.length);
    const plain = await compressModel(before, 'int8-static', { opTypes: ['Conv'], fuseHardswish: false }, { calibration }, bytes.length);
    const fusedModel = decodeModel(fused.bytes);
    expect(ops(fusedModel).filter((o) => o === 'HardSwish')).toHaveLength(1);
    expect(ops(fusedModel)).not.toContain('Clip');
    expect(ops(decodeModel(plain.bytes))).toContain('Clip');
    const feed = { x: randomInput([1, 4, 6, 6], 9, 4) };
    const ref = (await runModel(before, feed)).y!.data as Float32Array;
    expect(cosine(ref, (await runModel(fusedModel, feed)).y!.data as Float32Array)).toBeGreaterThan(0.99);
  });
});
