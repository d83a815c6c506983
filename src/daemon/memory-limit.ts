/**
 * Start-up check that the unit's memory limit is the one the configuration asks for:
 * `service.memoryMax` reaches systemd only when scripts/install.sh is run again (it writes
 * the drop-in), so an operator who edited the file and restarted is told the limit did
 * not change (README "The daemon", installation).
 */
import { parseSystemdMemoryMax, systemdMemoryMaxBytes } from '../config/systemd-size.ts';
import type { CgroupMemoryLimit } from '../host/cgroup-memory.ts';

/** The configured limit against the cgroup's; Infinity is no limit. */
export interface MemoryLimitComparison {
  readonly status: 'match' | 'mismatch';
  readonly configured: string;
  readonly expectedBytes: number;
  readonly actualBytes: number;
  readonly cgroup: string;
}

export type MemoryLimitCheck =
  | { readonly status: 'unconfigured' }
  /** No cgroup v2 memory.max to compare with (cgroup v1, the root cgroup, not Linux). */
  | { readonly status: 'unknown'; readonly configured: string }
  | MemoryLimitComparison;

/**
 * The kernel keeps memory.max in pages (rounded down, pages up to 64 KiB on arm64) and
 * systemd scales a percentage from its own reading of physical memory: a difference
 * within this much is the same limit.
 */
function tolerance(expectedBytes: number): number {
  return Math.max(64 * 1024, expectedBytes * 0.005);
}

export function checkMemoryLimit(configured: string | undefined, cgroup: CgroupMemoryLimit | undefined, totalMemoryBytes: number): MemoryLimitCheck {
  if (configured === undefined) return { status: 'unconfigured' };
  const parsed = parseSystemdMemoryMax(configured);
  if (parsed === undefined || cgroup === undefined) return { status: 'unknown', configured };
  const expectedBytes = systemdMemoryMaxBytes(parsed, totalMemoryBytes);
  const actualBytes = cgroup.limitBytes;
  const same = expectedBytes === actualBytes || (Number.isFinite(expectedBytes) && Math.abs(expectedBytes - actualBytes) <= tolerance(expectedBytes));
  return { status: same ? 'match' : 'mismatch', configured, expectedBytes, actualBytes, cgroup: cgroup.cgroup };
}

/** The warning an operator reads in the journal. */
export function memoryLimitWarning(check: MemoryLimitComparison): string {
  const show = (bytes: number): string => (bytes === Infinity ? 'no limit' : `${(bytes / 1024 ** 2).toFixed(0)} MiB`);
  return `service.memoryMax is ${check.configured} (${show(check.expectedBytes)}) but the cgroup ${check.cgroup} has memory.max ${show(check.actualBytes)}: run scripts/install.sh again to apply the configured limit`;
}

/** The check as JSON carries it (status file, events): "no limit" is null, not Infinity. */
export type MemoryLimitStatus =
  | Exclude<MemoryLimitCheck, MemoryLimitComparison>
  | (Omit<MemoryLimitComparison, 'expectedBytes' | 'actualBytes'> & { readonly expectedBytes: number | null; readonly actualBytes: number | null });

export function memoryLimitStatus(check: MemoryLimitCheck): MemoryLimitStatus {
  if (check.status !== 'match' && check.status !== 'mismatch') return check;
  return { ...check, expectedBytes: finiteOrNull(check.expectedBytes), actualBytes: finiteOrNull(check.actualBytes) };
}

function finiteOrNull(bytes: number): number | null {
  return Number.isFinite(bytes) ? bytes : null;
}

/** The `memory-limit-mismatch` event's fields for a comparison. */
export function memoryLimitEvent(check: MemoryLimitComparison): { configured: string; expectedBytes: number | null; actualBytes: number | null; cgroup: string; message: string } {
  return { configured: check.configured, expectedBytes: finiteOrNull(check.expectedBytes), actualBytes: finiteOrNull(check.actualBytes), cgroup: check.cgroup, message: memoryLimitWarning(check) };
}
