import { describe, expect, it } from 'vitest';
import { assertLocalVariantTrusted, type LocalProvenance } from '../../../src/daemon/local-provenance.ts';
import type { VersionRecord } from '../../../src/store/index.ts';

const MODEL = `sha256:${'a'.repeat(64)}`;
const local: VersionRecord = {
  id: 2,
  name: 'm',
  version: '1.0.0',
  variant: 'opt-int8-dynamic-12345678',
  source: `local-optimize:sha256:${'b'.repeat(64)}`,
  indexDigest: `sha256:${'c'.repeat(64)}`,
  manifestDigest: `sha256:${'c'.repeat(64)}`,
  modelDigest: MODEL,
  configDigest: `sha256:${'d'.repeat(64)}`,
  signed: false,
  pulledAt: 0,
};
const provenance: LocalProvenance = {
  name: 'm',
  manifestDigest: local.manifestDigest,
  modelDigest: MODEL,
  parentManifest: `sha256:${'b'.repeat(64)}`,
  parentIndex: `sha256:${'e'.repeat(64)}`,
  parentSigned: true,
  method: 'int8-dynamic',
  options: '{}',
  builtAt: 0,
};
const refused = (why: RegExp) => expect.objectContaining({ code: 'E_LOCAL_VARIANT_UNTRUSTED', message: expect.stringMatching(why) as unknown }) as Error;

describe('assertLocalVariantTrusted: when a variant built on the device may deploy', () => {
  it('under requireSignature: only with a provenance row naming its bytes and a signed parent', () => {
    expect(() => assertLocalVariantTrusted(local, provenance, true)).not.toThrow();
    expect(() => assertLocalVariantTrusted(local, undefined, true)).toThrow(refused(/no provenance record/));
    expect(() => assertLocalVariantTrusted(local, { ...provenance, parentSigned: false }, true)).toThrow(refused(/not signed/));
    expect(() => assertLocalVariantTrusted(local, { ...provenance, modelDigest: `sha256:${'f'.repeat(64)}` }, true)).toThrow(refused(/names model sha256:f+, not the stored/));
  });
  it('without the policy: unsigned parents and missing rows are accepted, a row naming other bytes is not', () => {
    expect(() => assertLocalVariantTrusted(local, undefined, false)).not.toThrow();
    expect(() => assertLocalVariantTrusted(local, { ...provenance, parentSigned: false }, false)).not.toThrow();
    expect(() => assertLocalVariantTrusted(local, { ...provenance, modelDigest: `sha256:${'f'.repeat(64)}` }, false)).toThrow(refused(/names model/));
  });
  it('pulled and signed versions are not its concern', () => {
    expect(() => assertLocalVariantTrusted({ ...local, source: 'oci-layout:/x' }, undefined, true)).not.toThrow();
    expect(() => assertLocalVariantTrusted({ ...local, signed: true }, undefined, true)).not.toThrow();
  });
});
