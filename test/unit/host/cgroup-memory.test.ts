import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCgroupV2Path, parseMemoryMax, readCgroupMemoryLimit } from '../../../src/host/cgroup-memory.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

describe('the cgroup memory limit', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-cgroup-');
  });
  afterEach(() => tmp.cleanup());

  const put = async (path: string, text: string): Promise<void> => {
    await mkdir(join(tmp.dir, path, '..'), { recursive: true });
    await writeFile(join(tmp.dir, path), text);
  };

  it('reads memory.max of the cgroup v2 path /proc/self/cgroup names (as under systemd)', async () => {
    await put('proc/self/cgroup', '0::/system.slice/edgevolve.service\n');
    await put('sys/fs/cgroup/system.slice/edgevolve.service/memory.max', '536870912\n');
    expect(await readCgroupMemoryLimit(nodeFiles(tmp.dir))).toEqual({ cgroup: '/system.slice/edgevolve.service', limitBytes: 536870912 });
  });

  it('reads max as no limit, and the root cgroup of a container', async () => {
    await put('proc/self/cgroup', '0::/\n');
    await put('sys/fs/cgroup/memory.max', 'max\n');
    expect(await readCgroupMemoryLimit(nodeFiles(tmp.dir))).toEqual({ cgroup: '/', limitBytes: Infinity });
  });

  it('is undefined under cgroup v1 only, or where no memory.max exists (the host root cgroup, not Linux)', async () => {
    expect(await readCgroupMemoryLimit(nodeFiles(tmp.dir))).toBeUndefined();
    await put('proc/self/cgroup', '4:memory:/system.slice/edgevolve.service\n1:cpu:/\n');
    expect(await readCgroupMemoryLimit(nodeFiles(tmp.dir))).toBeUndefined();
    await put('proc/self/cgroup', '4:memory:/x\n0::/user.slice\n');
    expect(await readCgroupMemoryLimit(nodeFiles(tmp.dir))).toBeUndefined();
  });

  it('parses only what the kernel writes', () => {
    expect(parseCgroupV2Path('12:pids:/a\n0::/system.slice/x.service\n')).toBe('/system.slice/x.service');
    expect(parseCgroupV2Path('0::\n')).toBeUndefined();
    expect(parseMemoryMax('4096\n')).toBe(4096);
    expect(parseMemoryMax('max')).toBe(Infinity);
    expect(parseMemoryMax('1G')).toBeUndefined();
  });
});
