import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.ts';
import { parseSystemdMemoryMax, systemdMemoryMaxBytes } from '../../../src/config/systemd-size.ts';

describe('systemd MemoryMax= syntax', () => {
  it('reads sizes with base-1024 suffixes, percentages and infinity', () => {
    expect(parseSystemdMemoryMax('1073741824')).toEqual({ bytes: 1073741824 });
    expect(parseSystemdMemoryMax('512M')).toEqual({ bytes: 512 * 1024 ** 2 });
    expect(parseSystemdMemoryMax('1.5G')).toEqual({ bytes: 1.5 * 1024 ** 3 });
    expect(parseSystemdMemoryMax('2T')).toEqual({ bytes: 2 * 1024 ** 4 });
    expect(parseSystemdMemoryMax('60%')).toEqual({ percent: 60 });
    expect(parseSystemdMemoryMax('infinity')).toBe('infinity');
  });

  it('refuses what systemd would not take, and 0 (the service could not run)', () => {
    for (const bad of ['', '1g', '1 G', '1GB', '-1G', '0', '0%', '101%', 'max', 'Infinity', '1.G', '50%%']) expect(parseSystemdMemoryMax(bad), bad).toBeUndefined();
  });

  it('turns a percentage into bytes of the physical memory', () => {
    expect(systemdMemoryMaxBytes({ percent: 75 }, 8 * 1024 ** 3)).toBe(6 * 1024 ** 3);
    expect(systemdMemoryMaxBytes({ bytes: 1234 }, 8 * 1024 ** 3)).toBe(1234);
    expect(systemdMemoryMaxBytes('infinity', 8 * 1024 ** 3)).toBe(Infinity);
  });

  it('service.memoryMax in the config schema: optional, validated with a message naming the syntax', () => {
    expect(configSchema.parse({}).service.memoryMax).toBeUndefined();
    expect(configSchema.parse({ service: { memoryMax: '768M' } }).service.memoryMax).toBe('768M');
    const result = configSchema.safeParse({ service: { memoryMax: '768 MB' } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['service', 'memoryMax']);
    expect(result.error?.issues[0]?.message).toMatch(/not a systemd MemoryMax= value/);
  });
});
