import { EdgevolveError } from '../../errors/index.ts';

/** What the rollout needs of the fleet: the telemetry of a device while it serves a version. */
export interface RolloutTelemetry {
  versionStats(fleet: string, device: string, version: string, since: number): {
    inferences: number; errorRate: number | null; p95Ms: number | null; hardSampleRate: number | null;
  };
}

/** Sends commands to devices (src/control sendCommand with the fleet key, wired by the caller). */
export interface FleetCommander {
  deploy(device: string, ref: string): Promise<boolean>;
  rollback(device: string): Promise<boolean>;
}

export interface RolloutOptions {
  readonly fleet: string;
  readonly devices: readonly string[];
  /** Share of devices that get the new version first, in (0, 1]; at least one device. */
  readonly canaryShare: number;
  readonly newVersion: string;
  readonly previousVersion: string;
  readonly ref: string;
  /** Inferences each canary must have served on the new version before it is judged. */
  readonly minInferences: number;
  /** Allowed worsening: p95 latency ratio new/old, and hard-sample rate increase (absolute). */
  readonly maxLatencyRatio: number;
  readonly maxHardRateIncrease: number;
  readonly maxErrorRate: number;
  /** How long to wait for the canaries' telemetry, and how often to look. */
  readonly watchMs: number;
  readonly pollMs: number;
}

export interface RolloutResult {
  readonly outcome: 'promoted' | 'rolled-back';
  readonly canaries: readonly string[];
  readonly rest: readonly string[];
  readonly reason: string;
  /** Devices whose deploy command was not confirmed. */
  readonly failed: readonly string[];
}

/** The canaries: the first ceil(share * n) devices in sorted order (stable across runs). */
export function pickCanaries(devices: readonly string[], share: number): string[] {
  if (!(share > 0 && share <= 1)) throw new EdgevolveError('E_COEVO_INVALID', `canary share must be in (0, 1], got ${share}`);
  const sorted = [...devices].sort();
  return sorted.slice(0, Math.max(1, Math.ceil(share * sorted.length)));
}

/**
 * Judges the canaries from their telemetry: each compares its new-version numbers with its
 * own old-version numbers (same device, so hardware differences cancel). Undefined while
 * some canary has not served `minInferences` on the new version yet.
 */
export function judgeCanaries(telemetry: RolloutTelemetry, options: RolloutOptions, canaries: readonly string[], deployedAt: number): { ok: boolean; reason: string } | undefined {
  for (const device of canaries) {
    const fresh = telemetry.versionStats(options.fleet, device, options.newVersion, deployedAt);
    if (fresh.inferences < options.minInferences) return undefined;
    const old = telemetry.versionStats(options.fleet, device, options.previousVersion, 0);
    if ((fresh.errorRate ?? 0) > options.maxErrorRate) return { ok: false, reason: `${device}: error rate ${fresh.errorRate} > ${options.maxErrorRate}` };
    if (fresh.p95Ms !== null && old.p95Ms !== null && fresh.p95Ms > old.p95Ms * options.maxLatencyRatio) {
      return { ok: false, reason: `${device}: p95 ${fresh.p95Ms.toFixed(2)} ms vs ${old.p95Ms.toFixed(2)} ms before (limit x${options.maxLatencyRatio})` };
    }
    if (fresh.hardSampleRate !== null && old.hardSampleRate !== null && fresh.hardSampleRate > old.hardSampleRate + options.maxHardRateIncrease) {
      return { ok: false, reason: `${device}: hard-sample rate ${fresh.hardSampleRate.toFixed(3)} vs ${old.hardSampleRate.toFixed(3)} before` };
    }
  }
  return { ok: true, reason: `${canaries.length} canaries no worse in errors, p95 latency and hard-sample rate` };
}

/**
 * Canary rollout: deploy to the canaries, watch their telemetry until every one has served
 * enough on the new version, then deploy to the rest, or roll the canaries back when one
 * got worse or the watch timed out.
 */
export async function rollOut(
  options: RolloutOptions, commander: FleetCommander, telemetry: RolloutTelemetry, clock: { now(): number; sleep(ms: number): Promise<void> },
): Promise<RolloutResult> {
  const canaries = pickCanaries(options.devices, options.canaryShare);
  const rest = [...options.devices].sort().filter((d) => !canaries.includes(d));
  const failed: string[] = [];
  const deployedAt = clock.now();
  for (const device of canaries) if (!(await commander.deploy(device, options.ref))) failed.push(device);
  let verdict = failed.length > 0 ? { ok: false, reason: `deploy not confirmed by ${failed.join(', ')}` } : undefined;
  while (verdict === undefined && clock.now() - deployedAt < options.watchMs) {
    verdict = judgeCanaries(telemetry, options, canaries, deployedAt);
    if (verdict === undefined) await clock.sleep(options.pollMs);
  }
  verdict ??= { ok: false, reason: `the canaries did not report ${options.minInferences} inferences on ${options.newVersion} within ${options.watchMs} ms` };
  if (!verdict.ok) {
    for (const device of canaries) await commander.rollback(device);
    return { outcome: 'rolled-back', canaries, rest, reason: verdict.reason, failed };
  }
  for (const device of rest) if (!(await commander.deploy(device, options.ref))) failed.push(device);
  return { outcome: 'promoted', canaries, rest, reason: verdict.reason, failed };
}
