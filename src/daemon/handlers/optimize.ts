/** The `optimize` command's budgets in the planner's terms, and its result as the command publishes it. */
import type { Budgets } from '../../planner/index.ts';
import type { OptimizeRun } from '../reconcile.ts';

/** Budgets as the command carries them (src/control budgetsSchema). */
export interface CommandBudgets {
  readonly latencyP95Ms?: number | undefined;
  readonly memoryMb?: number | undefined;
  readonly sizeMb?: number | undefined;
  readonly maxAccuracyDropPct?: number | undefined;
}

/** The planner's budgets; the accuracy guard defaults to planner.maxAccuracyDrop (points, the same unit as the command's percent). */
export function plannerBudgetsOf(budgets: CommandBudgets, defaultMaxAccuracyDrop: number): Budgets {
  return {
    ...(budgets.latencyP95Ms === undefined ? {} : { latencyP95Ms: budgets.latencyP95Ms }),
    ...(budgets.memoryMb === undefined ? {} : { memoryMB: budgets.memoryMb }),
    ...(budgets.sizeMb === undefined ? {} : { sizeMB: budgets.sizeMb }),
    maxAccuracyDrop: budgets.maxAccuracyDropPct ?? defaultMaxAccuracyDrop,
  };
}

/** What the device answers: the chosen candidate, what it measured, and whether it now serves. */
export function optimizeResult(run: OptimizeRun): Record<string, unknown> {
  const { outcome, deploy } = run;
  const base = { model: run.model, parent: run.parent, cached: outcome.cached };
  if (outcome.kind === 'parent-meets') return { ...base, outcome: 'parent-meets', chosen: 'fp32', reason: outcome.reason, deployed: false };
  if (outcome.kind === 'no-candidate') return { ...base, outcome: 'no-candidate', chosen: null, reason: outcome.summary, advice: outcome.advice, deployed: false };
  const deployed =
    deploy === null ? false : deploy.action === 'up-to-date' || (deploy.action === 'deployed' && (deploy.outcome.outcome === 'committed' || deploy.outcome.outcome === 'unchanged'));
  return {
    ...base,
    outcome: 'built',
    chosen: outcome.chosen,
    reason: outcome.reason,
    variant: outcome.record.variant,
    version: outcome.record.version,
    metrics: outcome.metrics,
    // Deployed: it passed its gate now, or it already was the active version.
    deployed,
    deploy: deploy === null ? null : deploy.action === 'deployed' ? deploy.outcome.outcome : deploy.action,
    ...(deploy?.action === 'skipped-failed' ? { deployReason: deploy.reason } : {}),
    ...(deploy?.action === 'deployed' && 'reason' in deploy.outcome ? { deployReason: deploy.outcome.reason } : {}),
  };
}
