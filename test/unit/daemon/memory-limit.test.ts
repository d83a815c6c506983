import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.ts';
import { checkMemoryLimit, memoryLimitEvent, memoryLimitStatus, memoryLimitWarning } from '../../../src/daemon/memory-limit.ts';
import { planReload } from '../../../src/daemon/reload.ts';

const GiB = 1024 ** 3;
const unit = (limitBytes: number) => ({ cgroup: '/system.slice/edgevolve.service', limitBytes });

describe('service.memoryMax against the cgroup memory.max', () => {
  it('matches the limit systemd set from the same value (bytes rounded to pages, a percentage of physical memory)', () => {
    expect(checkMemoryLimit('1G', unit(GiB), 8 * GiB).status).toBe('match');
    // The kernel rounds down to its page size (64 KiB pages on some arm64 kernels).
    expect(checkMemoryLimit('1000000000', unit(999_997_440), 8 * GiB).status).toBe('match');
    expect(checkMemoryLimit('75%', unit(6 * GiB - 4096), 8 * GiB).status).toBe('match');
    expect(checkMemoryLimit('infinity', unit(Infinity), 8 * GiB).status).toBe('match');
  });

  it('is a mismatch when the config was edited but the unit still has the old limit, and the warning says what to do', () => {
    const check = checkMemoryLimit('512M', unit(6 * GiB), 8 * GiB);
    expect(check).toMatchObject({ status: 'mismatch', expectedBytes: 512 * 1024 ** 2, actualBytes: 6 * GiB });
    if (check.status !== 'mismatch') throw new Error('expected a mismatch');
    expect(memoryLimitWarning(check)).toBe('service.memoryMax is 512M (512 MiB) but the cgroup /system.slice/edgevolve.service has memory.max 6144 MiB: run scripts/install.sh again to apply the configured limit');
    expect(checkMemoryLimit('2G', unit(Infinity), 8 * GiB).status).toBe('mismatch');
    expect(checkMemoryLimit('infinity', unit(GiB), 8 * GiB).status).toBe('mismatch');
  });

  it('checks nothing when the key is unset or there is no cgroup v2 limit to read', () => {
    expect(checkMemoryLimit(undefined, unit(GiB), 8 * GiB)).toEqual({ status: 'unconfigured' });
    expect(checkMemoryLimit('1G', undefined, 8 * GiB)).toEqual({ status: 'unknown', configured: '1G' });
  });
});

describe('the check as status and event fields carry it (JSON)', () => {
  it('"no limit" becomes null instead of Infinity, which JSON cannot hold; the event has the warning text', () => {
    const check = checkMemoryLimit('2G', unit(Infinity), 8 * GiB);
    expect(memoryLimitStatus(check)).toEqual({ status: 'mismatch', configured: '2G', expectedBytes: 2 * GiB, actualBytes: null, cgroup: '/system.slice/edgevolve.service' });
    if (check.status !== 'mismatch') throw new Error('expected a mismatch');
    expect(memoryLimitEvent(check)).toEqual({ configured: '2G', expectedBytes: 2 * GiB, actualBytes: null, cgroup: '/system.slice/edgevolve.service', message: memoryLimitWarning(check) });
    expect(memoryLimitStatus({ status: 'unknown', configured: '1G' })).toEqual({ status: 'unknown', configured: '1G' });
  });
});

describe('service.memoryMax on SIGHUP', () => {
  it('is listed among the changes that need a restart (install.sh applies it), not applied', () => {
    const plan = planReload(configSchema.parse({}), configSchema.parse({ service: { memoryMax: '1G' } }));
    expect(plan).toEqual({ applied: [], needsRestart: ['service.memoryMax'] });
  });
});
