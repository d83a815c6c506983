/**
 * External tensor data (data_location = EXTERNAL): resolving `location` safely
 * inside the model's directory and reading the byte range. The checks follow the
 * CVE history of onnx's loader (CVE-2022-25882 `../`, CVE-2024-27318 `sub/../../`,
 * CVE-2026-27489 symlinks): relative paths only, lexically inside the base
 * directory, real path (symlinks resolved) still inside it, a regular file, and a
 * byte range inside the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EdgevolveError } from '../errors/index.ts';
import type { TensorProto } from './types.ts';

/** Where a tensor's bytes are: an absolute real path and a range in it. */
export interface ExternalDataLocation {
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

function fail(tensor: TensorProto, message: string, context: Record<string, unknown> = {}): EdgevolveError {
  return new EdgevolveError('E_ONNX_EXTERNAL_DATA', `tensor '${tensor.name ?? ''}': ${message}`, {
    context: { tensor: tensor.name ?? '', ...context },
  });
}

function parseNonNegativeInteger(tensor: TensorProto, key: string, text: string): number {
  if (!/^[0-9]{1,16}$/.test(text)) throw fail(tensor, `external_data ${key} '${text}' is not a non-negative integer`);
  return Number(text);
}

/** The external_data entries as a map; duplicate keys are rejected (which one would win is ambiguous). */
export function externalDataEntries(tensor: TensorProto): Map<string, string> {
  const entries = new Map<string, string>();
  for (const entry of tensor.externalData ?? []) {
    const key = entry.key ?? '';
    if (entries.has(key)) throw fail(tensor, `external_data key '${key}' appears twice`);
    entries.set(key, entry.value ?? '');
  }
  return entries;
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..';
}

/**
 * Checks a tensor's external data reference without reading it. `baseDir` is the
 * directory of the model file; models decoded from bytes have none, and their
 * external data is refused.
 */
export function resolveExternalData(tensor: TensorProto, baseDir: string | undefined): ExternalDataLocation {
  if (baseDir === undefined) throw fail(tensor, 'uses external data, but the model was not loaded from a file (no base directory)');
  const entries = externalDataEntries(tensor);
  const location = entries.get('location');
  if (location === undefined || location === '') throw fail(tensor, 'external_data has no location');
  if (location.includes('\0')) throw fail(tensor, 'external_data location contains a NUL byte', { location });
  if (path.isAbsolute(location) || path.win32.isAbsolute(location)) {
    throw fail(tensor, `external_data location '${location}' is absolute; it must be relative to the model directory`, { location });
  }
  const base = path.resolve(baseDir);
  const lexical = path.resolve(base, location);
  if (!isInside(base, lexical)) throw fail(tensor, `external_data location '${location}' points outside the model directory`, { location });

  let realBase: string;
  let realFile: string;
  try {
    realBase = fs.realpathSync(base);
    realFile = fs.realpathSync(lexical);
  } catch (err) {
    throw new EdgevolveError('E_ONNX_EXTERNAL_DATA', `tensor '${tensor.name ?? ''}': external data file '${location}' is missing`, {
      cause: err,
      context: { tensor: tensor.name ?? '', location },
    });
  }
  if (!isInside(realBase, realFile)) {
    throw fail(tensor, `external_data location '${location}' resolves (through a symlink) outside the model directory`, { location, realFile });
  }
  const stat = fs.statSync(realFile);
  if (!stat.isFile()) throw fail(tensor, `external_data location '${location}' is not a regular file`, { location });

  const offsetText = entries.get('offset');
  const lengthText = entries.get('length');
  const offset = offsetText === undefined ? 0 : parseNonNegativeInteger(tensor, 'offset', offsetText);
  const length = lengthText === undefined ? Math.max(0, stat.size - offset) : parseNonNegativeInteger(tensor, 'length', lengthText);
  if (offset + length > stat.size) {
    throw fail(tensor, `external_data range ${offset}+${length} runs past the end of '${location}' (${stat.size} bytes)`, {
      location,
      offset,
      length,
      fileSize: stat.size,
    });
  }
  return { path: realFile, offset, length };
}

/** Reads the bytes of a resolved external data range. */
export function readExternalData(tensor: TensorProto, where: ExternalDataLocation): Uint8Array {
  const out = new Uint8Array(where.length);
  let fd: number | undefined;
  try {
    fd = fs.openSync(where.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    let done = 0;
    while (done < where.length) {
      const n = fs.readSync(fd, out, done, where.length - done, where.offset + done);
      if (n === 0) throw fail(tensor, `external data file '${where.path}' ended early (it shrank while being read)`);
      done += n;
    }
  } catch (err) {
    if (err instanceof EdgevolveError) throw err;
    throw new EdgevolveError('E_ONNX_EXTERNAL_DATA', `tensor '${tensor.name ?? ''}': cannot read external data: ${(err as Error).message}`, {
      cause: err,
      context: { tensor: tensor.name ?? '', path: where.path },
    });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return out;
}
