/**
 * The `config` command: a patch merged into the running configuration, validated by the
 * configuration schema, limited to the keys SIGHUP can reload (reload.ts), applied through
 * the same reload path, and kept across restarts in an overlay file in the state directory
 * (<stateDir>/config-overlay.json), not in the operator's YAML file: the daemon never
 * rewrites a file a person edits. The overlay is applied over the file and the
 * environment at start and on every SIGHUP.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig, type Config } from '../../config/index.ts';
import { EdgevolveError, isEdgevolveError } from '../../errors/index.ts';
import { writeFileAtomic } from '../../host/index.ts';
import { planReload, RELOADABLE } from '../reload.ts';

export const OVERLAY_FILE = 'config-overlay.json';

export function overlayPath(stateDir: string): string {
  return join(stateDir, OVERLAY_FILE);
}

type Json = Readonly<Record<string, unknown>>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON merge: objects merge key by key, anything else (arrays included) replaces. Never mutates its inputs (the running config is frozen). */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) out[key] = mergePatch(base[key], value);
  return out;
}

/**
 * The configuration `patch` would make, checked: the schema's errors name each bad key
 * (`deploy.maxErrorRate: Too big...`), and a valid change that only a restart can apply
 * is refused naming it. Throws E_CONFIG_INVALID; changes nothing.
 */
export function checkConfigPatch(current: Readonly<Config>, patch: Json): { next: Readonly<Config>; changed: readonly string[] } {
  let next: Readonly<Config>;
  try {
    next = validateConfig(mergePatch(current, patch), 'the config command');
  } catch (err) {
    if (!isEdgevolveError(err)) throw err;
    const issues = (err.context as { issues?: readonly string[] } | undefined)?.issues ?? [err.message];
    throw new EdgevolveError('E_CONFIG_INVALID', `config patch: ${issues.join('; ')}`, { cause: err, context: { issues: [...issues] } });
  }
  const plan = planReload(current, next);
  if (plan.needsRestart.length > 0) {
    throw new EdgevolveError('E_CONFIG_INVALID', `config patch: ${plan.needsRestart.join(', ')} cannot change while the daemon runs; a patch may change only ${RELOADABLE.join(', ')}`, {
      context: { needsRestart: [...plan.needsRestart] },
    });
  }
  return { next, changed: plan.applied };
}

/** The overlay kept by earlier `config` commands, or undefined when there is none. */
export async function readOverlay(stateDir: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(overlayPath(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EdgevolveError('E_CONFIG_INVALID', `cannot read ${overlayPath(stateDir)}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new EdgevolveError('E_CONFIG_INVALID', `${overlayPath(stateDir)}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isPlainObject(parsed)) throw new EdgevolveError('E_CONFIG_INVALID', `${overlayPath(stateDir)}: expected a JSON object`);
  return parsed;
}

/** `config` with the state directory's overlay applied (validated again; errors name the overlay file). */
export async function withOverlay(config: Readonly<Config>): Promise<Readonly<Config>> {
  const overlay = await readOverlay(config.stateDir);
  return overlay === undefined ? config : validateConfig(mergePatch(config, overlay), overlayPath(config.stateDir));
}

/** Adds `patch` to the overlay, atomically (temp + fsync + rename). */
export async function writeOverlay(stateDir: string, patch: Json): Promise<string> {
  const merged = mergePatch((await readOverlay(stateDir)) ?? {}, patch);
  const path = overlayPath(stateDir);
  await writeFileAtomic(path, `${JSON.stringify(merged, null, 2)}\n`, 0o600);
  return path;
}
