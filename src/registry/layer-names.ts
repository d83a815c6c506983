/**
 * Names carried by layers (the title annotation): an external-data `location` or a
 * calibration file name. They come from a manifest, so they are untrusted; the store
 * never turns them into paths (blobs are stored by digest and handed over as bytes),
 * but they are still held to a portable grammar so that a location cannot name
 * something outside a model directory when a caller does write files (P11).
 */
import { EdgevolveError } from '../errors/index.ts';
import type { Descriptor } from './manifest.ts';
import { ANNOTATION } from './media-types.ts';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const CALIBRATION_FILE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,123}\.npy$/;

/**
 * An external-data location: a relative path of portable segments separated by `/`.
 * No `..` or `.` segment, no leading `/`, backslash, NUL or drive letter.
 */
export function checkExternalDataLocation(location: string, what = 'external-data location'): string {
  const segments = location.split('/');
  const bad = location.length > 512 || segments.length > 8 || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..' || /^\.+$/.test(s));
  if (bad) {
    throw new EdgevolveError('E_STORE_PATH_ESCAPE', `${what} ${JSON.stringify(location.slice(0, 200))} is not a relative path of [A-Za-z0-9._-] segments (no .., no absolute path)`, {
      context: { location: location.slice(0, 200) },
    });
  }
  return location;
}

/** A calibration file name: one portable segment ending in `.npy`. */
export function checkCalibrationFileName(name: string, what = 'calibration file'): string {
  if (!CALIBRATION_FILE.test(name)) {
    throw new EdgevolveError('E_STORE_PATH_ESCAPE', `${what} ${JSON.stringify(name.slice(0, 200))} is not a plain file name ending in .npy ([A-Za-z0-9._-], no directories)`, {
      context: { name: name.slice(0, 200) },
    });
  }
  return name;
}

/** The titles of `layers`, each checked with `check`, refusing a missing or repeated one. */
export function layerTitles(layers: readonly Descriptor[], check: (title: string) => string, what: string): string[] {
  const seen = new Set<string>();
  return layers.map((layer) => {
    const title = layer.annotations?.[ANNOTATION.title];
    if (title === undefined) throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${what} layer ${layer.digest} has no ${ANNOTATION.title} annotation`);
    check(title);
    if (seen.has(title)) throw new EdgevolveError('E_REGISTRY_MANIFEST_INVALID', `${what} ${title} appears twice in one manifest`);
    seen.add(title);
    return title;
  });
}
