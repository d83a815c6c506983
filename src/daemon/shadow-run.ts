/**
 * The deployment's handle on a running shadow, the same over the KServe slots and over
 * in-process serving: stop it, or promote it — its warm session serves the candidate when
 * it was made as the live ones are, else it is closed and the candidate loaded anew.
 */
import type { Session } from '../runtime/index.ts';
import type { ShadowMirror } from '../runtime/serving/index.ts';
import type { ShadowRun } from './deploy.ts';

/** How long stopping a shadow waits for its running mirrors before leaving a hung session be. */
export const SHADOW_STOP_WAIT_MS = 5_000;

export interface ShadowRunParts {
  readonly mirror: ShadowMirror<Session>;
  /** Stops routing live inferences to the mirror (called first by stop and promote). */
  readonly detach: () => void;
  /** Whether the shadow's session may serve: made as the live sessions are, and serving still open. */
  readonly canServe: () => boolean;
  /** Makes the handed-over warm session serve the candidate. */
  readonly install: (warm: Session) => Promise<void>;
}

export function shadowRun({ mirror, detach, canServe, install }: ShadowRunParts): ShadowRun {
  return {
    stats: () => mirror.stats(),
    stop: async () => {
      detach();
      await mirror.close(SHADOW_STOP_WAIT_MS);
    },
    promote: async () => {
      detach();
      const warm = canServe() ? await mirror.handOver(SHADOW_STOP_WAIT_MS) : undefined;
      if (warm === undefined) {
        await mirror.close(SHADOW_STOP_WAIT_MS);
        return { reused: false };
      }
      await install(warm);
      return { reused: true };
    },
  };
}
