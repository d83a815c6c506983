/**
 * The daemon's answers to fleet commands (src/control runs the channel: validation,
 * signatures, idempotency, acks and results). Each handler calls the daemon and returns
 * what happened; a failure is thrown as an EdgevolveError and becomes an error result.
 * `optimize`, `collect-samples` and `config` have no handler yet: the channel answers
 * them as unsupported.
 */
import type { CommandHandlers } from '../control/index.ts';
import { EdgevolveError } from '../errors/index.ts';
import type { Daemon } from './daemon.ts';
import type { SelectionProfile } from './registry-port.ts';

export interface CommandDeps {
  readonly daemon: Daemon;
  readonly profile: () => Promise<SelectionProfile>;
}

function onlyModel(daemon: Daemon, model: string | undefined): string {
  if (model !== undefined) return model;
  const served = daemon.runtimeStatus().served.map((m) => m.name);
  const [only, ...more] = served;
  if (only === undefined || more.length > 0) throw new EdgevolveError('E_DAEMON_NO_MODEL', `name the model: this device serves ${served.length === 0 ? 'none' : served.join(', ')}`);
  return only;
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
      if (result.action === 'deployed' && (result.outcome.outcome === 'rolled-back' || result.outcome.outcome === 'aborted')) {
        throw new EdgevolveError('E_DEPLOY_ROLLED_BACK', `${payload.ref} was rolled back: ${result.outcome.reason}`, { context: { ref: payload.ref } });
      }
      return { ...result };
    },
    rollback: async (payload) => {
      const name = onlyModel(daemon, payload.model);
      if (payload.toVersion !== undefined) {
        const target = daemon.versions(name).find((v) => v.version === payload.toVersion);
        if (target === undefined) throw new EdgevolveError('E_STORE_NOT_FOUND', `${name} ${payload.toVersion} is not in the store`);
        return { ...(await daemon.deploy.deploy(target, `rollback command to ${payload.toVersion}`)) };
      }
      return { ...(await daemon.deploy.rollback(name, 'rollback command')) };
    },
  };
}
