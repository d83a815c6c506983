/**
 * SIGHUP: which configuration changes apply to a running daemon and which need a
 * restart. Reloadable keys are read through getters on every use (log level, budgets,
 * the models' optimize settings, health gates, watchdog bounds, reconcile interval); the
 * rest are fixed at start. The fleet `config` command accepts exactly these keys.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/index.ts';

/** Top-level (or dotted) keys whose new value takes effect without a restart. */
// Not telemetry.intervalMs: the telemetry service fixes its timer at construction (src/telemetry owns it).
export const RELOADABLE: readonly string[] = ['log.level', 'deploy', 'daemon.watchdog', 'daemon.models.budgets', 'daemon.models.optimize', 'daemon.reconcileIntervalMs'];

export interface ReloadPlan {
  readonly applied: readonly string[];
  readonly needsRestart: readonly string[];
}

/**
 * Which changed keys apply and which need a restart. Exhaustive by construction: both
 * configurations are walked key by key (nothing is listed by name but the reloadable keys),
 * so a key added to the schema later is reported as needing a restart until it is made
 * reloadable here. A changed key is named down to the second level (`server.port`), deeper
 * where a reloadable key lies below it (`daemon.watchdog`).
 */
export function planReload(before: Readonly<Config>, after: Readonly<Config>): ReloadPlan {
  const applied = new Set<string>();
  const needsRestart = new Set<string>();
  diffKey('', before, after, { applied, needsRestart });
  return { applied: [...applied], needsRestart: [...needsRestart] };
}

interface Diff {
  readonly applied: Set<string>;
  readonly needsRestart: Set<string>;
}

/** Model fields read on every use (budget watch, health gate, reconcile), by the key they are reported as. */
const RELOADABLE_MODEL_FIELDS: Readonly<Record<string, string>> = {
  budgets: 'daemon.models.budgets',
  // optimize, optimizeTimeLimitS, optimizeData, optimizeMethods: read on each reconcile and re-plan.
  optimize: 'daemon.models.optimize',
  optimizeTimeLimitS: 'daemon.models.optimize',
  optimizeData: 'daemon.models.optimize',
  optimizeMethods: 'daemon.models.optimize',
};

function diffKey(path: string, b: unknown, a: unknown, diff: Diff): void {
  if (isDeepStrictEqual(b, a)) return;
  const reloadable = RELOADABLE.find((r) => path === r || path.startsWith(`${r}.`));
  if (reloadable !== undefined) {
    diff.applied.add(reloadable);
    return;
  }
  if (path === 'daemon.models') {
    diffModels(asArray(b), asArray(a), diff);
    return;
  }
  const depth = path === '' ? 0 : path.split('.').length;
  const reloadableBelow = RELOADABLE.some((r) => path === '' || r.startsWith(`${path}.`));
  if (isObject(b) && isObject(a) && (depth < 2 || reloadableBelow)) {
    const keys = new Set([...Object.keys(asRecord(b)), ...Object.keys(asRecord(a))]);
    for (const key of keys) diffKey(path === '' ? key : `${path}.${key}`, asRecord(b)[key], asRecord(a)[key], diff);
    return;
  }
  diff.needsRestart.add(path);
}

function diffModels(b: readonly unknown[], a: readonly unknown[], diff: Diff): void {
  const identities = (ms: readonly unknown[]): string => JSON.stringify(ms.map((m) => [asRecord(m).name, asRecord(m).ref]));
  if (identities(b) !== identities(a)) {
    diff.needsRestart.add('daemon.models (names or refs)');
    return;
  }
  for (let i = 0; i < b.length; i++) {
    const before = asRecord(b[i]);
    const after = asRecord(a[i]);
    for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (isDeepStrictEqual(before[field], after[field])) continue;
      const reported = RELOADABLE_MODEL_FIELDS[field];
      if (reported !== undefined) diff.applied.add(reported);
      else diff.needsRestart.add(`daemon.models.${field}`);
    }
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

function asArray(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}
