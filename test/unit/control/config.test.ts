/** The control config section: defaults, the retention/replay rule, per-type timeouts. */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/index.ts';
import { controlConfigSchema, controlSettings } from '../../../src/control/index.ts';

describe('control config', () => {
  it('defaults to signed commands only, a 64 KiB cap and type timeouts', () => {
    const settings = controlSettings(configSchema.parse({}).control);
    expect(settings).toMatchObject({ trustBrokerAcl: false, maxCommandBytes: 65536, maxAgeMs: 3_600_000, maxClockSkewMs: 300_000, fleetWide: true });
    expect(settings.timeoutMs.ping).toBe(10_000);
    expect(settings.timeoutMs.deploy).toBe(1_800_000);
  });

  it('overrides one type timeout and keeps the others', () => {
    const settings = controlSettings(controlConfigSchema.parse({ timeoutSeconds: { deploy: 60 } }));
    expect(settings.timeoutMs.deploy).toBe(60_000);
    expect(settings.timeoutMs.optimize).toBe(3_600_000);
  });

  it('refuses a retention shorter than the replay window, naming retentionHours', () => {
    const parsed = controlConfigSchema.safeParse({ retentionHours: 1, maxCommandAgeSeconds: 3600 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['retentionHours']);
  });

  it('refuses unknown keys and unknown command types in timeoutSeconds', () => {
    expect(controlConfigSchema.safeParse({ trustBrokerACL: true }).success).toBe(false);
    expect(controlConfigSchema.safeParse({ timeoutSeconds: { exec: 5 } }).success).toBe(false);
  });
});
