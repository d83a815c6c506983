import { describe, expect, it } from 'vitest';
import { rolloutTargets, versionOfRef, type RolloutCandidate } from '../../../src/coevolution/cloud/rollout.ts';
import { codeOf } from '../../helpers/error-code.ts';

const device = (id: string, version: string | null, extra: Partial<RolloutCandidate> = {}): RolloutCandidate => ({ fleet: 'f1', device: id, status: 'online', model: 'student', version, ...extra });

describe('rolloutTargets', () => {
  it('takes the online devices on the most common version and says why it skipped the others', () => {
    const fleet = [
      device('d', '1.0.0'), device('a', '1.0.0'), device('b', '0.9.0'), device('c', '1.1.0'),
      device('e', '1.0.0', { status: 'offline' }), device('f', null), device('g', '1.0.0', { model: 'other' }), device('h', '1.0.0', { fleet: 'f2' }),
    ];
    const targets = rolloutTargets(fleet, { fleet: 'f1', model: 'student', newVersion: '1.1.0' });
    expect(targets.devices).toEqual(['a', 'd']);
    expect(targets.previousVersion).toBe('1.0.0');
    expect(Object.fromEntries(targets.skipped.map((s) => [s.device, s.reason]))).toEqual({
      b: 'on 0.9.0, not the baseline 1.0.0', c: 'already on 1.1.0', e: 'offline', f: 'has reported no version yet', g: 'serves other',
    });
  });

  it('uses the given baseline, and refuses with E_COEVO_INVALID when no device can take the version', () => {
    expect(rolloutTargets([device('a', '1.0.0'), device('b', '0.9.0')], { fleet: 'f1', newVersion: '1.1.0', previousVersion: '0.9.0' }).devices).toEqual(['b']);
    expect(codeOf(() => rolloutTargets([device('a', '1.1.0')], { fleet: 'f1', newVersion: '1.1.0' }))).toBe('E_COEVO_INVALID');
    expect(codeOf(() => rolloutTargets([device('a', '1.0.0')], { fleet: 'f1', newVersion: '1.1.0', previousVersion: '0.1.0' }))).toBe('E_COEVO_INVALID');
  });
});

describe('versionOfRef', () => {
  it('is the tag of a registry or layout reference, undefined for a digest or no tag', () => {
    expect(versionOfRef('localhost:5000/models/student:1.1.0')).toBe('1.1.0');
    expect(versionOfRef('oci-layout:/tmp/x:1.2.0')).toBe('1.2.0');
    expect(versionOfRef(`localhost:5000/models/student@sha256:${'a'.repeat(64)}`)).toBeUndefined();
    expect(versionOfRef('localhost:5000/models/student')).toBeUndefined();
  });
});
