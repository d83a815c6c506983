/**
 * The embedded default: with no registry configured, `npm start` serves the bundled
 * MNIST fixtures from a local OCI image layout in the state directory, as if they had
 * been published. The artifact `mnist` 1.0.0 has two variants: `cnn` (the fp32 conv
 * net, 98.4% top-1) and `mlp-int8` (the MLP quantized to int8 here, on the device,
 * with the int8-dynamic pass), so variant selection and the budget watch's re-plan to
 * a lighter variant have something to choose between.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../data/npy.ts';
import { EdgevolveError } from '../errors/index.ts';
import { writeFileAtomic } from '../host/index.ts';
import { readModelFile, writeModelFile } from '../onnx/index.ts';
import { pushArtifact } from '../registry/artifact.ts';
import { OciLayout } from '../registry/layout.ts';

export const SEED_MODEL = 'mnist';
export const SEED_TAG = '1.0.0';

/**
 * Where the fixture models are: test/fixtures/models when running from the sources (tsx,
 * vitest), fixtures/models beside the bundle when running from dist/ (scripts/build.ts
 * copies them there, with the test digits in fixtures/data/mnist-test).
 */
export function fixtureModelsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return import.meta.url.endsWith('.ts') ? resolve(here, '..', '..', 'test', 'fixtures', 'models') : resolve(here, 'fixtures', 'models');
}

export function seedLayoutDir(stateDir: string): string {
  return join(stateDir, 'oci');
}

/** The reference the embedded default serves. */
export function seedRef(stateDir: string): string {
  return `oci-layout:${seedLayoutDir(stateDir)}:${SEED_TAG}`;
}

/**
 * Where the int8 variant is built before it is pushed: beside the layout, never in it (a
 * layout holds only OCI content: oci-layout, index.json, blobs/).
 */
export function seedWorkDir(stateDir: string): string {
  return join(stateDir, 'seed-work');
}

/**
 * Creates the layout and pushes the artifact unless its tag is already there. Idempotent
 * and crash-safe: the work file is written atomically and removed only after the push
 * wrote the tag (the last step of pushArtifact), so a crash before it leaves the work
 * file for the next start to reuse, and one after it leaves a directory removed then.
 */
export async function seedFixtureLayout(stateDir: string, fixtures = fixtureModelsDir()): Promise<{ ref: string; created: boolean }> {
  const dir = seedLayoutDir(stateDir);
  const layout = new OciLayout(dir);
  await layout.init();
  const work = seedWorkDir(stateDir);
  // Before 2026-11 the work directory was <layout>/seed-work: removed from layouts seeded then.
  const legacyWork = join(dir, 'seed-work');
  if ((await layout.tags()).has(SEED_TAG)) {
    await Promise.all([rm(work, { recursive: true, force: true }), rm(legacyWork, { recursive: true, force: true })]);
    return { ref: seedRef(stateDir), created: false };
  }
  const cnn = join(fixtures, 'mnist-cnn.onnx');
  const mlp = join(fixtures, 'mnist-mlp.onnx');
  if (!existsSync(cnn) || !existsSync(mlp)) {
    throw new EdgevolveError('E_CONFIG_INVALID', `daemon.seedFixtures: the bundled fixture models are not in ${fixtures} (mnist-cnn.onnx, mnist-mlp.onnx); configure daemon.models instead`, {
      context: { fixtures },
    });
  }
  await mkdir(work, { recursive: true });
  const mlpInt8 = join(work, 'mnist-mlp-int8.onnx');
  if (!existsSync(mlpInt8)) {
    // Loaded only when seeding: the compression passes are not part of the running daemon's footprint.
    const { quantizeDynamic, DEFAULT_DYNAMIC_OPTIONS } = await import('../compress/quantize/dynamic.ts');
    const { model } = await readModelFile(mlp);
    await writeModelFile(mlpInt8, quantizeDynamic(model, DEFAULT_DYNAMIC_OPTIONS).model);
  }
  await pushArtifact(
    layout,
    {
      name: SEED_MODEL,
      version: SEED_TAG,
      task: 'image-classification',
      labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      variants: [
        // Accuracies: top-1 on the 2,000 held-out MNIST digits (test/fixtures/models/mnist-fixtures.json).
        { name: 'cnn', modelPath: cnn, precision: 'fp32', accuracy: 0.984 },
        { name: 'mlp-int8', modelPath: mlpInt8, precision: 'int8' },
      ],
    },
    SEED_TAG,
  );
  await Promise.all([rm(work, { recursive: true, force: true }), rm(legacyWork, { recursive: true, force: true })]);
  return { ref: seedRef(stateDir), created: true };
}

/** Where the embedded default keeps a ready KServe v2 request for `curl -d @file` (in the state directory: the layout holds only OCI content). */
export function sampleRequestPath(stateDir: string): string {
  return join(stateDir, 'sample-request.json');
}

/**
 * Writes a KServe v2 JSON request holding the first held-out MNIST digit (its label in
 * the request id), so the ready line the daemon prints can be pasted as it is.
 */
export async function writeSampleRequest(stateDir: string, fixtures = fixtureModelsDir()): Promise<{ path: string; label: number }> {
  const dataDir = resolve(fixtures, '..', 'data', 'mnist-test');
  const images = await readNpy(join(dataDir, 'input.npy'));
  const labels = await readNpy(join(dataDir, 'labels.npy'));
  const pixels = Array.from((images.data as Float32Array).subarray(0, 28 * 28), (v) => Math.round(v * 1000) / 1000);
  const label = Number((labels.data as BigInt64Array)[0]);
  const path = sampleRequestPath(stateDir);
  await writeFileAtomic(path, JSON.stringify({ id: `mnist-digit-labelled-${label}`, inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels }] }));
  return { path, label };
}
