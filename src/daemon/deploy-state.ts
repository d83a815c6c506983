/**
 * The deployment state that must survive a power cut, one small JSON file per model
 * (`<stateDir>/deploy/<name>.json`, replaced atomically): the version on trial, the
 * version to fall back to, how often the daemon has re-entered this trial, versions
 * that failed their gate (so reconcile does not deploy them again) and a variant the
 * budget watch chose, and a candidate in shadow mode. The active pointer itself lives in the store (one transaction);
 * this file is the transaction marker around it (SWUpdate's `recovery_status`).
 */
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { EdgevolveError } from '../errors/index.ts';
import { fsyncDirectory, writeFileAtomic } from '../host/index.ts';

const trialSchema = z
  .object({
    candidateId: z.number().int(),
    candidateManifest: z.string(),
    previousId: z.number().int().nullable(),
    reason: z.string(),
    startedAt: z.number(),
    /** How many times a daemon has started this trial (1 = the first run). */
    entries: z.number().int().nonnegative(),
    phase: z.enum(['activating', 'trial', 'rolling-back']),
    failReason: z.string().optional(),
  })
  .strict();

/**
 * A candidate in shadow mode: not active, the serving version untouched. A start that finds
 * it counts a re-entry; the candidate is shadowed again when reconcile deploys it, or
 * abandoned after `maxTrialEntries` re-entries (a candidate that crashes the process).
 */
const shadowSchema = z
  .object({
    candidateId: z.number().int(),
    candidateManifest: z.string(),
    /** The version serving while the candidate is shadowed. */
    liveId: z.number().int(),
    reason: z.string(),
    startedAt: z.number(),
    entries: z.number().int().nonnegative(),
  })
  .strict();

const modelStateSchema = z
  .object({
    trial: trialSchema.nullable().default(null),
    shadow: shadowSchema.nullable().default(null),
    failed: z.array(z.object({ manifestDigest: z.string(), reason: z.string(), at: z.number() }).strict()).default([]),
    /** Variant chosen by the budget watch; reconcile pulls it instead of the default choice. */
    variantOverride: z.string().nullable().default(null),
    /** Reference set by a fleet `deploy` command; wins over the configured ref until the config names another. */
    desiredRef: z.string().nullable().default(null),
  })
  .strict();

export type TrialMarker = z.infer<typeof trialSchema>;
export type ShadowMarker = z.infer<typeof shadowSchema>;
export type ModelDeployState = z.infer<typeof modelStateSchema>;
/** What `put` accepts: `shadow` may be left out by writers that predate shadow mode (it means none). */
export type ModelDeployStateInput = Omit<ModelDeployState, 'shadow'> & { readonly shadow?: ShadowMarker | null };

/** Failed manifests remembered per model: enough to stop a redeploy loop, bounded so the file stays small. */
const MAX_FAILED = 20;

export function emptyDeployState(): ModelDeployState {
  return { trial: null, shadow: null, failed: [], variantOverride: null, desiredRef: null };
}

export class DeployStateStore {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, 'deploy');
  }

  #path(name: string): string {
    return join(this.#dir, `${name}.json`);
  }

  async get(name: string): Promise<ModelDeployState> {
    let text: string;
    try {
      text = await readFile(this.#path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyDeployState();
      throw new EdgevolveError('E_IO', `cannot read deployment state ${this.#path(name)}: ${(err as Error).message}`, { cause: err });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      // Written atomically, so this is outside damage; a lost marker costs at most one unjudged trial.
      throw new EdgevolveError('E_DEPLOY_STATE_INVALID', `deployment state ${this.#path(name)} is not JSON`, { cause: err, context: { path: this.#path(name) } });
    }
    const parsed = modelStateSchema.safeParse(doc);
    if (!parsed.success) {
      throw new EdgevolveError('E_DEPLOY_STATE_INVALID', `deployment state ${this.#path(name)}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
        context: { path: this.#path(name) },
      });
    }
    return parsed.data;
  }

  async put(name: string, state: ModelDeployStateInput): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const bounded: ModelDeployState = { ...state, shadow: state.shadow ?? null, failed: state.failed.slice(-MAX_FAILED) };
    if (bounded.trial === null && bounded.shadow === null && bounded.failed.length === 0 && bounded.variantOverride === null && bounded.desiredRef === null) {
      await unlink(this.#path(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await fsyncDirectory(this.#dir);
      return;
    }
    await writeFileAtomic(this.#path(name), `${JSON.stringify(bounded)}\n`, 0o600);
  }

  async update(name: string, change: (state: ModelDeployState) => ModelDeployStateInput): Promise<ModelDeployState> {
    const next = change(await this.get(name));
    await this.put(name, next);
    return { ...next, shadow: next.shadow ?? null };
  }

  /** Names that have a state file: models with a trial in progress or a memory of failures. */
  async names(): Promise<string[]> {
    const entries = await readdir(this.#dir).catch(() => [] as string[]);
    return entries.filter((e) => e.endsWith('.json') && !e.startsWith('.')).map((e) => e.slice(0, -'.json'.length));
  }
}
