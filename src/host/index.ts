/**
 * The OS seam: the few capabilities of the machine that the store and the registry
 * client need, passed in by the composition root so tests can substitute a clock,
 * a random source or a disk that reports less free space than it has.
 */
import { statfs } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

/** Wall-clock time and waiting; injected so retry and history timestamps are testable. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A uniform random number in [0, 1); injected so backoff jitter is testable. */
export interface Random {
  random(): number;
}

/** Free space of the filesystem that holds a path. */
export interface DiskSpace {
  /** Bytes an unprivileged process may still write on the filesystem of `path`. */
  freeBytes(path: string): Promise<number>;
}

export type Host = Clock & Random & DiskSpace;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, signal === undefined ? undefined : { signal });
  },
};

export const systemRandom: Random = { random: () => Math.random() };

export const systemDisk: DiskSpace = {
  freeBytes: async (path) => {
    const stats = await statfs(path);
    // bavail, not bfree: blocks reserved for root are not ours to fill.
    return Number(stats.bavail) * Number(stats.bsize);
  },
};

/** The real machine; only the composition root and the CLI should build this. */
export function systemHost(): Host {
  return { ...systemClock, ...systemRandom, ...systemDisk };
}

export { writeFileAtomic, fsyncDirectory } from './fs.ts';
