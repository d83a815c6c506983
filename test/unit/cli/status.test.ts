import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgevolve } from '../../helpers/cli.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

describe('edgevolve status where no daemon ever ran', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await makeTempDir('edgevolve-status-');
  });
  afterAll(() => tmp.cleanup());

  it('says so, and creates nothing: no store, no state directory', async () => {
    const stateDir = join(tmp.dir, 'state');
    const text = await edgevolve('status', '--state-dir', stateDir);
    expect(text).toMatchObject({ code: 0, stdout: `daemon: never ran with state dir ${stateDir}\n` });
    const json = await edgevolve('status', '--state-dir', stateDir, '--json');
    expect(JSON.parse(json.stdout)).toEqual({ stateDir, daemon: null, models: [] });
    expect(await readdir(tmp.dir)).toEqual([]);
  });
});
