/**
 * Memory and operating system facts. On Linux they come from /proc/meminfo and the
 * os-release files, read here; elsewhere from `systeminformation`, imported on first use.
 * Why not `systeminformation` everywhere: importing it loads its whole library (every
 * module from battery to Wi-Fi) into the daemon's heap, and its osInfo() spawns shells for
 * the release files, the machine id and UEFI, all at start-up, for four numbers and five
 * strings (README "The daemon", start-up and footprint). The parsers below follow its Linux
 * rules, and a test checks both give the same answers on the machine it runs on.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import type Systeminformation from 'systeminformation';

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

/**
 * /proc/meminfo (values in kB) as MemoryInfo; undefined without MemTotal. Kernels before
 * 3.14 have no MemAvailable: then free + buffers + page cache, as systeminformation does.
 */
export function parseMeminfo(text: string): MemoryInfo | undefined {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m !== null) kb.set(m[1]!, Number(m[2]) * 1024);
  }
  const total = kb.get('MemTotal');
  if (total === undefined) return undefined;
  const get = (key: string): number => kb.get(key) ?? 0;
  const cache = get('Buffers') + get('Cached') + get('SReclaimable');
  return {
    totalBytes: total,
    availableBytes: kb.get('MemAvailable') ?? get('MemFree') + cache,
    swapTotalBytes: get('SwapTotal'),
    swapFreeBytes: get('SwapFree'),
  };
}

/**
 * The distribution's name and release from the concatenated release files (/etc/*-release,
 * /usr/lib/os-release, /etc/openwrt_release, in that order; a later key wins), by
 * systeminformation's rules: DISTRIB_ID or NAME; the release from VERSION (without the
 * distribution's name and a parenthesised codename), else DISTRIB_RELEASE or VERSION_ID.
 */
export function parseOsRelease(text: string): { distro: string; release: string } {
  const keys = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    // The value up to a second `=`, as systeminformation reads it.
    if (eq >= 0) keys.set(line.slice(0, eq).trim().toUpperCase(), (line.slice(eq + 1).split('=')[0] ?? '').trim());
  }
  const value = (key: string): string => (keys.get(key) ?? '').replace(/"/g, '');
  const distro = value('DISTRIB_ID') || value('NAME') || 'unknown';
  let version = value('VERSION');
  const pretty = value('PRETTY_NAME');
  if (pretty.startsWith(`${distro} `)) version = pretty.slice(distro.length + 1).trim();
  if (version.includes('(')) version = (version.split('(')[0] ?? '').trim();
  return { distro, release: version || value('DISTRIB_RELEASE') || value('VERSION_ID') || 'unknown' };
}

async function readOptional(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

async function releaseFilesText(): Promise<string> {
  const etc = (await readdir('/etc').catch(() => [] as string[])).filter((name) => name.endsWith('-release')).sort();
  const texts = await Promise.all([...etc.map((name) => `/etc/${name}`), '/usr/lib/os-release', '/etc/openwrt_release'].map(readOptional));
  return texts.join('\n');
}

// The module system caches the import: the first call loads it, the others reuse it.
async function systeminformation(): Promise<typeof Systeminformation> {
  return (await import('systeminformation')).default;
}

const portable: SystemInfo = {
  memory: async () => {
    const m = await (await systeminformation()).mem();
    return { totalBytes: m.total, availableBytes: m.available, swapTotalBytes: m.swaptotal, swapFreeBytes: m.swapfree };
  },
  os: async () => {
    const o = await (await systeminformation()).osInfo();
    return { platform: o.platform, distro: o.distro, release: o.release, kernel: o.kernel, arch: o.arch };
  },
};

const linux: SystemInfo = {
  memory: async () => parseMeminfo(await readOptional('/proc/meminfo')) ?? portable.memory(),
  os: async () => ({ platform: 'linux', ...parseOsRelease(await releaseFilesText()), kernel: os.release(), arch: os.arch() }),
};

/** The real system: /proc and /etc on Linux, systeminformation elsewhere. */
export const systemInfo: SystemInfo = process.platform === 'linux' ? linux : portable;
