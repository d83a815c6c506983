import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCpuIsa } from '../../../src/hardware/index.ts';
import { resolveReduceRange } from '../../../src/compress/methods.ts';
import { nodeFiles } from '../../../src/host/files.ts';

const HOSTS = path.join('test', 'fixtures', 'hosts');

describe('readCpuIsa', () => {
  it('reads the ARM Features of a recorded Raspberry Pi 5, so reduce-range auto keeps 8-bit weights there', async () => {
    const isa = await readCpuIsa(nodeFiles(path.resolve(HOSTS, 'rpi5')), 'arm64');
    expect(isa.flags).toContain('asimddp');
    expect(resolveReduceRange('auto', isa)).toBe(false);
  });

  it('returns no flags, not an error, when /proc/cpuinfo is missing', async () => {
    const isa = await readCpuIsa(nodeFiles(path.resolve(HOSTS, 'does-not-exist')), 'x64');
    expect(isa).toEqual({ arch: 'x64', flags: [] });
  });
});
