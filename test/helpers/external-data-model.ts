/**
 * A fixture model rewritten with every initializer in one external-data file beside it
 * (what onnx.save_model(..., save_as_external_data=True) writes), for the registry and
 * daemon tests of models whose weights are not inside the .onnx file.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodeModel, encodeModel } from '../../src/onnx/codec.ts';
import { tensorToFloat32 } from '../../src/onnx/tensor.ts';

const MLP = 'test/fixtures/models/mnist-mlp.onnx';

/** Writes `<dir>/mlp-ext.onnx` and its weights at `<dir>/<location>`; returns the model's path. */
export async function writeExternalDataModel(dir: string, location = 'weights/mlp.bin', source = MLP): Promise<string> {
  const model = decodeModel(await readFile(source));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData !== undefined && t.rawData.byteLength > 0 ? t.rawData : new Uint8Array(tensorToFloat32(t).buffer);
    t.rawData = undefined;
    t.floatData = undefined;
    t.dataLocation = 1;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    chunks.push(raw);
    offset += raw.byteLength;
  }
  await mkdir(dirname(join(dir, location)), { recursive: true });
  await writeFile(join(dir, location), Buffer.concat(chunks));
  const path = join(dir, 'mlp-ext.onnx');
  await writeFile(path, encodeModel(model));
  return path;
}
