/**
 * Read-only file capabilities for probes that look at the kernel's own files
 * (/proc, /sys, /dev, /etc). Absent files are normal on a probe's path (no
 * device tree on x86, no cpufreq in a VM), so absence is a value, not an error.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgevolveError } from '../errors/index.ts';

/** Reads a whole text file; undefined when it does not exist. */
export interface ReadTextFile {
  readTextFile(path: string): Promise<string | undefined>;
}

/** Lists the entry names of a directory; undefined when it does not exist. */
export interface ListDir {
  listDir(path: string): Promise<readonly string[] | undefined>;
}

/** True when something (file, directory, device node) exists at the path. */
export interface PathExists {
  exists(path: string): Promise<boolean>;
}

export type HostFiles = ReadTextFile & ListDir & PathExists;

/** Errors that mean "nothing there" rather than "could not look". */
const ABSENT = new Set(['ENOENT', 'ENOTDIR']);

/**
 * The machine's files, seen from `root`: `/` in production, a mounted host root
 * (`/host` in a container) or a recorded board under test/fixtures/hosts/.
 */
export function nodeFiles(root = '/'): HostFiles {
  const resolve = (path: string): string => (root === '/' ? path : join(root, path));
  return {
    readTextFile: async (path) => {
      try {
        return await readFile(resolve(path), 'utf8');
      } catch (err) {
        if (isAbsent(err)) return undefined;
        throw ioError('read', path, err);
      }
    },
    listDir: async (path) => {
      try {
        return (await readdir(resolve(path))).sort();
      } catch (err) {
        if (isAbsent(err)) return undefined;
        throw ioError('list', path, err);
      }
    },
    exists: async (path) => {
      try {
        await stat(resolve(path));
        return true;
      } catch (err) {
        if (isAbsent(err)) return false;
        throw ioError('stat', path, err);
      }
    },
  };
}

function isAbsent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && ABSENT.has((err as NodeJS.ErrnoException).code ?? '');
}

function ioError(verb: string, path: string, err: unknown): EdgevolveError {
  const code = (err as NodeJS.ErrnoException).code;
  return new EdgevolveError('E_IO', `cannot ${verb} ${path}: ${code ?? (err as Error).message}`, { cause: err, context: { path, errno: code } });
}
