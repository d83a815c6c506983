import { describe, expect, it } from 'vitest';
import { configSchema, validateConfig, type Config } from '../../../src/config/index.ts';
import { planReload, RELOADABLE } from '../../../src/daemon/reload.ts';

/** The zod 4 definition fields this walk reads (wrappers, objects, arrays). */
interface Def {
  readonly type: string;
  readonly innerType?: { readonly _zod: { readonly def: Def } };
  readonly in?: { readonly _zod: { readonly def: Def } };
  readonly shape?: Readonly<Record<string, { readonly _zod: { readonly def: Def } }>>;
  readonly element?: { readonly _zod: { readonly def: Def } };
}

/** Every leaf key of the schema as a dotted path; array elements of objects as `.0.` (the first model). */
function leafPaths(def: Def, path: string): string[] {
  if (def.innerType !== undefined) return leafPaths(def.innerType._zod.def, path);
  if (def.type === 'pipe' && def.in !== undefined) return leafPaths(def.in._zod.def, path);
  if (def.type === 'object' && def.shape !== undefined) {
    return Object.entries(def.shape).flatMap(([key, child]) => leafPaths(child._zod.def, path === '' ? key : `${path}.${key}`));
  }
  if (def.type === 'array' && def.element !== undefined) {
    const element = unwrap(def.element._zod.def);
    if (element.type === 'object') return leafPaths(element, `${path}.0`);
  }
  return [path];
}

function unwrap(def: Def): Def {
  return def.innerType !== undefined ? unwrap(def.innerType._zod.def) : def;
}

/** A copy of `config` with a value at `path` that equals nothing it held (intermediate objects created). */
function changedAt(config: Readonly<Config>, path: string): Config {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  const keys = path.split('.');
  let node = copy;
  for (const key of keys.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = { changedBy: path };
  return copy as unknown as Config;
}

describe('planReload is exhaustive: every changed key is applied or reported as needing a restart', () => {
  const base = validateConfig({ stateDir: '/s', daemon: { models: [{ name: 'm', ref: 'oci-layout:/x:1' }] } }, 'test');
  const paths = leafPaths((configSchema as unknown as { _zod: { def: Def } })._zod.def, '');

  it('walks the schema (no key named here): each leaf reports exactly one key covering it, applied only when RELOADABLE covers it', () => {
    expect(paths.length).toBeGreaterThan(50);
    for (const path of paths) {
      const plan = planReload(base, changedAt(base, path));
      const reported = [...plan.applied, ...plan.needsRestart];
      const where = path.replace(/\.0(?=\.|$)/, '');
      expect(reported, path).toHaveLength(1);
      expect(where.startsWith(reported[0]!.replace(' (names or refs)', '')), `${path} reported as ${reported[0]}`).toBe(true);
      const reloadable = RELOADABLE.some((r) => where.startsWith(r));
      expect(plan.applied, path).toEqual(reloadable ? reported : []);
    }
  });

  it('a key the schema does not have yet (a future key) needs a restart, in the daemon section, a model entry and a new section', () => {
    const next = structuredClone(base) as unknown as { daemon: Record<string, unknown> & { models: Record<string, unknown>[] }; [k: string]: unknown };
    next.daemon.futureKey = 1;
    next.daemon.models[0]!.futureField = true;
    next.futureSection = { a: 1 };
    const plan = planReload(base, next as unknown as Config);
    expect(plan.applied).toEqual([]);
    expect([...plan.needsRestart].sort()).toEqual(['daemon.futureKey', 'daemon.models.futureField', 'futureSection']);
  });
});
