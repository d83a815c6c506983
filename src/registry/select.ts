/**
 * Variant selection: a pure function from the variants of an index, what the device
 * offers and the budgets to the variant to pull, with the reason it won and the reason
 * every other one lost. `selectionProfile` derives what the device offers from the
 * hardware module's profile (ISA features, measured int8 speed, memory, execution
 * providers, accelerators). The planner may still compress the chosen variant further.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { DeviceProfile as HardwareProfile } from '../hardware/profile.ts';
import type { VariantInfo } from './artifact.ts';

/** What selection needs to know about the device. */
export interface SelectionProfile {
  /** OCI/GOARCH architecture: amd64, arm64, arm. */
  readonly arch: string;
  /** Memory the model may use, bytes (available memory, or a configured share of it). */
  readonly availableMemoryBytes: number;
  /** Precisions this hardware runs well, best first. */
  readonly preferredPrecisions: readonly string[];
  /** Why the precisions are in that order, one line per fact used. */
  readonly basis: readonly string[];
  /** Usable onnxruntime execution providers besides the CPU (cuda, tensorrt) and accelerator kinds found (hailo, rockchip-npu). */
  readonly accelerators: readonly string[];
  /** CPU features in the vocabulary of `dev.edgevolve.cpu-features`: neon, dotprod, i8mm, fp16, bf16, sve, avx2, fma, avx512f, avx512vnni, avxvnni, amx-int8. */
  readonly cpuFeatures: readonly string[];
}

export interface SelectionBudgets {
  readonly maxMemoryBytes?: number;
  readonly minAccuracy?: number;
  /** Pull exactly this variant (still checked against the device). */
  readonly variant?: string;
}

export interface Selection {
  readonly chosen: VariantInfo;
  /** Why `chosen` won, in words. */
  readonly reason: string;
  readonly rejected: readonly { readonly name: string; readonly reason: string }[];
  readonly preferredPrecisions: readonly string[];
  readonly basis: readonly string[];
}

/** onnxruntime execution providers that run fp16 natively on a GPU. */
const GPU_PROVIDERS: ReadonlySet<string> = new Set(['cuda', 'tensorrt', 'rocm', 'migraphx', 'dml']);
/** int8 GEMM at least this much faster than fp32 (measured) puts int8 first. */
const INT8_MEASURED_GAIN = 1.2;

/** The hardware profile's parts that selection reads (structural, so a recorded or partial profile works). */
export type SelectionHardware = Pick<HardwareProfile, 'cpu' | 'memory' | 'accelerators' | 'onnxruntime' | 'measured'>;

/**
 * What the device offers, from the hardware profile. The precision order, unless
 * configured, follows what onnxruntime's CPU kernels (MLAS) do with the ISA:
 * - a usable GPU provider (CUDA, TensorRT): fp16 first;
 * - a measured int8 GEMM speed-up (`edgevolve profile` cached it): int8 first when
 *   int8 is at least 1.2x fp32, after fp32 otherwise;
 * - otherwise by ISA: int8 first on ARM (NEON int8 kernels; SDOT/UDOT with dotprod)
 *   and on x86 with VNNI or AMX; fp32 first on x86 without them (u8s8 on VPMADDUBSW can
 *   saturate, so int8 models there need reduce-range and gain less);
 * - fp16 before fp32 only with fp16 arithmetic (ARMv8.2 fphp/asimdhp, AVX512-FP16);
 *   without it onnxruntime inserts casts around most fp16 operators.
 */
export function selectionProfile(hw: SelectionHardware, options: { preferPrecisions?: readonly string[] | undefined } = {}): SelectionProfile {
  const f = hw.cpu.features;
  const cpuFeatures = (
    [
      ['neon', f.neon], ['dotprod', f.dotprod], ['i8mm', f.i8mm], ['fp16', f.fp16Arithmetic], ['bf16', f.bf16], ['sve', f.sve], ['sve2', f.sve2],
      ['avx2', f.avx2], ['fma', f.fma], ['avx512f', f.avx512f], ['avx512vnni', f.avx512vnni], ['avxvnni', f.avxVnni], ['amx-int8', f.amxInt8],
    ] as const
  )
    .filter(([, present]) => present)
    .map(([name]) => name);
  const providers = hw.onnxruntime.executionProviders.filter((p) => p.usable && p.name !== 'cpu').map((p) => p.name);
  const accelerators = [...new Set([...providers, ...hw.accelerators.map((a) => a.kind)])];
  const arch = ociArch(hw.cpu.arch);
  const { order, basis } = options.preferPrecisions === undefined ? precisionOrder(hw, arch, providers) : { order: [...options.preferPrecisions], basis: ['registry.preferPrecisions (configured)'] };
  return { arch, availableMemoryBytes: hw.memory.availableBytes, preferredPrecisions: order, basis, accelerators, cpuFeatures };
}

function precisionOrder(hw: SelectionHardware, arch: string, providers: readonly string[]): { order: string[]; basis: string[] } {
  const gpu = providers.find((p) => GPU_PROVIDERS.has(p));
  if (gpu !== undefined) return { order: ['fp16', 'int8', 'fp32'], basis: [`onnxruntime provider ${gpu} is usable: fp16 runs natively on the GPU`] };
  const f = hw.cpu.features;
  const basis: string[] = [];
  let int8First: boolean;
  const measured = hw.measured;
  if (measured !== null && Number.isFinite(measured.gemmInt8Speedup) && measured.gemmInt8Speedup > 0) {
    int8First = measured.gemmInt8Speedup >= INT8_MEASURED_GAIN;
    basis.push(`measured int8 GEMM ${measured.gemmInt8Speedup.toFixed(2)}x fp32 (int8 first from ${INT8_MEASURED_GAIN}x)`);
  } else if (arch === 'arm64' || arch === 'arm') {
    int8First = f.neon || arch === 'arm64';
    basis.push(f.dotprod || f.i8mm ? `ARM ${f.i8mm ? 'i8mm' : 'dotprod'}: int8 dot-product kernels` : 'ARM NEON int8 kernels (no dotprod: a smaller int8 gain)');
  } else {
    int8First = f.avx512vnni || f.avxVnni || f.amxInt8;
    basis.push(int8First ? `x86 ${f.amxInt8 ? 'AMX-INT8' : f.avx512vnni ? 'AVX-512 VNNI' : 'AVX-VNNI'}: fast int8 GEMM` : 'x86 without VNNI: int8 GEMM gains little, fp32 first');
  }
  basis.push(f.fp16Arithmetic ? 'fp16 arithmetic: fp16 before fp32' : 'no fp16 arithmetic: fp16 last (onnxruntime casts around it)');
  const floats = f.fp16Arithmetic ? ['fp16', 'fp32'] : ['fp32'];
  const order = int8First ? ['int8', ...floats] : [...floats.filter((p) => p === 'fp32'), 'int8', ...floats.filter((p) => p !== 'fp32')];
  if (!f.fp16Arithmetic) order.push('fp16');
  return { order, basis };
}

export function selectVariant(variants: readonly VariantInfo[], profile: SelectionProfile, budgets: SelectionBudgets = {}): Selection {
  const rejected: { name: string; reason: string }[] = [];
  const fitting: VariantInfo[] = [];
  const memory = Math.min(profile.availableMemoryBytes, budgets.maxMemoryBytes ?? Number.POSITIVE_INFINITY);
  const memoryWhat = budgets.maxMemoryBytes !== undefined && budgets.maxMemoryBytes < profile.availableMemoryBytes ? 'the memory budget' : 'available';
  const available = new Set(['cpu', ...profile.accelerators]);
  const features = new Set(profile.cpuFeatures);
  for (const v of variants) {
    const missingAccelerators = v.accelerators.filter((a) => !available.has(a));
    const missingFeatures = v.cpuFeatures.filter((c) => !features.has(c));
    const reason =
      budgets.variant !== undefined && v.name !== budgets.variant
        ? `not the requested variant ${budgets.variant}`
        : v.arch !== 'any' && v.arch !== profile.arch
          ? `built for ${v.arch}, device is ${profile.arch}`
          : v.minMemoryBytes !== undefined && v.minMemoryBytes > memory
            ? `needs ${v.minMemoryBytes} bytes of memory, ${memory} ${memoryWhat}`
            : missingAccelerators.length > 0
              ? `needs ${missingAccelerators.join(', ')}, not present`
              : missingFeatures.length > 0
                ? `needs CPU feature ${missingFeatures.join(', ')}, device has ${profile.cpuFeatures.join(', ') || 'none known'}`
                : budgets.minAccuracy !== undefined && v.accuracy !== undefined && v.accuracy < budgets.minAccuracy
                  ? `accuracy ${v.accuracy} below the budget ${budgets.minAccuracy}`
                  : undefined;
    if (reason === undefined) fitting.push(v);
    else rejected.push({ name: v.name, reason });
  }
  const rank = (precision: string): number => {
    const i = profile.preferredPrecisions.indexOf(precision);
    return i < 0 ? profile.preferredPrecisions.length : i;
  };
  fitting.sort(
    (a, b) =>
      rank(a.precision) - rank(b.precision) ||
      // Same precision: a build for an accelerator or CPU feature this device has beats a generic one.
      b.accelerators.length - a.accelerators.length ||
      b.cpuFeatures.length - a.cpuFeatures.length ||
      (b.accuracy ?? 0) - (a.accuracy ?? 0) ||
      (a.minMemoryBytes ?? 0) - (b.minMemoryBytes ?? 0),
  );
  const [chosen, ...others] = fitting;
  if (chosen === undefined) {
    throw new EdgevolveError('E_REGISTRY_NO_VARIANT', `no variant fits this device: ${rejected.map((r) => `${r.name}: ${r.reason}`).join('; ') || 'the artifact has no variants'}`, {
      context: { rejected },
    });
  }
  for (const o of others) {
    const why =
      rank(o.precision) !== rank(chosen.precision)
        ? `precision ${o.precision} ranks below ${chosen.precision} here`
        : o.accelerators.length !== chosen.accelerators.length || o.cpuFeatures.length !== chosen.cpuFeatures.length
          ? `a more generic build than ${chosen.name}`
          : `accuracy ${o.accuracy ?? 'unknown'} vs ${chosen.accuracy ?? 'unknown'}`;
    rejected.push({ name: o.name, reason: `ranked below ${chosen.name}: ${why}` });
  }
  return { chosen, reason: chosenReason(chosen, profile, memory, rank(chosen.precision)), rejected, preferredPrecisions: profile.preferredPrecisions, basis: profile.basis };
}

function chosenReason(v: VariantInfo, profile: SelectionProfile, memory: number, rank: number): string {
  const parts = [
    rank < profile.preferredPrecisions.length ? `${v.precision} is choice ${rank + 1} of ${profile.preferredPrecisions.join(' > ')} on this device` : `${v.precision} is the only precision that fits`,
  ];
  if (v.accelerators.length > 0) parts.push(`built for ${v.accelerators.join(', ')}, which the device has`);
  if (v.cpuFeatures.length > 0) parts.push(`built for CPU feature ${v.cpuFeatures.join(', ')}, which the device has`);
  if (v.minMemoryBytes !== undefined) parts.push(`needs ${v.minMemoryBytes} of ${memory} bytes of memory`);
  if (v.accuracy !== undefined) parts.push(`accuracy ${v.accuracy}`);
  return parts.join('; ');
}

/** Maps Node's `process.arch` to the OCI architecture name. */
export function ociArch(nodeArch: string): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', riscv64: 'riscv64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[nodeArch] ?? nodeArch;
}
