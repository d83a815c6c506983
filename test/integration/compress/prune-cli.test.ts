/**
 * The pruning flags of `edgevolve compress` (--ratio, --sparsity, --scope, --never-prune)
 * in a child process, as a user runs them, on the committed mnist-teacher fixture.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const TEACHER = path.join(root, 'test/fixtures/models/mnist-teacher.onnx');
const dir = mkdtempSync(path.join(tmpdir(), 'edgevolve-prune-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Change {
  target: string;
  action: string;
  stats?: Record<string, number>;
}
interface Report {
  ok: boolean;
  passes: { pass: string; changes: Change[]; stats: Record<string, number> }[];
  error?: { code: string; message: string };
}

/** Runs the command with --json; stdout is one JSON document whether it succeeds or not. */
async function compress(args: string[]): Promise<{ code: number; report: Report }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/index.ts'), 'compress', TEACHER, ...args, '--json'], {
      cwd: root,
      maxBuffer: 64 << 20,
    });
    return { code: 0, report: JSON.parse(stdout) as Report };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, report: JSON.parse(e.stdout) as Report };
  }
}

function pass(report: Report, name: string): Report['passes'][number] {
  const found = report.passes.find((p) => p.pass === name);
  if (found === undefined) throw new Error(`no ${name} pass in the report`);
  return found;
}

describe('edgevolve compress pruning flags', () => {
  it('--ratio 0.3 with --never-prune keeps the named layer and prunes the other hidden layer', async () => {
    const { code, report } = await compress(['-o', path.join(dir, 'p.onnx'), '--method', 'prune-channels', '--ratio', '0.3', '--never-prune', 'fc1']);
    expect(code).toBe(0);
    const changes = new Map(pass(report, 'prune-channels').changes.map((c) => [c.target, c]));
    expect(changes.get('fc1')?.action).toBe('kept');
    // fc2's 768 outputs lose 30% (rounded down to whole channels); fc3 feeds the graph output.
    expect(changes.get('fc2')?.stats).toMatchObject({ channelsBefore: 768, channelsAfter: 538 });
    expect(changes.get('fc3')?.action).toBe('kept');
  });

  it('--sparsity 0.5 --scope global zeroes half of the weights', async () => {
    const { code, report } = await compress(['-o', path.join(dir, 'u.onnx'), '--method', 'prune-unstructured', '--sparsity', '0.5', '--scope', 'global']);
    expect(code).toBe(0);
    const stats = pass(report, 'prune-unstructured').stats;
    expect(stats.weightZeros).toBe(stats.weightElements! / 2);
    expect(stats.deflatedBytesAfter).toBeLessThan(stats.deflatedBytesBefore! * 0.7);
  });

  it('refuses a pruning flag on a method it does not belong to, naming it', async () => {
    const { code, report } = await compress(['-o', path.join(dir, 'x.onnx'), '--method', 'int8-dynamic', '--ratio', '0.3']);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.error?.code).toBe('E_COMPRESS_METHOD');
    expect(report.error?.message).toContain('--ratio');
  });
});
