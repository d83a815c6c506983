/**
 * Commands that must not wait their turn. The command channel runs state-changing
 * commands one at a time, so a `deploy` command whose candidate is in shadow holds the slot
 * for up to `deploy.shadow.maxDurationMs`; a `rollback` or a `deploy` of another ref queued
 * behind it would only run after the shadow had decided, which defeats both (README "Shadow
 * mode": a newer deploy or a rollback cancels a shadow at once). The channel calls
 * `onQueued` for a command that has to wait; this cancels the shadow then, and the rollback
 * handler later takes the cancelled shadow back (`take`) to answer that the candidate was
 * abandoned, instead of rolling the serving version back a further step.
 */
import type { Command } from '../control/index.ts';
import type { PreemptedShadow } from './deploy.ts';

/** What the preemption needs of the daemon. */
export interface PreemptionTarget {
  /** The model a command without `model` means (the only one served), or undefined. */
  onlyModel(): string | undefined;
  /** The ref the model is deployed from now (a deploy command's, else the configured one). */
  desiredRef(name: string): string | undefined;
  /** The model an artifact names (resolves the ref). */
  modelNameAt(ref: string): Promise<string>;
  preemptShadow(name: string, reason: string, failed: boolean): PreemptedShadow | undefined;
  /** Where a failure of the background resolution goes (logged and counted, never thrown). */
  reportError(where: string, err: unknown): void;
}

export class CommandPreemption {
  readonly #target: PreemptionTarget;
  /** Shadows cancelled for a queued plain rollback, by command id, until its handler runs. */
  readonly #forRollback = new Map<string, PreemptedShadow>();

  constructor(target: PreemptionTarget) {
    this.#target = target;
  }

  /** For CommandChannelOptions.onQueued. */
  onQueued(command: Command): void {
    const target = this.#target;
    if (command.type === 'rollback') {
      const name = command.payload.model ?? target.onlyModel();
      if (name === undefined) return;
      const toVersion = command.payload.toVersion;
      const reason = toVersion === undefined ? 'rollback command' : `rollback command to ${toVersion}`;
      const preempted = target.preemptShadow(name, reason, true);
      // A rollback to a named version deploys it (that path needs nothing back); a plain one must learn the shadow was its to end.
      if (preempted !== undefined && toVersion === undefined) this.#forRollback.set(command.id, preempted);
      return;
    }
    if (command.type === 'deploy') {
      const ref = command.payload.ref;
      void target
        .modelNameAt(ref)
        .then((name) => {
          // The same ref again waits for its own shadow's verdict, as a periodic reconcile does.
          if (target.desiredRef(name) !== ref) target.preemptShadow(name, `superseded by the deploy command for ${ref}`, false);
        })
        .catch((err: unknown) => target.reportError(`preemption by the deploy command for ${ref}`, err));
    }
  }

  /** The shadow a queued plain rollback (by command id) cancelled, once. */
  take(commandId: string): PreemptedShadow | undefined {
    const preempted = this.#forRollback.get(commandId);
    this.#forRollback.delete(commandId);
    return preempted;
  }
}
