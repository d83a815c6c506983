import { describe, expect, it } from 'vitest';
import { rollbackPayloadSchema } from '../../../src/control/schemas.ts';
import { rollbackTarget } from '../../../src/daemon/rollback-target.ts';
import type { VersionRecord } from '../../../src/store/index.ts';

function version(id: number, v: string, variant: string, source = 'oci-layout:/srv/m'): VersionRecord {
  return {
    id,
    name: 'm',
    version: v,
    variant,
    source,
    indexDigest: `sha256:${'i'.repeat(63)}${id}`,
    manifestDigest: `sha256:${id}${'0'.repeat(63)}`,
    modelDigest: `sha256:${'m'.repeat(63)}${id}`,
    configDigest: `sha256:${'c'.repeat(63)}${id}`,
    signed: false,
    pulledAt: id,
  };
}

// 1.0.0 pulled (fp32), then built on the device from it (same version string), then 2.0.0.
const fp32 = version(1, '1.0.0', 'fp32');
const local = version(2, '1.0.0', 'opt-int8-dynamic-1a2b3c4d', `local-optimize:${fp32.manifestDigest}`);
const v2 = version(3, '2.0.0', 'fp32');
const stored = [fp32, local, v2];

describe('rollbackTarget: the exact variant a rollback toVersion means', () => {
  it('without variant: the variant of that version that served last, not the first one stored', () => {
    // History newest first: 2.0.0 now, the local variant before it, fp32 before that.
    expect(rollbackTarget({ name: 'm', toVersion: '1.0.0' }, stored, [{ versionId: 3 }, { versionId: 2 }, { versionId: 1 }])).toBe(local);
    expect(rollbackTarget({ name: 'm', toVersion: '1.0.0' }, stored, [{ versionId: 3 }, { versionId: 1 }, { versionId: 2 }])).toBe(fp32);
  });

  it('with variant: exactly that one, whatever served last', () => {
    expect(rollbackTarget({ name: 'm', toVersion: '1.0.0', variant: 'fp32' }, stored, [{ versionId: 3 }, { versionId: 2 }])).toBe(fp32);
    expect(rollbackTarget({ name: 'm', toVersion: '2.0.0' }, stored, [])).toBe(v2);
  });

  it('refuses to guess between variants none of which served, naming them, and names what is stored when nothing matches', () => {
    expect(() => rollbackTarget({ name: 'm', toVersion: '1.0.0' }, stored, [{ versionId: 3 }])).toThrow(
      expect.objectContaining({ code: 'E_CONTROL_INVALID_PAYLOAD', message: expect.stringMatching(/^m 1\.0\.0 has several stored variants \(fp32 sha256:100000000000, opt-int8-dynamic-1a2b3c4d sha256:200000000000\) and none served before: name one with variant$/) as unknown }) as Error,
    );
    expect(() => rollbackTarget({ name: 'm', toVersion: '1.0.0', variant: 'int8' }, stored, [])).toThrow(
      expect.objectContaining({ code: 'E_STORE_NOT_FOUND', message: 'm 1.0.0/int8 is not in the store (stored variants of 1.0.0: fp32, opt-int8-dynamic-1a2b3c4d)' }) as Error,
    );
    expect(() => rollbackTarget({ name: 'm', toVersion: '3.0.0' }, stored, [])).toThrow(expect.objectContaining({ code: 'E_STORE_NOT_FOUND', message: 'm 3.0.0 is not in the store' }) as Error);
  });

  it('the rollback payload takes variant only with toVersion, as a variant name', () => {
    expect(rollbackPayloadSchema.safeParse({ toVersion: '1.0.0', variant: 'opt-int8-dynamic-1a2b3c4d' }).success).toBe(true);
    const alone = rollbackPayloadSchema.safeParse({ variant: 'fp32' });
    expect(alone.success).toBe(false);
    expect(alone.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['variant: variant needs toVersion']);
    expect(rollbackPayloadSchema.safeParse({ toVersion: '1.0.0', variant: '../x' }).success).toBe(false);
  });
});
