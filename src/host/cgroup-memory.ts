/**
 * The memory limit of this process's cgroup (v2): /proc/self/cgroup names the cgroup
 * (`0::/system.slice/edgevolve.service`), its memory.max under /sys/fs/cgroup holds the
 * limit systemd's MemoryMax= set, in bytes, or `max`. cgroup v1 and the root cgroup (no
 * memory.max) have no such file: undefined, not an error.
 */
import type { ReadTextFile } from './files.ts';

export interface CgroupMemoryLimit {
  /** The cgroup's path under /sys/fs/cgroup, as /proc/self/cgroup names it. */
  readonly cgroup: string;
  /** memory.max in bytes; Infinity for `max`. */
  readonly limitBytes: number;
}

export async function readCgroupMemoryLimit(files: ReadTextFile): Promise<CgroupMemoryLimit | undefined> {
  const self = await files.readTextFile('/proc/self/cgroup');
  const cgroup = self === undefined ? undefined : parseCgroupV2Path(self);
  if (cgroup === undefined) return undefined;
  const text = await files.readTextFile(`/sys/fs/cgroup${cgroup === '/' ? '' : cgroup}/memory.max`);
  const limitBytes = text === undefined ? undefined : parseMemoryMax(text);
  return limitBytes === undefined ? undefined : { cgroup, limitBytes };
}

/** The unified-hierarchy path (the `0::` line) of /proc/<pid>/cgroup; undefined under cgroup v1 only. */
export function parseCgroupV2Path(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  const path = line?.slice(3).trim();
  return path === undefined || !path.startsWith('/') ? undefined : path;
}

/** The content of a memory.max file: bytes, or Infinity for `max`; undefined for anything else. */
export function parseMemoryMax(text: string): number | undefined {
  const value = text.trim();
  if (value === 'max') return Infinity;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}
