import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/index.ts';
// The daemon's files one by one, not its barrel: `status` reads the state, it loads no models, planner or registry client.
import { resolveConfigFile } from '../../daemon/config-file.ts';
import { DeployStateStore } from '../../daemon/deploy-state.ts';
import type { ShadowProgress } from '../../daemon/deploy.ts';
import type { MemoryLimitStatus } from '../../daemon/memory-limit.ts';
import { modelStatus, processAlive, readRuntimeStatus, type StatusReport } from '../../daemon/status.ts';
import { systemHost } from '../../host/index.ts';
import { openStore } from '../../store/index.ts';
import { printJson, runAction } from '../output.ts';

interface StatusFlags {
  config?: string;
  stateDir?: string;
  json?: boolean;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show the daemon (running or not, health, what it serves) and each model: active version, trial, rollbacks, history.')
    .option('--config <file>', 'configuration file (default: /etc/edgevolve/config.yaml when present)')
    .option('--state-dir <dir>', 'state directory (overrides the configuration)')
    .option('--json', 'print one JSON document')
    .action(async (opts: StatusFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const file = resolveConfigFile(opts.config);
        const config = loadConfig({ ...(file === undefined ? {} : { file }), env: process.env });
        const stateDir = opts.stateDir ?? config.stateDir;
        const runtime = await readRuntimeStatus(stateDir);
        // A read-only command: where no daemon ever opened a store, say so instead of creating one
        // (as a user who cannot write /var/lib/edgevolve, that failed with EACCES).
        if (runtime === undefined && !existsSync(join(stateDir, 'state.db'))) {
          const report: StatusReport = { stateDir, daemon: null, models: [] };
          if (opts.json) printJson(report);
          else process.stdout.write(renderStatus(report));
          return;
        }
        const store = await openStore(stateDir, config.store, systemHost());
        let report: StatusReport;
        try {
          const state = new DeployStateStore(stateDir);
          const names = new Set([...config.daemon.models.map((m) => m.name), ...store.repository.versions().map((v) => v.name)]);
          const models = [];
          for (const name of names) models.push(modelStatus(name, store.repository, await state.get(name)));
          const running = runtime !== undefined && runtime.phase !== 'stopped' && processAlive(runtime.pid);
          report = { stateDir, daemon: runtime === undefined ? null : { ...runtime, running }, models };
        } finally {
          store.close();
        }
        if (opts.json) {
          printJson(report);
          return;
        }
        process.stdout.write(renderStatus(report));
      });
    });
}

function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  const d = r.daemon;
  if (d === null) out.push(`daemon: never ran with state dir ${r.stateDir}`);
  else if (!d.running) out.push(`daemon: not running (last seen ${new Date(d.updatedAt).toISOString()}, phase ${d.phase}, pid ${d.pid})`);
  else {
    out.push(`daemon: ${d.phase}, pid ${d.pid}, up ${Math.round((Date.now() - d.startedAt) / 1000)} s${d.url === null ? '' : `, API ${d.url}`}`);
    out.push(`health: ${d.health.ok ? 'ok' : 'UNHEALTHY'} (${d.health.reason})`);
    if (d.telemetry !== null) out.push(`telemetry: ${d.telemetry.ok ? 'ok' : 'degraded'} (${d.telemetry.reason})`);
    const counts = Object.entries(d.eventCounts).map(([k, v]) => `${k} ${v}`);
    if (counts.length > 0) out.push(`events: ${counts.join(', ')}`);
    for (const m of d.served) {
      const b = d.batching?.[m.name];
      out.push(`serving ${m.name} ${m.version}/${m.variant}${b === undefined ? '' : `: batching ${b.enabled ? `on${b.maxRows === undefined ? '' : `, up to ${b.maxRows} rows`}` : 'off'} (${b.reason})`}`);
    }
    // Files written by daemons before these fields existed have neither.
    for (const s of d.shadows ?? []) out.push(`shadow ${s.model}: ${shadowProgressLine(s)}`);
    const limit = d.memoryLimit ?? null;
    if (limit !== null) out.push(`memory limit: ${memoryLimitLine(limit)}`);
  }
  for (const m of r.models) {
    out.push('');
    out.push(`model ${m.name}: ${m.active === null ? 'no active version' : `${m.active.version}/${m.active.variant} active`}${m.trial === null ? '' : ` (on trial since ${new Date(m.trial.startedAt).toISOString()}, entry ${m.trial.entries})`}${m.shadow === null ? '' : ` (${m.shadow.version}/${m.shadow.variant} in shadow since ${new Date(m.shadow.startedAt).toISOString()}, entry ${m.shadow.entries})`}`);
    if (m.variantOverride !== null) out.push(`  variant pinned by the budget watch: ${m.variantOverride}`);
    for (const f of m.failed.slice(-3)) out.push(`  failed ${f.manifestDigest.slice(0, 19)}: ${f.reason}`);
    for (const h of m.history.slice(0, 5)) out.push(`  ${new Date(h.activatedAt).toISOString()}  ${h.version}/${h.variant}  ${h.reason}`);
  }
  return `${out.join('\n')}\n`;
}

function shadowProgressLine(s: ShadowProgress): string {
  const p95 = (ms: number | null): string => (ms === null ? '-' : `${ms.toFixed(1)} ms`);
  return [
    `${s.version}/${s.variant} beside ${s.live}`,
    `${s.mirrored} of ${s.minRequests} requests mirrored (${s.dropped} dropped, ${s.failed} failed)`,
    `${Math.round(s.elapsedMs / 1000)} s of ${Math.round(s.maxDurationMs / 1000)} s`,
    `agreement ${s.agreement === null ? '-' : `${(s.agreement * 100).toFixed(1)}%`}${s.metric === null ? '' : ` (${s.metric})`}`,
    `p95 ${p95(s.candidateP95Ms)} vs ${p95(s.liveP95Ms)} live`,
  ].join(', ');
}

function memoryLimitLine(m: MemoryLimitStatus): string {
  const mib = (bytes: number | null): string => (bytes === null ? 'no limit' : `${(bytes / 1024 ** 2).toFixed(0)} MiB`);
  switch (m.status) {
    case 'unconfigured':
      return 'service.memoryMax not set (the unit keeps its own)';
    case 'unknown':
      return `service.memoryMax ${m.configured}, no cgroup v2 memory.max to compare with`;
    case 'match':
      return `service.memoryMax ${m.configured} (${mib(m.expectedBytes)}) is the cgroup's memory.max`;
    case 'mismatch':
      return `MISMATCH: service.memoryMax ${m.configured} (${mib(m.expectedBytes)}) but ${m.cgroup} has memory.max ${mib(m.actualBytes)}; run scripts/install.sh again`;
  }
}
