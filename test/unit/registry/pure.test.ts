import { describe, expect, it } from 'vitest';
import { isEdgevolveError } from '../../../src/errors/index.ts';
import {
  MEDIA_TYPE,
  Semaphore,
  backoffDelay,
  manifestBytes,
  parseChallenge,
  parseManifest,
  parseRef,
  selectVariant,
  withRetry,
  type VariantInfo,
} from '../../../src/registry/index.ts';
import { EdgevolveError } from '../../../src/errors/index.ts';

const D = (c: string): `sha256:${string}` => `sha256:${c.repeat(64)}`;

describe('parseRef', () => {
  it('parses registry references with port, nested repository, tag or digest', () => {
    expect(parseRef('127.0.0.1:5000/models/ocr/det:1.2.0')).toMatchObject({ kind: 'registry', registry: '127.0.0.1:5000', repository: 'models/ocr/det', reference: '1.2.0' });
    expect(parseRef(`ghcr.io/acme/det@${D('a')}`)).toMatchObject({ registry: 'ghcr.io', repository: 'acme/det', reference: D('a') });
    expect(parseRef('localhost/det')).toMatchObject({ reference: 'latest' });
  });
  it('parses oci-layout references with a tag, a digest or neither', () => {
    expect(parseRef('oci-layout:/var/lib/m:v1')).toMatchObject({ kind: 'layout', dir: '/var/lib/m', reference: 'v1' });
    expect(parseRef(`oci-layout:./m@${D('b')}`)).toMatchObject({ dir: './m', reference: D('b') });
    expect(parseRef('oci-layout:/m')).toMatchObject({ dir: '/m', reference: 'latest' });
  });
  it('refuses references without an explicit registry host or with invalid parts', () => {
    for (const bad of ['library/ubuntu:22.04', 'det:v1', '127.0.0.1:5000/Upper/case', '127.0.0.1:5000/x@sha256:short', '127.0.0.1:5000/x:bad tag']) {
      expect(() => parseRef(bad), bad).toThrow(expect.objectContaining({ code: 'E_REGISTRY_REF' }) as Error);
    }
  });
});

describe('selectVariant', () => {
  const variant = (name: string, extra: Partial<VariantInfo> = {}): VariantInfo => ({
    name,
    descriptor: { mediaType: MEDIA_TYPE.ociManifest, digest: D('c'), size: 1 },
    precision: name,
    arch: 'any',
    sparsity: undefined,
    accuracy: undefined,
    minMemoryBytes: undefined,
    accelerators: [],
    cpuFeatures: [],
    ...extra,
  });
  const pi = { arch: 'arm64', availableMemoryBytes: 1_000_000_000, preferredPrecisions: ['int8', 'fp16', 'fp32'], basis: [], accelerators: [], cpuFeatures: ['neon'] };

  it('prefers the precision the device runs best and explains every rejection', () => {
    const result = selectVariant([variant('fp32'), variant('int8'), variant('fp16', { arch: 'amd64' })], pi);
    expect(result.chosen.name).toBe('int8');
    expect(result.rejected).toEqual([
      { name: 'fp16', reason: 'built for amd64, device is arm64' },
      { name: 'fp32', reason: 'ranked below int8: precision fp32 ranks below int8 here' },
    ]);
    expect(result.reason).toContain('int8 is choice 1 of int8 > fp16 > fp32');
  });
  it('drops variants over the memory budget, below the accuracy budget or needing a missing accelerator', () => {
    const result = selectVariant(
      [
        variant('int8', { minMemoryBytes: 600_000_000 }),
        variant('fp16', { accuracy: 0.8 }),
        variant('trt', { precision: 'int8', accelerators: ['tensorrt'] }),
        variant('fp32', { accuracy: 0.95 }),
      ],
      pi,
      { maxMemoryBytes: 500_000_000, minAccuracy: 0.9 },
    );
    expect(result.chosen.name).toBe('fp32');
    expect(result.rejected.map((r) => r.reason)).toEqual([expect.stringContaining('memory'), expect.stringContaining('accuracy'), 'needs tensorrt, not present']);
  });
  it('prefers the accelerator-specific build when the device has the accelerator', () => {
    const result = selectVariant([variant('int8'), variant('trt', { precision: 'int8', accelerators: ['tensorrt'] })], { ...pi, accelerators: ['tensorrt'] });
    expect(result.chosen.name).toBe('trt');
  });
  it('fails with E_REGISTRY_NO_VARIANT listing the reasons when nothing fits', () => {
    expect(() => selectVariant([variant('fp32', { arch: 'amd64' })], pi)).toThrow(
      expect.objectContaining({ code: 'E_REGISTRY_NO_VARIANT', message: expect.stringContaining('fp32: built for amd64') as string }) as Error,
    );
  });
});

describe('parseManifest', () => {
  const manifest = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest, config: { mediaType: MEDIA_TYPE.modelConfig, digest: D('1'), size: 2 }, layers: [] };

  it('verifies the digest of the exact bytes', () => {
    const bytes = manifestBytes(manifest as never);
    expect(parseManifest(bytes).kind).toBe('manifest');
    expect(() => parseManifest(bytes, { expected: D('0') })).toThrow(expect.objectContaining({ code: 'E_REGISTRY_DIGEST_MISMATCH' }) as Error);
  });
  it('refuses a document whose media type disagrees with the one it was served as', () => {
    expect(() => parseManifest(manifestBytes(manifest as never), { contentType: MEDIA_TYPE.ociIndex })).toThrow(
      expect.objectContaining({ code: 'E_REGISTRY_MANIFEST_INVALID' }) as Error,
    );
  });
  it('refuses oversized input before parsing, malformed digests, and foreign-layer urls', () => {
    expect(() => parseManifest(Buffer.alloc(100, 32), { maxBytes: 10 })).toThrow(expect.objectContaining({ code: 'E_REGISTRY_TOO_LARGE' }) as Error);
    const badDigest = { ...manifest, layers: [{ mediaType: MEDIA_TYPE.onnxLayer, digest: 'sha256:../../etc/passwd', size: 1 }] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(badDigest)))).toThrow(expect.objectContaining({ code: 'E_REGISTRY_MANIFEST_INVALID' }) as Error);
    const foreign = { ...manifest, layers: [{ mediaType: MEDIA_TYPE.onnxLayer, digest: D('2'), size: 1, urls: ['http://evil/x'] }] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(foreign)))).toThrow(expect.objectContaining({ code: 'E_REGISTRY_MANIFEST_INVALID' }) as Error);
  });
  it('writes annotations in sorted key order (what skopeo re-serializes to)', () => {
    const text = manifestBytes({ ...manifest, annotations: { b: '1', a: '2' } } as never).toString();
    expect(text.indexOf('"a"')).toBeLessThan(text.indexOf('"b"'));
  });
});

describe('parseChallenge', () => {
  it('parses a bearer challenge with quoted, comma-containing parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm="x"')?.scheme).toBe('basic');
  });
});

describe('retry', () => {
  it('full jitter stays within the exponential ceiling and the cap', () => {
    const options = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, options, { random: () => 0.999 })).toBe(99);
    expect(backoffDelay(3, options, { random: () => 0.5 })).toBe(400);
    expect(backoffDelay(9, options, { random: () => 0.999 })).toBe(999);
    expect(backoffDelay(9, options, { random: () => 0 })).toBe(0);
  });
  it('retries retryable errors, honours Retry-After, and gives up on the rest at once', async () => {
    const sleeps: number[] = [];
    const clock = { now: () => 0, sleep: (ms: number) => (sleeps.push(ms), Promise.resolve()) };
    let calls = 0;
    const result = await withRetry(
      () => {
        calls++;
        if (calls === 1) throw new EdgevolveError('E_REGISTRY_UNREACHABLE', '503', { context: { retryAfterMs: 2000 } });
        if (calls === 2) throw new EdgevolveError('E_REGISTRY_UNREACHABLE', 'reset');
        return Promise.resolve('ok');
      },
      { clock, random: { random: () => 0.5 }, options: { attempts: 5, baseDelayMs: 100, maxDelayMs: 10_000 } },
    );
    expect(result).toBe('ok');
    expect(sleeps).toEqual([2000, 100]);
    let authCalls = 0;
    await expect(
      withRetry(
        () => {
          authCalls++;
          throw new EdgevolveError('E_REGISTRY_AUTH', 'denied');
        },
        { clock, random: { random: () => 0.5 }, options: { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 } },
      ),
    ).rejects.toSatisfy((e) => isEdgevolveError(e, 'E_REGISTRY_AUTH'));
    expect(authCalls).toBe(1);
  });
  it('Semaphore never runs more than its limit at once', async () => {
    const gate = new Semaphore(3);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        gate.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, 2));
          active--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });
});
