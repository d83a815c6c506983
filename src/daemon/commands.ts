/**
 * The daemon's answers to fleet commands (src/control runs the channel: validation,
 * signatures, idempotency, acks and results). Each handler calls the daemon and returns
 * what happened; a failure is thrown as an EdgevolveError and becomes an error result.
 * The daemon executes ping, profile, set-budgets, deploy, rollback, optimize (the planner
 * on this device, handlers/optimize.ts) and config (a validated patch of reloadable keys,
 * kept in an overlay file, handlers/config.ts); collect-samples is src/coevolution's.
 */
import type { CommandHandlers } from '../control/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { Daemon } from './daemon.ts';
import type { ReconcileResult } from './reconcile.ts';
import { checkConfigPatch, writeOverlay } from './handlers/config.ts';
import { optimizeResult, plannerBudgetsOf } from './handlers/optimize.ts';
import { CommandPreemption } from './preemption.ts';
import { rollbackTarget } from './rollback-target.ts';
import type { SelectionProfile } from './registry-port.ts';

export interface CommandDeps {
  readonly daemon: Daemon;
  readonly profile: () => Promise<SelectionProfile>;
  /** Shadows cancelled for commands still queued in the channel (preemption.ts); the rollback handler takes its own back. */
  readonly preemption?: CommandPreemption;
}

/** The preemption of queued commands over this daemon, for CommandChannelOptions.onQueued and CommandDeps. */
export function commandPreemption(daemon: Daemon): CommandPreemption {
  return new CommandPreemption({
    onlyModel: () => {
      const served = daemon.runtimeStatus().served.map((m) => m.name);
      return served.length === 1 ? served[0] : undefined;
    },
    desiredRef: (name) => daemon.desiredRef(name),
    modelNameAt: (ref) => daemon.reconciler.modelNameAt(ref),
    preemptShadow: (name, reason, failed) => daemon.deploy.preemptShadow(name, reason, failed),
    reportError: (where, err) => daemon.reportError(where, err),
  });
}

function onlyModel(daemon: Daemon, model: string | undefined): string {
  if (model !== undefined) return model;
  const served = daemon.runtimeStatus().served.map((m) => m.name);
  const [only, ...more] = served;
  if (only === undefined || more.length > 0) throw new EdgevolveError('E_DAEMON_NO_MODEL', `name the model: this device serves ${served.length === 0 ? 'none' : served.join(', ')}`);
  return only;
}

/**
 * The deploy command's answer: the reconcile result when `ref` ended up serving (or was
 * already), else an error result whose code says how it did not: rolled back by its gate
 * (or a state loop), rejected in shadow, or superseded (its shadow cancelled by a newer
 * deploy or a rollback before a verdict; the message says which).
 */
export function deployCommandResult(ref: string, result: ReconcileResult): ReconcileResult {
  if (result.action !== 'deployed') return result;
  const outcome = result.outcome;
  const context = { context: { ref } };
  if (outcome.outcome === 'aborted' && outcome.cancelled === true) throw new EdgevolveError('E_DEPLOY_SUPERSEDED', `${ref} was not deployed: ${outcome.reason}`, context);
  if (outcome.outcome === 'rolled-back' || outcome.outcome === 'aborted') throw new EdgevolveError('E_DEPLOY_ROLLED_BACK', `${ref} was rolled back: ${outcome.reason}`, context);
  if (outcome.outcome === 'rejected') throw new EdgevolveError('E_DEPLOY_SHADOW_REJECTED', `${ref} was rejected in shadow mode: ${outcome.reason}`, context);
  return result;
}

export function commandHandlers(deps: CommandDeps): CommandHandlers {
  const { daemon } = deps;
  return {
    ping: (payload) => Promise.resolve({ echo: payload.echo ?? null, status: daemon.statusLine(), health: daemon.health() }),
    profile: async () => ({ profile: await deps.profile() }),
    'set-budgets': (payload) => {
      const name = onlyModel(daemon, payload.model);
      return Promise.resolve({ model: name, budgets: daemon.setBudgets(name, payload.budgets) });
    },
    deploy: async (payload, context) => {
      const result = await daemon.deployRef(payload.ref, {
        ...(payload.variant === undefined ? {} : { variant: payload.variant }),
        ...(payload.budgets === undefined ? {} : { budgets: payload.budgets }),
        signal: context.signal,
      });
      return { ...deployCommandResult(payload.ref, result) };
    },
    rollback: async (payload, context) => {
      const name = onlyModel(daemon, payload.model);
      // An operator's rollback outranks a search for a new variant of the same model.
      daemon.reconciler.cancelOptimize(name, 'rollback command');
      if (payload.toVersion !== undefined) {
        // The exact variant: a local variant shares its parent's version string (rollback-target.ts).
        const target = rollbackTarget({ name, toVersion: payload.toVersion, variant: payload.variant }, daemon.versions(name), daemon.history(name));
        return { ...(await daemon.deploy.deploy(target, `rollback command to ${target.version}/${target.variant} (${target.manifestDigest})`, undefined, { shadow: false })) };
      }
      return { ...(await daemon.deploy.rollback(name, 'rollback command', deps.preemption?.take(context.id))) };
    },
    optimize: async (payload, context) => {
      const name = onlyModel(daemon, payload.model);
      const run = await daemon.optimizeModel(
        name,
        {
          ...(payload.budgets === undefined ? {} : { budgets: plannerBudgetsOf(payload.budgets, daemon.config.planner.maxAccuracyDrop) }),
          ...(payload.methods === undefined ? {} : { methods: payload.methods }),
        },
        context.signal,
      );
      return optimizeResult(run);
    },
    config: async (payload) => {
      // Checked again here (the channel checked it before acking): another config command may have run since.
      const { next, changed } = checkConfigPatch(daemon.config, payload.patch);
      const overlay = await writeOverlay(daemon.config.stateDir, payload.patch);
      const plan = daemon.reload(next);
      return { changed: plan.applied.length > 0 ? plan.applied : changed, overlay };
    },
  };
}
