/**
 * What `edgevolve status` shows: the running daemon's own report (written atomically to
 * `<stateDir>/run/status.json` whenever something changes and every few seconds) and
 * the store's deployments and history, which are true whether the daemon runs or not.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../host/index.ts';
import type { ModelRepository } from '../store/index.ts';
import type { ShadowProgress } from './deploy.ts';
import type { DaemonEvent } from './events.ts';
import type { MemoryLimitStatus } from './memory-limit.ts';
import type { ModelDeployState } from './deploy-state.ts';
import type { BatchingVerdict, ServedModel, ServiceHealth } from './ports.ts';

export interface RuntimeStatus {
  readonly pid: number;
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly phase: 'starting' | 'ready' | 'stopping' | 'stopped';
  readonly url: string | null;
  readonly served: readonly ServedModel[];
  readonly health: ServiceHealth;
  readonly probes: Readonly<Record<string, unknown>>;
  readonly eventCounts: Readonly<Record<string, number>>;
  readonly recentEvents: readonly DaemonEvent[];
  readonly telemetry: ServiceHealth | null;
  /** Candidates in shadow now: mirrored requests against minRequests, elapsed against maxDurationMs, agreement, p95s. */
  readonly shadows: readonly ShadowProgress[];
  /** service.memoryMax against the cgroup's memory.max, as checked at start (null: not checked). */
  readonly memoryLimit: MemoryLimitStatus | null;
  /** Per served model: whether concurrent requests are batched, and why (absent from files written by daemons before it). */
  readonly batching?: Readonly<Record<string, BatchingVerdict>>;
}

export function runtimeStatusPath(stateDir: string): string {
  return join(stateDir, 'run', 'status.json');
}

export async function writeRuntimeStatus(stateDir: string, status: RuntimeStatus): Promise<void> {
  await mkdir(join(stateDir, 'run'), { recursive: true, mode: 0o700 });
  await writeFileAtomic(runtimeStatusPath(stateDir), `${JSON.stringify(status)}\n`, 0o644);
}

export async function readRuntimeStatus(stateDir: string): Promise<RuntimeStatus | undefined> {
  try {
    return JSON.parse(await readFile(runtimeStatusPath(stateDir), 'utf8')) as RuntimeStatus;
  } catch {
    return undefined;
  }
}

/** True when a process with this pid exists (signal 0 checks without sending). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ModelStatus {
  readonly name: string;
  readonly active: { readonly version: string; readonly variant: string; readonly manifestDigest: string; readonly activatedAt: number | null } | null;
  readonly trial: ModelDeployState['trial'];
  /** A candidate in shadow mode beside the active version (deploy.shadow). */
  readonly shadow: { readonly version: string; readonly variant: string; readonly startedAt: number; readonly entries: number } | null;
  readonly failed: ModelDeployState['failed'];
  readonly variantOverride: string | null;
  readonly history: readonly { readonly version: string; readonly variant: string; readonly activatedAt: number; readonly reason: string }[];
}

export interface StatusReport {
  readonly stateDir: string;
  readonly daemon: (RuntimeStatus & { readonly running: boolean }) | null;
  readonly models: readonly ModelStatus[];
}

export function modelStatus(name: string, repository: ModelRepository, deploy: ModelDeployState): ModelStatus {
  const active = repository.active(name);
  const history = repository.history(name, 10);
  return {
    name,
    active: active === undefined ? null : { version: active.version, variant: active.variant, manifestDigest: active.manifestDigest, activatedAt: history.find((h) => h.versionId === active.id)?.activatedAt ?? null },
    trial: deploy.trial,
    shadow: shadowStatus(repository, name, deploy.shadow),
    failed: deploy.failed,
    variantOverride: deploy.variantOverride,
    history: history.map((h) => ({ version: h.version, variant: h.variant, activatedAt: h.activatedAt, reason: h.reason })),
  };
}

function shadowStatus(repository: ModelRepository, name: string, shadow: ModelDeployState['shadow']): ModelStatus['shadow'] {
  if (shadow === null) return null;
  const candidate = repository.versions(name).find((v) => v.id === shadow.candidateId);
  return { version: candidate?.version ?? '?', variant: candidate?.variant ?? '?', startedAt: shadow.startedAt, entries: shadow.entries };
}
