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

/** What `rolloutTargets` needs of a fleet device (FleetDevice fits). */
export interface RolloutCandidate {
  readonly fleet: string;
  readonly device: string;
  readonly status: 'online' | 'offline';
  readonly model: string | null;
  readonly version: string | null;
}

export interface RolloutTargets {
  readonly devices: readonly string[];
  /** The version the devices serve now: the baseline each canary is compared with. */
  readonly previousVersion: string;
  /** Devices of the fleet left out, with why. */
  readonly skipped: readonly { readonly device: string; readonly reason: string }[];
}

/**
 * The devices a rollout goes to: the fleet's online devices serving `model` (any model when
 * undefined) at the baseline version, which is `previousVersion` when given, else the version
 * most of them serve. Devices already on the new version, offline, or on another version are skipped.
 */
export function rolloutTargets(
  fleet: readonly RolloutCandidate[],
  options: { readonly fleet: string; readonly model?: string | undefined; readonly newVersion: string; readonly previousVersion?: string | undefined },
): RolloutTargets {
  const skipped: { device: string; reason: string }[] = [];
  const eligible: RolloutCandidate[] = [];
  for (const d of fleet) {
    if (d.fleet !== options.fleet) continue;
    if (options.model !== undefined && d.model !== options.model) skipped.push({ device: d.device, reason: `serves ${d.model ?? 'nothing'}` });
    else if (d.status !== 'online') skipped.push({ device: d.device, reason: 'offline' });
    else if (d.version === null) skipped.push({ device: d.device, reason: 'has reported no version yet' });
    else if (d.version === options.newVersion) skipped.push({ device: d.device, reason: `already on ${options.newVersion}` });
    else eligible.push(d);
  }
  let previousVersion = options.previousVersion;
  if (previousVersion === undefined) {
    const counts = new Map<string, number>();
    for (const d of eligible) counts.set(d.version!, (counts.get(d.version!) ?? 0) + 1);
    previousVersion = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
  }
  if (previousVersion === undefined) throw new EdgevolveError('E_COEVO_INVALID', `no online device of fleet ${options.fleet} can take ${options.newVersion}${skipped.length === 0 ? '' : `: ${skipped.map((s) => `${s.device} ${s.reason}`).join(', ')}`}`);
  const devices: string[] = [];
  for (const d of eligible) {
    if (d.version === previousVersion) devices.push(d.device);
    else skipped.push({ device: d.device, reason: `on ${d.version}, not the baseline ${previousVersion}` });
  }
  if (devices.length === 0) throw new EdgevolveError('E_COEVO_INVALID', `no online device of fleet ${options.fleet} serves ${previousVersion}`);
  return { devices: devices.sort(), previousVersion, skipped };
}

/** The version a reference names: its tag (`host/repo:1.1.0`, `oci-layout:dir:1.1.0`); undefined for a digest. */
export function versionOfRef(ref: string): string | undefined {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return undefined;
  const tag = /:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.exec(ref)?.[1];
  // host:port/repo has a colon too, but then the part after it contains a slash and does not match.
  return tag;
}
