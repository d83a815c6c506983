/**
 * The IR's round trip against ONNX's own backend test corpus (Debian libonnx-testdata):
 * every model onnxruntime runs must give the expected outputs after decode → encode.
 * The same runner backs `npm run conformance`, which prints the per-model table.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto } from '../../../src/onnx/index.ts';
import { DEFAULT_CORPUS_ROOT, listCases, runCase, runConformance, summarize } from '../../../src/runtime/conformance.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const corpusPresent = requireTool({
  name: 'the ONNX backend test corpus',
  check: () => fs.existsSync(`${DEFAULT_CORPUS_ROOT}/node/test_abs/model.onnx`),
  debianPackage: 'libonnx-testdata',
});

describe.runIf(corpusPresent)('conformance on libonnx-testdata', () => {
  it('round-trips every model onnxruntime runs with the expected outputs: 0 failed, more than 900 passed', async () => {
    const { cases } = listCases();
    const results = await runConformance(cases);
    const summary = summarize(results);
    const failed = results.filter((r) => r.status === 'failed').map((r) => `${r.name}: ${r.reason}`);
    expect(failed).toEqual([]);
    expect(summary.passed).toBeGreaterThan(900);
    // Every model that reached our codec came back byte for byte (onnx's serializer writes canonical field order).
    expect(summary.byteIdentical).toBe(summary.reencoded);
    expect(summary.reencoded).toBe(cases.length);
  }, 180_000);

  it('finds the corpus folders with models and ignores real/, which only names downloads', () => {
    const { cases, ignored } = listCases();
    expect(cases.length).toBeGreaterThan(1000);
    expect(cases.some((c) => c.name.startsWith('pytorch-converted/'))).toBe(true);
    expect(cases.some((c) => c.name.startsWith('real/'))).toBe(false);
    expect(ignored).toBeGreaterThanOrEqual(9);
  });

  it('skips, with onnxruntime\'s reason, a model onnxruntime cannot load', async () => {
    const result = await runCase(caseNamed('node/test_adagrad'));
    expect(result.status).toBe('skipped');
    expect(result.reason).toMatch(/Adagrad/);
  });

  it('skips a model whose inputs are sequences, which onnxruntime-node cannot pass', async () => {
    const result = await runCase(caseNamed('node/test_sequence_insert_at_back'));
    expect(result.status).toBe('skipped');
    expect(result.reason).toMatch(/not a tensor/);
  });

  // The next tests inject faults through `transform` (the real codec does not produce
  // them) to show that the runner can fail a round trip at all.
  it('fails a round trip that changes the graph\'s meaning (Abs rewritten to Neg)', async () => {
    const result = await runCase(caseNamed('node/test_abs'), {
      transform: (model: ModelProto) => {
        for (const node of model.graph?.node ?? []) if (node.opType === 'Abs') node.opType = 'Neg';
        return model;
      },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^round trip: test_data_set_0: output 'y': \d+\/60 elements differ/);
  });

  it('fails a round trip whose weights drift beyond rtol 1e-3 and passes one within it', async () => {
    const scale = (factor: number) => (model: ModelProto): ModelProto => {
      for (const t of model.graph?.initializer ?? []) {
        if (t.dataType !== DataType.FLOAT) continue;
        t.floatData = (t.floatData ?? []).map((x) => x * factor);
        if (t.rawData && t.rawData.length > 0) {
          const copy = new Float32Array(new Uint8Array(t.rawData).buffer);
          for (let i = 0; i < copy.length; i++) copy[i] = copy[i]! * factor;
          t.rawData = new Uint8Array(copy.buffer);
        }
      }
      return model;
    };
    // test_operator_conv keeps its conv weights in initializers.
    const c = caseNamed('pytorch-operator/test_operator_conv');
    const drifted = await runCase(c, { transform: scale(1 + 1e-2) });
    expect(drifted.status).toBe('failed');
    expect(drifted.reason).toMatch(/^round trip: test_data_set_0: output '[^']+': \d+\/\d+ elements differ/);
    expect((await runCase(c, { transform: scale(1 + 1e-6) })).status).toBe('passed');
  });

  it('fails a round trip that onnxruntime can no longer load, naming the cause', async () => {
    const result = await runCase(caseNamed('node/test_abs'), {
      transform: (model: ModelProto) => {
        for (const node of model.graph?.node ?? []) node.opType = 'NoSuchOp';
        return model;
      },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^onnxruntime cannot load the round trip: .*NoSuchOp/);
  });
});

function caseNamed(name: string): { name: string; dir: string } {
  const found = listCases(DEFAULT_CORPUS_ROOT, name).cases.find((c) => c.name === name);
  if (found === undefined) throw new Error(`corpus case ${name} not found`);
  return found;
}
