/**
 * Timing for the benchmark scripts that compare our code with a shell command in the same
 * run (bench-registry, proto-parallel-pull): wall and CPU time of an in-process task and of
 * a bash command, and `--name value` numeric flags.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Sample {
  readonly ms: number;
  readonly cpuMs: number;
}

/** Times `task` in this process; process.cpuUsage counts every thread (libuv's writes and fsyncs too). */
export async function inProcess(task: () => Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await task();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Times a shell command; bash's `time` reports its user and system CPU seconds on stderr. */
export async function inShell(script: string, ...argv: string[]): Promise<Sample> {
  const t0 = performance.now();
  const timed = await run('bash', ['-c', `TIMEFORMAT="%3U %3S"; time { ${script}; }`, 'bench', ...argv]);
  const ms = performance.now() - t0;
  const [user, sys] = timed.stderr.trim().split(/\s+/).map(Number);
  return { ms, cpuMs: ((user ?? Number.NaN) + (sys ?? Number.NaN)) * 1000 };
}

/** The number after `--<name>` on the command line, or `fallback`. */
export function numericFlag(name: string, fallback: number, args = process.argv.slice(2)): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
