/**
 * Variant selection: a pure function from the variants of an index, the device profile
 * and the budgets to the variant to pull, with the reason every other one lost. The
 * planner may still compress the chosen variant further on the device.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { VariantInfo } from './artifact.ts';

/** What selection needs to know about the device; the hardware module fills it later. */
export interface DeviceProfile {
  /** OCI/GOARCH architecture: amd64, arm64, arm. */
  readonly arch: string;
  /** Memory the model may use, bytes (free memory, or a configured share of it). */
  readonly availableMemoryBytes: number;
  /** Precisions this hardware runs well, best first (e.g. int8 on ARM NEON dot-product cores). */
  readonly preferredPrecisions: readonly string[];
  /** Execution providers present besides the CPU: cuda, tensorrt, ... */
  readonly accelerators: readonly string[];
}

export interface SelectionBudgets {
  readonly maxMemoryBytes?: number;
  readonly minAccuracy?: number;
  /** Pull exactly this variant (still checked against the device). */
  readonly variant?: string;
}

export interface Selection {
  readonly chosen: VariantInfo;
  readonly rejected: readonly { readonly name: string; readonly reason: string }[];
}

export function selectVariant(variants: readonly VariantInfo[], profile: DeviceProfile, budgets: SelectionBudgets = {}): Selection {
  const rejected: { name: string; reason: string }[] = [];
  const fitting: VariantInfo[] = [];
  const memory = Math.min(profile.availableMemoryBytes, budgets.maxMemoryBytes ?? Number.POSITIVE_INFINITY);
  const available = new Set(['cpu', ...profile.accelerators]);
  for (const v of variants) {
    const reason =
      budgets.variant !== undefined && v.name !== budgets.variant
        ? `not the requested variant ${budgets.variant}`
        : v.arch !== 'any' && v.arch !== profile.arch
          ? `built for ${v.arch}, device is ${profile.arch}`
          : v.minMemoryBytes !== undefined && v.minMemoryBytes > memory
            ? `needs ${v.minMemoryBytes} bytes of memory, ${memory} available`
            : v.accelerators.some((a) => !available.has(a))
              ? `needs ${v.accelerators.filter((a) => !available.has(a)).join(', ')}, not present`
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
      // Same precision: the variant that needs an accelerator we have beats a generic one.
      b.accelerators.length - a.accelerators.length ||
      (b.accuracy ?? 0) - (a.accuracy ?? 0) ||
      (a.minMemoryBytes ?? 0) - (b.minMemoryBytes ?? 0),
  );
  const [chosen, ...others] = fitting;
  if (chosen === undefined) {
    throw new EdgevolveError('E_REGISTRY_NO_VARIANT', `no variant fits this device: ${rejected.map((r) => `${r.name}: ${r.reason}`).join('; ') || 'the artifact has no variants'}`, {
      context: { rejected },
    });
  }
  for (const o of others) rejected.push({ name: o.name, reason: `ranked below ${chosen.name} (precision ${o.precision}, accuracy ${o.accuracy ?? 'unknown'})` });
  return { chosen, rejected };
}

/** Maps Node's `process.arch` to the OCI architecture name. */
export function ociArch(nodeArch: string): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', riscv64: 'riscv64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[nodeArch] ?? nodeArch;
}
