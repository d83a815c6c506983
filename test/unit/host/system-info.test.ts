import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import si from 'systeminformation';
import { describe, expect, it } from 'vitest';
import { parseMeminfo, parseOsRelease, systemInfo } from '../../../src/host/system-info.ts';
import { HOSTS_DIR } from '../hardware/fixture-host.ts';

const recorded = (path: string): string => readFileSync(join(HOSTS_DIR, 'x86-epyc-vm', path), 'utf8');

describe('memory and OS facts without systeminformation on Linux', () => {
  it('parses a recorded /proc/meminfo to the total and swap systeminformation recorded on the same machine', () => {
    const system = JSON.parse(recorded('system.json')) as { memory: { totalBytes: number; swapTotalBytes: number } };
    const memory = parseMeminfo(recorded('proc/meminfo'));
    expect(memory).toMatchObject({ totalBytes: system.memory.totalBytes, swapTotalBytes: 0, swapFreeBytes: 0 });
    expect(memory?.availableBytes).toBe(22824196 * 1024);
  });

  it('falls back to free + buffers + cache on kernels without MemAvailable, and to undefined without MemTotal', () => {
    const old = 'MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\nSReclaimable: 5 kB\nSwapTotal: 50 kB\nSwapFree: 40 kB\n';
    expect(parseMeminfo(old)).toEqual({ totalBytes: 1000 * 1024, availableBytes: 425 * 1024, swapTotalBytes: 50 * 1024, swapFreeBytes: 40 * 1024 });
    expect(parseMeminfo('')).toBeUndefined();
  });

  it('reads the distribution and release from os-release, lsb-release before it, by systeminformation rules', () => {
    expect(parseOsRelease(recorded('etc/os-release'))).toEqual({ distro: 'Debian GNU/Linux', release: '12' });
    const ubuntu = 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\n';
    expect(parseOsRelease(ubuntu)).toEqual({ distro: 'Ubuntu', release: '22.04.4 LTS' });
    expect(parseOsRelease('ID=openwrt\nVERSION_ID="23.05"\n')).toEqual({ distro: 'unknown', release: '23.05' });
  });

  it.runIf(process.platform === 'linux')('answers as systeminformation does on this machine', async () => {
    const [memory, mem, osInfo, reference] = await Promise.all([systemInfo.memory(), si.mem(), systemInfo.os(), si.osInfo()]);
    expect(memory.totalBytes).toBe(mem.total);
    expect(memory.swapTotalBytes).toBe(mem.swaptotal);
    // Available memory moves between the two reads; within 64 MiB of each other.
    expect(Math.abs(memory.availableBytes - mem.available)).toBeLessThan(64 * 1024 ** 2);
    expect(osInfo).toEqual({ platform: reference.platform, distro: reference.distro, release: reference.release, kernel: reference.kernel, arch: reference.arch });
  });
});
