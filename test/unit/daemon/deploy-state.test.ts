import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeployStateStore, emptyDeployState } from '../../../src/daemon/index.ts';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

describe('DeployStateStore: the persisted trial marker', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(() => tmp.cleanup());

  it('round-trips a marker and removes the file when nothing is left to remember', async () => {
    const store = new DeployStateStore(tmp.dir);
    expect(await store.get('m')).toEqual(emptyDeployState());
    const trial = { candidateId: 2, candidateManifest: 'sha256:ab', previousId: 1, reason: 'r', startedAt: 5, entries: 1, phase: 'trial' as const };
    await store.put('m', { ...emptyDeployState(), trial });
    expect((await store.get('m')).trial).toEqual(trial);
    expect(await store.names()).toEqual(['m']);
    await store.put('m', emptyDeployState());
    expect(await store.names()).toEqual([]);
  });

  it('keeps only the last 20 failed versions', async () => {
    const store = new DeployStateStore(tmp.dir);
    const failed = Array.from({ length: 30 }, (_, i) => ({ manifestDigest: `sha256:${i}`, reason: 'x', at: i }));
    await store.put('m', { ...emptyDeployState(), failed });
    const saved = JSON.parse(await readFile(join(tmp.dir, 'deploy', 'm.json'), 'utf8')) as { failed: { at: number }[] };
    expect(saved.failed.map((f) => f.at)).toEqual(Array.from({ length: 20 }, (_, i) => i + 10));
  });

  it('a damaged file is a typed error naming the file, not a crash or a silent reset', async () => {
    await mkdir(join(tmp.dir, 'deploy'));
    await writeFile(join(tmp.dir, 'deploy', 'm.json'), '{"trial": {"candidateId": "x"}}');
    const err = await new DeployStateStore(tmp.dir).get('m').catch((e: unknown) => e);
    expect(isEdgevolveError(err, 'E_DEPLOY_STATE_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/deploy\/m\.json: trial\.candidateId/);
  });
});
