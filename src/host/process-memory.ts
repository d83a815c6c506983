/**
 * This process's resident memory, for the isolated benchmark: VmRSS and VmHWM from
 * /proc/self/status, and the kernel's reset of the high-water mark (writing 5 to
 * /proc/self/clear_refs, Linux >= 4.0), so a peak measures the model rather than the
 * start-up of Node and the TypeScript loader.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface ResidentMemory {
  readonly residentBytes: number;
  /** The highest resident size since start or since the last resetPeak(). */
  readonly peakBytes: number;
  /** Where the numbers came from: the kernel's status file or getrusage (peak only, never reset). */
  readonly source: 'proc-status' | 'getrusage';
}

export interface ProcessMemory {
  read(): ResidentMemory;
  /** Resets the high-water mark to the current resident size; false where the kernel cannot. */
  resetPeak(): boolean;
}

export const selfProcessMemory: ProcessMemory = {
  read: () => {
    let status: string | undefined;
    try {
      status = readFileSync('/proc/self/status', 'utf8');
    } catch {
      status = undefined;
    }
    const parsed = status === undefined ? undefined : parseProcStatusMemory(status);
    if (parsed !== undefined) return { ...parsed, source: 'proc-status' };
    // Outside Linux: ru_maxrss is the same high-water mark in KiB, but cannot be reset.
    const usage = process.resourceUsage();
    return { residentBytes: process.memoryUsage.rss(), peakBytes: usage.maxRSS * 1024, source: 'getrusage' };
  },
  resetPeak: () => {
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      return true;
    } catch {
      return false;
    }
  },
};

/** VmRSS and VmHWM (kB in the file) from the text of /proc/<pid>/status; undefined when either is missing. */
export function parseProcStatusMemory(status: string): { residentBytes: number; peakBytes: number } | undefined {
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  if (rss === null || hwm === null) return undefined;
  return { residentBytes: Number(rss[1]) * 1024, peakBytes: Number(hwm[1]) * 1024 };
}
