/**
 * Memory and operating system facts through `systeminformation`, which already
 * reads /proc/meminfo, os-release and their equivalents on other platforms well.
 */
import si from 'systeminformation';

export interface MemoryInfo {
  readonly totalBytes: number;
  /** What a new process can get without swapping (MemAvailable on Linux). */
  readonly availableBytes: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

export interface OsInfo {
  readonly platform: string;
  readonly distro: string;
  readonly release: string;
  readonly kernel: string;
  readonly arch: string;
}

export interface SystemInfo {
  memory(): Promise<MemoryInfo>;
  os(): Promise<OsInfo>;
}

export const systemInfo: SystemInfo = {
  memory: async () => {
    const m = await si.mem();
    return { totalBytes: m.total, availableBytes: m.available, swapTotalBytes: m.swaptotal, swapFreeBytes: m.swapfree };
  },
  os: async () => {
    const o = await si.osInfo();
    return { platform: o.platform, distro: o.distro, release: o.release, kernel: o.kernel, arch: o.arch };
  },
};
