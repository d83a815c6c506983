import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemCommands } from '../../../src/host/commands.ts';
import { nodeFiles } from '../../../src/host/files.ts';
import { parseProcStatusMemory, selfProcessMemory } from '../../../src/host/process-memory.ts';

describe('nodeFiles', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'edgevolve-files-'));
    await mkdir(join(root, 'proc/device-tree'), { recursive: true });
    await writeFile(join(root, 'proc/device-tree/model'), 'Board\0');
    await writeFile(join(root, 'proc/cpuinfo'), 'processor\t: 0\n');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads and lists below its root, as absolute machine paths', async () => {
    const files = nodeFiles(root);
    expect(await files.readTextFile('/proc/device-tree/model')).toBe('Board\0');
    expect(await files.listDir('/proc')).toEqual(['cpuinfo', 'device-tree']);
    expect(await files.exists('/proc/cpuinfo')).toBe(true);
  });

  it('answers undefined or false for what is absent, including paths through a file', async () => {
    const files = nodeFiles(root);
    expect(await files.readTextFile('/etc/nv_tegra_release')).toBeUndefined();
    expect(await files.readTextFile('/proc/cpuinfo/nested')).toBeUndefined();
    expect(await files.listDir('/sys/class/thermal')).toBeUndefined();
    expect(await files.exists('/dev/rknpu')).toBe(false);
  });

  it('fails with E_IO naming the path when something is there but cannot be read', async () => {
    await expect(nodeFiles(root).readTextFile('/proc')).rejects.toMatchObject({ code: 'E_IO', context: { path: '/proc', errno: 'EISDIR' } });
  });
});

describe('systemCommands', () => {
  it('returns stdout and exit code 0 of a program that succeeds', async () => {
    expect(await systemCommands.runCommand('sh', ['-c', 'echo throttled=0x0'])).toEqual({ exitCode: 0, signal: null, stdout: 'throttled=0x0\n', stderr: '' });
  });

  it('returns a non-zero exit as a result, not a rejection', async () => {
    const result = await systemCommands.runCommand('sh', ['-c', 'echo nope >&2; exit 3']);
    expect(result).toMatchObject({ exitCode: 3, stderr: 'nope\n' });
  });

  it('answers undefined for a program that is not installed', async () => {
    expect(await systemCommands.runCommand('edgevolve-no-such-program', [])).toBeUndefined();
  });

  it('kills a program that outlives its timeout', async () => {
    const result = await systemCommands.runCommand('sleep', ['10'], { timeoutMs: 200 });
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
  });
});

describe('process memory', () => {
  it('parses VmRSS and VmHWM from a status file in bytes', () => {
    expect(parseProcStatusMemory('Name:\tnode\nVmHWM:\t  236100 kB\nVmRSS:\t   42584 kB\n')).toEqual({ residentBytes: 42584 * 1024, peakBytes: 236100 * 1024 });
    expect(parseProcStatusMemory('Name:\tnode\n')).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('resets the high-water mark to the current resident size on Linux', () => {
    let ballast: Uint8Array | undefined = new Uint8Array(64 * 1024 * 1024).fill(1);
    const before = selfProcessMemory.read();
    expect(before.source).toBe('proc-status');
    expect(before.peakBytes).toBeGreaterThanOrEqual(before.residentBytes);
    ballast = undefined;
    expect(ballast).toBeUndefined();
    expect(selfProcessMemory.resetPeak()).toBe(true);
    const after = selfProcessMemory.read();
    // Right after the reset the peak is the resident size of that moment, give or take a few pages.
    expect(Math.abs(after.peakBytes - after.residentBytes)).toBeLessThan(8 * 1024 * 1024);
  });
});
