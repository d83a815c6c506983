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

export function planReload(before: Readonly<Config>, after: Readonly<Config>): ReloadPlan {
  const applied: string[] = [];
  const needsRestart: string[] = [];
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  const keys = new Set([...Object.keys(b), ...Object.keys(a)]);
  for (const key of keys) {
    if (isDeepStrictEqual(b[key], a[key])) continue;
    if (key === 'log') (isDeepStrictEqual(withoutKey(b.log, 'level'), withoutKey(a.log, 'level')) ? applied : needsRestart).push('log.level');
    else if (key === 'deploy') applied.push('deploy');
    else if (key === 'daemon') diffDaemon(before.daemon, after.daemon, applied, needsRestart);
    else if (isObject(b[key]) && isObject(a[key])) {
      // Name the changed keys of a section, so the log says exactly what waits for a restart.
      const sub = new Set([...Object.keys(asRecord(b[key])), ...Object.keys(asRecord(a[key]))]);
      for (const s of sub) {
        if (isDeepStrictEqual(asRecord(b[key])[s], asRecord(a[key])[s])) continue;
        (RELOADABLE.includes(`${key}.${s}`) ? applied : needsRestart).push(`${key}.${s}`);
      }
    } else needsRestart.push(key);
  }
  return { applied, needsRestart };
}

function diffDaemon(b: Config['daemon'], a: Config['daemon'], applied: string[], needsRestart: string[]): void {
  for (const key of ['watchdog', 'reconcileIntervalMs'] as const) if (!isDeepStrictEqual(b[key], a[key])) applied.push(`daemon.${key}`);
  for (const key of ['seedFixtures', 'shutdownTimeoutMs'] as const) if (!isDeepStrictEqual(b[key], a[key])) needsRestart.push(`daemon.${key}`);
  const names = (ms: Config['daemon']['models']): string => JSON.stringify(ms.map((m) => [m.name, m.ref]));
  if (names(b.models) !== names(a.models)) needsRestart.push('daemon.models (names or refs)');
  else {
    if (!isDeepStrictEqual(b.models.map((m) => m.budgets), a.models.map((m) => m.budgets))) applied.push('daemon.models.budgets');
    // optimize, optimizeTimeLimitS, optimizeData, optimizeMethods: read on each reconcile and re-plan.
    const optimizeOf = (ms: Config['daemon']['models']): unknown[] => ms.map((m) => [m.optimize, m.optimizeTimeLimitS, m.optimizeData, m.optimizeMethods]);
    if (!isDeepStrictEqual(optimizeOf(b.models), optimizeOf(a.models))) applied.push('daemon.models.optimize');
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

function withoutKey(v: unknown, key: string): Record<string, unknown> {
  const { [key]: _dropped, ...rest } = asRecord(v);
  return rest;
}
