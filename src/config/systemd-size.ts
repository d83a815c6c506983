/**
 * systemd's MemoryMax= syntax (systemd.resource-control(5)): bytes with an optional
 * base-1024 suffix K, M, G, T, P or E (`512M`, `1.5G`), a percentage of the physical
 * memory (`75%`), or `infinity`. Parsed here so the config schema and the start-up check
 * of the cgroup's memory.max agree on what a value means.
 */

const SIZE = /^(\d+(?:\.\d+)?)([KMGTPE]?)$/;
const PERCENT = /^(\d+(?:\.\d+)?)%$/;
const SUFFIX_POWER: Readonly<Record<string, number>> = { '': 0, K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };

/** A MemoryMax= value: bytes, a share of physical memory, or no limit. */
export type SystemdMemoryMax = { readonly bytes: number } | { readonly percent: number } | 'infinity';

/** The parsed value; undefined when systemd would not accept it (or it is 0, which would stop the service at once). */
export function parseSystemdMemoryMax(text: string): SystemdMemoryMax | undefined {
  if (text === 'infinity') return 'infinity';
  const percent = PERCENT.exec(text);
  if (percent !== null) {
    const value = Number(percent[1]);
    return value > 0 && value <= 100 ? { percent: value } : undefined;
  }
  const size = SIZE.exec(text);
  if (size === null) return undefined;
  const bytes = Math.floor(Number(size[1]) * 1024 ** (SUFFIX_POWER[size[2] ?? ''] ?? 0));
  return bytes > 0 && Number.isFinite(bytes) ? { bytes } : undefined;
}

/** The limit in bytes this value sets on a machine with `totalMemoryBytes` of physical memory; Infinity for `infinity`. */
export function systemdMemoryMaxBytes(value: SystemdMemoryMax, totalMemoryBytes: number): number {
  if (value === 'infinity') return Infinity;
  if ('bytes' in value) return value.bytes;
  return Math.floor((totalMemoryBytes * value.percent) / 100);
}
