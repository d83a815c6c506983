/**
 * The fold pass against the ONNX operator corpus: every corpus model the pass
 * changes (constant folding, Identity/Dropout removal, Constant hoisting, dead
 * nodes) must still reproduce the corpus's expected outputs in onnxruntime.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../../src/onnx/index.ts';
import { runPass } from '../../../src/compress/pass.ts';
import { foldPass } from '../../../src/compress/fold/index.ts';
import { DEFAULT_CORPUS_ROOT, listCases, runConformance, summarize } from '../../../src/runtime/conformance.ts';
import { requireTool } from '../../helpers/require-tool.ts';
import { CHECKS } from '../../helpers/ort-equivalence.ts';

const present = requireTool({ name: 'the ONNX test corpus', debianPackage: 'libonnx-testdata', check: () => fs.existsSync(`${DEFAULT_CORPUS_ROOT}/node`) });

describe.runIf(present)('fold on the libonnx-testdata corpus', () => {
  it('every model fold changes still matches the corpus outputs', async () => {
    const changed = listCases().cases.filter((c) => {
      try {
        return foldPass.run(decodeModel(fs.readFileSync(`${c.dir}/model.onnx`)), {}).modified;
      } catch {
        return false; // models our decoder refuses are the codec tests' business
      }
    });
    expect(changed.length).toBeGreaterThan(50);
    const results = await runConformance(changed, { threads: 1, transform: (model) => runPass(foldPass, model, {}, CHECKS).model });
    const failed = results.filter((r) => r.status === 'failed').map((r) => `${r.name}: ${r.reason ?? ''}`);
    expect(failed).toEqual([]);
    expect(summarize(results).passed).toBeGreaterThan(50);
  }, 120_000);
});
