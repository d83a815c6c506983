import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.ts';
import { systemCommands } from '../../host/commands.ts';
import { nodeFiles } from '../../host/files.ts';
import { systemHost } from '../../host/index.ts';
import { systemInfo } from '../../host/system-info.ts';
import { MicroBenchCache, profileDevice, type DeviceProfile } from '../../hardware/index.ts';
import { describeThrottle } from '../../hardware/parse/throttled.ts';
import { openStateDatabase, type StateDatabase } from '../../store/index.ts';
import { printJson, runAction } from '../output.ts';

interface ProfileFlags {
  json?: boolean;
  refresh?: boolean;
  measure: boolean;
  providers: boolean;
  config?: string;
  stateDir?: string;
}

export function registerProfile(program: Command): void {
  program
    .command('profile')
    .description('Profile this device: board, CPU and ISA features, memory, storage, thermal state, accelerators, onnxruntime providers, measured int8/fp32 throughput.')
    .option('--json', 'print one JSON document')
    .option('--refresh', 're-run the micro-benchmarks even when the cache has this hardware')
    .option('--no-measure', 'skip the micro-benchmarks (use cached ones if any)')
    .option('--no-providers', 'do not try each onnxruntime execution provider (faster)')
    .option('--config <file>', 'configuration file (for stateDir)')
    .option('--state-dir <dir>', 'state directory (overrides the configuration)')
    .action(async (opts: ProfileFlags) => {
      await runAction(Boolean(opts.json), async () => {
        const config = loadConfig({ ...(opts.config === undefined ? {} : { file: opts.config }), env: process.env });
        const stateDir = opts.stateDir ?? config.stateDir;
        const db = openCache(stateDir);
        try {
          const profile = await profileDevice(
            { host: { ...systemHost(), ...nodeFiles(), ...systemCommands, ...systemInfo }, ...(db === undefined ? {} : { cache: new MicroBenchCache(db) }) },
            { stateDir, arch: process.arch, refresh: Boolean(opts.refresh), measure: opts.measure, probeProviders: opts.providers },
          );
          if (opts.json) printJson(profile);
          else process.stdout.write(renderProfile(profile));
        } finally {
          db?.close();
        }
      });
    });
}

/** The cache is an optimisation: an unwritable state directory costs a re-measure, not the profile. */
function openCache(stateDir: string): StateDatabase | undefined {
  try {
    mkdirSync(stateDir, { recursive: true });
    return openStateDatabase(join(stateDir, 'state.db'));
  } catch (err) {
    console.error(`edgevolve: measurements are not cached: ${(err as Error).message}`);
    return undefined;
  }
}

export function renderProfile(p: DeviceProfile): string {
  const out: string[] = [];
  const mhz = (hz: number | null): string => (hz === null ? '?' : `${Math.round(hz / 1e6)}`);
  out.push(
    table([
      ['board', `${p.board.model ?? 'unknown'} (${p.board.family}${p.board.soc === null ? '' : `, ${p.board.soc}`})`],
      ...(p.board.jetson === null ? [] : [['jetson', `L4T ${p.board.jetson.l4t}${p.board.jetson.board === null ? '' : ` (${p.board.jetson.board})`}`]]),
      ['os', `${p.os.distro} ${p.os.release}, kernel ${p.os.kernel}, ${p.cpu.arch}`],
      ['cpu', `${p.cpu.modelName}, ${p.cpu.cores} cores`],
      ['isa', p.cpu.featureSummary.join(', ') || '-'],
      ['memory', `${gib(p.memory.totalBytes)} total, ${gib(p.memory.availableBytes)} available`],
      ['swap', p.memory.swapTotalBytes === 0 ? 'none' : `${gib(p.memory.swapTotalBytes)} total, ${gib(p.memory.swapFreeBytes)} free`],
      ['storage', `${p.storage.freeBytes === null ? '?' : gib(p.storage.freeBytes)} free on ${p.storage.path}`],
      ['onnxruntime', `${p.onnxruntime.version}; providers: ${p.onnxruntime.executionProviders.map((e) => `${e.name}${e.usable ? '' : ' (not usable)'}`).join(', ') || '-'}`],
      ['fingerprint', p.fingerprint],
    ]),
  );
  section(out, 'cpu clusters', ['cores', 'cpus', 'min MHz', 'max MHz', 'now MHz', 'governor'],
    p.cpu.clusters.map((c) => [c.coreName, c.cpus.join(','), mhz(c.minHz), mhz(c.scalingMaxHz !== null && c.maxHz !== null && c.scalingMaxHz < c.maxHz ? c.scalingMaxHz : c.maxHz) + (c.scalingMaxHz !== null && c.maxHz !== null && c.scalingMaxHz < c.maxHz ? ' (capped)' : ''), mhz(c.curHz), c.governor ?? '-']));
  section(out, 'thermal zones', ['zone', 'type', '°C', 'trips'],
    p.thermal.zones.map((z) => [z.name, z.type, z.celsius === null ? '?' : z.celsius.toFixed(1), z.trips.map((t) => `${t.type} ${t.celsius}`).join(', ') || '-']));
  const throttle = p.thermal.piThrottle === null ? [] : describeThrottle(p.thermal.piThrottle);
  out.push(`throttling: ${p.thermal.throttlingNow ? 'YES' : 'no'}${p.thermal.notes.length > 0 ? ` (${p.thermal.notes.join('; ')})` : ''}${p.thermal.piThrottle !== null && throttle.length === 0 ? ' (vcgencmd: none since boot)' : ''}`);
  section(out, 'accelerators', ['kind', 'devices', 'driver'], p.accelerators.map((a) => [a.kind, a.devices.join(' '), a.driver ?? '-']));
  section(out, 'execution providers', ['name', 'bundled', 'usable', 'reason'],
    p.onnxruntime.executionProviders.map((e) => [e.name, e.bundled ? 'yes' : 'no', e.usable ? 'yes' : 'no', e.reason === null ? '-' : oneLine(e.reason).slice(0, 100)]));
  if (p.measured === null) out.push('measured: not measured (run without --no-measure)');
  else {
    const m = p.measured;
    out.push(
      `measured (${m.measuredAt}, ${(m.durationMs / 1000).toFixed(1)} s, ${m.threads} thread${m.threads === 1 ? "" : "s"} per kernel):\n${table([
        ['GEMM', `fp32 ${m.gemmFp32Gflops.toFixed(1)} GFLOP/s, int8 ${m.gemmInt8Gops.toFixed(1)} GOP/s (int8 ${m.gemmInt8Speedup.toFixed(2)}x)`],
        ['Conv 3x3', `fp32 ${m.convFp32Gflops.toFixed(1)} GFLOP/s, int8 ${m.convInt8Gops.toFixed(1)} GOP/s (int8 ${m.convInt8Speedup.toFixed(2)}x)`],
        ['memory', `${m.memoryBandwidthGBps.toFixed(2)} GB/s`],
      ], '  ')}`,
    );
  }
  if (p.warnings.length > 0) out.push(`warnings:\n${p.warnings.map((w) => `  ${w}`).join('\n')}`);
  return `${out.join('\n\n')}\n`;
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(bytes < 10 * 1024 ** 3 ? 2 : 1)} GiB`;
}

function section(out: string[], title: string, header: string[], rows: string[][]): void {
  out.push(`${title}:\n${rows.length === 0 ? '  (none)' : table([header, ...rows], '  ')}`);
}

function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ');
}
