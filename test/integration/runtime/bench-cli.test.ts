import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeValueInfo } from '../../../src/onnx/index.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function edgevolve(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('edgevolve bench (the command line contract)', () => {
  let dir: string;
  let model: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgevolve-bench-cli-'));
    model = join(dir, 'sigmoid.onnx');
    await writeFile(
      model,
      encodeModel(makeModel({ graph: makeGraph({ name: 'g', nodes: [makeNode('Sigmoid', ['x'], ['y'])], inputs: [makeValueInfo('x', DataType.FLOAT, ['n', 3, 'h', 'w'])], outputs: [makeValueInfo('y', DataType.FLOAT, ['n', 3, 'h', 'w'])] }) })),
    );
    await writeFile(join(dir, 'garbage.onnx'), 'not a model');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--json prints exactly one JSON document with the measurements and exits 0', () => {
    const r = edgevolve(['bench', model, '--iterations', '7', '--warmup', '1', '--shape', 'x=2x3x8x8', '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { ok: boolean; latency: { count: number }; samplesMs: number[]; inputs: { dims: number[] }[] };
    expect(doc.ok).toBe(true);
    expect(doc.latency.count).toBe(7);
    expect(doc.samplesMs).toHaveLength(7);
    expect(doc.inputs[0]?.dims).toEqual([2, 3, 8, 8]);
  });

  it('exits 1 with the child\'s error code for a file that is not a model', () => {
    const r = edgevolve(['bench', join(dir, 'garbage.onnx'), '--json']);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; error: { code: string } };
    expect(doc).toMatchObject({ ok: false, error: { code: 'E_RUNTIME_SESSION_CREATE' } });
  });

  it('exits 2 on bad usage without starting a child', () => {
    const r = edgevolve(['bench', model, '--iterations', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--iterations 0: expected a positive integer');
  });
});

describe('edgevolve profile (the command line contract)', () => {
  it('--json --no-measure --no-providers prints one profile document of this machine', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'edgevolve-profile-cli-'));
    try {
      const r = edgevolve(['profile', '--json', '--no-measure', '--no-providers', '--state-dir', stateDir]);
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout) as { version: number; fingerprint: string; cpu: { cores: number }; measured: unknown; storage: { path: string } };
      expect(doc.version).toBe(1);
      expect(doc.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(doc.cpu.cores).toBeGreaterThan(0);
      expect(doc.measured).toBeNull();
      expect(doc.storage.path).toBe(stateDir);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
