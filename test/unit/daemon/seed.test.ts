import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sampleRequestPath, seedFixtureLayout, seedLayoutDir, seedWorkDir, writeSampleRequest } from '../../../src/daemon/seed.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

describe('seedFixtureLayout: the embedded default\'s OCI layout holds only OCI content', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-seed-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('leaves oci-layout, index.json and content-addressed blobs only, and no work directory', async () => {
    expect((await seedFixtureLayout(tmp.dir)).created).toBe(true);
    await writeSampleRequest(tmp.dir);
    const layout = seedLayoutDir(tmp.dir);
    const files = await filesUnder(layout);
    const blobs = files.filter((f) => f.startsWith('blobs/'));
    expect(files.filter((f) => !f.startsWith('blobs/'))).toEqual(['index.json', 'oci-layout']);
    expect(blobs.length).toBeGreaterThan(0);
    for (const blob of blobs) {
      expect(blob).toMatch(/^blobs\/sha256\/[0-9a-f]{64}$/);
      expect(createHash('sha256').update(await readFile(join(layout, blob))).digest('hex')).toBe(blob.slice('blobs/sha256/'.length));
    }
    expect(existsSync(seedWorkDir(tmp.dir))).toBe(false);
    expect(sampleRequestPath(tmp.dir).startsWith(layout)).toBe(false);
  });

  it('a later start removes a work directory left by a crash after the push, and one left inside the layout by older versions', async () => {
    await seedFixtureLayout(tmp.dir);
    const legacy = join(seedLayoutDir(tmp.dir), 'seed-work');
    await mkdir(legacy);
    await writeFile(join(legacy, 'mnist-mlp-int8.onnx'), 'stale');
    await mkdir(seedWorkDir(tmp.dir));
    expect((await seedFixtureLayout(tmp.dir)).created).toBe(false);
    expect(existsSync(legacy)).toBe(false);
    expect(existsSync(seedWorkDir(tmp.dir))).toBe(false);
  });
});
