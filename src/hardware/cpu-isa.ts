import type { ReadTextFile } from '../host/files.ts';
import { parseCpuinfo } from './parse/cpuinfo.ts';

/** What a compression pass needs to know about the CPU (e.g. to resolve `reduceRange: 'auto'`). */
export interface CpuIsa {
  readonly arch: string;
  /** /proc/cpuinfo flags (x86) or Features (ARM) of the first processor; empty when unknown. */
  readonly flags: readonly string[];
}

/** Reads the CPU's ISA flags without the full device profile (no systeminformation, no benchmarks). */
export async function readCpuIsa(files: ReadTextFile, arch: string): Promise<CpuIsa> {
  const text = await files.readTextFile('/proc/cpuinfo');
  if (text === undefined) return { arch, flags: [] };
  return { arch, flags: parseCpuinfo(text).processors[0]?.features ?? [] };
}
