/**
 * Variant selection wired to the hardware profile: the recorded and written boards of
 * test/fixtures/hosts go through the real probes (collectHardware), and one index of
 * variants is offered to each. onnxruntime's provider list is the one thing injected:
 * the fixtures record files, not what an onnxruntime build on that board reports.
 */
import { describe, expect, it } from 'vitest';
import { collectHardware, type ExecutionProviderStatus, type MicroBenchmarks } from '../../../src/hardware/index.ts';
import { MEDIA_TYPE, selectVariant, selectionProfile, type SelectionHardware, type VariantInfo } from '../../../src/registry/index.ts';
import { fixtureHost, type Board } from '../hardware/fixture-host.ts';

const GiB = 1024 ** 3;
const gib = (n: number): number => Math.round(n * GiB);
const variant = (name: string, precision: string, extra: Partial<VariantInfo> = {}): VariantInfo => ({
  name,
  descriptor: { mediaType: MEDIA_TYPE.ociManifest, digest: `sha256:${'c'.repeat(64)}`, size: 1 },
  precision,
  arch: 'any',
  sparsity: undefined,
  accuracy: undefined,
  minMemoryBytes: undefined,
  accelerators: [],
  cpuFeatures: [],
  ...extra,
});

/** One model version, built the ways a fleet operator would publish it. */
const INDEX: readonly VariantInfo[] = [
  variant('fp32', 'fp32', { accuracy: 0.981, minMemoryBytes: gib(1.2) }),
  variant('fp16', 'fp16', { accuracy: 0.98, minMemoryBytes: gib(4) }),
  variant('int8', 'int8', { accuracy: 0.972, minMemoryBytes: gib(0.4) }),
  variant('int8-dotprod', 'int8', { arch: 'arm64', cpuFeatures: ['dotprod'], accuracy: 0.972, minMemoryBytes: gib(0.4) }),
  variant('int8-vnni', 'int8', { arch: 'amd64', cpuFeatures: ['avx512vnni'], accuracy: 0.974, minMemoryBytes: gib(0.4) }),
  variant('trt-fp16', 'fp16', { arch: 'arm64', accelerators: ['tensorrt'], accuracy: 0.98, minMemoryBytes: gib(1) }),
];

const cpuOnly: ExecutionProviderStatus[] = [{ name: 'cpu', bundled: true, usable: true, reason: null }];
const jetsonProviders: ExecutionProviderStatus[] = [
  ...cpuOnly,
  { name: 'cuda', bundled: false, usable: true, reason: null },
  { name: 'tensorrt', bundled: false, usable: true, reason: null },
];

async function hardware(board: Board, measured: MicroBenchmarks | null = null): Promise<SelectionHardware> {
  const facts = await collectHardware(fixtureHost(board), { stateDir: '/var/lib/edgevolve', arch: board === 'x86-epyc-vm' ? 'x64' : 'arm64' });
  return { ...facts, onnxruntime: { version: '1.30.0', executionProviders: board === 'jetson-orin-nano' ? jetsonProviders : cpuOnly }, measured };
}

describe('variant selection on the fixture hosts', () => {
  it('chooses a different variant of one index per board, each for a stated reason', async () => {
    const chosen: Record<string, string> = {};
    for (const board of ['x86-epyc-vm', 'rpi4', 'rpi5', 'jetson-orin-nano', 'rock5b-rk3588'] as const) {
      const selection = selectVariant(INDEX, selectionProfile(await hardware(board)));
      chosen[board] = selection.chosen.name;
      // Every variant is accounted for: chosen, or rejected with a reason.
      expect(selection.rejected.map((r) => r.name).sort()).toEqual(INDEX.map((v) => v.name).filter((n) => n !== selection.chosen.name).sort());
    }
    expect(chosen).toEqual({
      // AVX2 without VNNI: fp32 first; the VNNI build is rejected for the missing feature.
      'x86-epyc-vm': 'fp32',
      // Cortex-A72: NEON int8 but no dotprod, so the generic int8 build.
      rpi4: 'int8',
      // Cortex-A76 with dotprod: the dotprod build beats the generic one at equal precision.
      rpi5: 'int8-dotprod',
      // Usable TensorRT: fp16 first, and the TensorRT build.
      'jetson-orin-nano': 'trt-fp16',
      'rock5b-rk3588': 'int8-dotprod',
    });
  });

  it('explains the choice and each rejection in words', async () => {
    const x86 = selectVariant(INDEX, selectionProfile(await hardware('x86-epyc-vm')));
    expect(x86.preferredPrecisions).toEqual(['fp32', 'int8', 'fp16']);
    expect(x86.basis).toEqual(['x86 without VNNI: int8 GEMM gains little, fp32 first', 'no fp16 arithmetic: fp16 last (onnxruntime casts around it)']);
    expect(x86.reason).toMatch(/^fp32 is choice 1 of fp32 > int8 > fp16 on this device; needs \d+ of \d+ bytes of memory; accuracy 0.981$/);
    const why = Object.fromEntries(x86.rejected.map((r) => [r.name, r.reason]));
    expect(why['int8-vnni']).toBe('needs CPU feature avx512vnni, device has avx2, fma');
    expect(why['int8-dotprod']).toBe('built for arm64, device is amd64');
    expect(why['trt-fp16']).toBe('built for arm64, device is amd64');
    expect(why.int8).toBe('ranked below fp32: precision int8 ranks below fp32 here');

    const rpi4 = selectVariant(INDEX, selectionProfile(await hardware('rpi4')));
    expect(rpi4.basis[0]).toBe('ARM NEON int8 kernels (no dotprod: a smaller int8 gain)');
    expect(Object.fromEntries(rpi4.rejected.map((r) => [r.name, r.reason]))['int8-dotprod']).toBe('needs CPU feature dotprod, device has neon');
  });

  it('under an accuracy budget, memory decides between boards with the same ISA (rpi5 4 GB vs ROCK 5B 16 GB)', async () => {
    const budgets = { minAccuracy: 0.975 };
    const rpi5 = selectVariant(INDEX, selectionProfile(await hardware('rpi5')), budgets);
    const rock = selectVariant(INDEX, selectionProfile(await hardware('rock5b-rk3588')), budgets);
    expect(rock.chosen.name).toBe('fp16');
    expect(rpi5.chosen.name).toBe('fp32');
    expect(rpi5.rejected.find((r) => r.name === 'fp16')?.reason).toMatch(/^needs 4294967296 bytes of memory, \d+ available$/);
    expect(rpi5.rejected.find((r) => r.name === 'int8')?.reason).toBe('accuracy 0.972 below the budget 0.975');
  });

  it('a measured int8 speed-up (cached by edgevolve profile) overrides the ISA guess', async () => {
    const measured = { gemmInt8Speedup: 2.4 } as MicroBenchmarks;
    const fast = selectVariant(INDEX, selectionProfile(await hardware('x86-epyc-vm', measured)));
    expect(fast.chosen.name).toBe('int8');
    expect(fast.basis[0]).toBe('measured int8 GEMM 2.40x fp32 (int8 first from 1.2x)');
    const slow = selectVariant(INDEX, selectionProfile(await hardware('rpi4', { gemmInt8Speedup: 0.9 } as MicroBenchmarks)));
    expect(slow.chosen.name).toBe('fp32');
  });

  it('a configured precision order wins over the derived one', async () => {
    const selection = selectVariant(INDEX, selectionProfile(await hardware('rpi5'), { preferPrecisions: ['fp32'] }));
    expect(selection.chosen.name).toBe('fp32');
    expect(selection.basis).toEqual(['registry.preferPrecisions (configured)']);
  });
});
