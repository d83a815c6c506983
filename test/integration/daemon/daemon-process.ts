/** Runs `edgevolve run` as a real child process (src/cli/bin.js, as systemd's ExecStart does). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (or 128+signal). */
  readonly exited: Promise<number>;
  /** Resolves with the first stdout line matching. */
  line(match: RegExp, timeoutMs?: number): Promise<string>;
}

/**
 * A recorded host root (for the daemon's `hostRoot`) whose cgroup v2 says the daemon runs in
 * edgevolve.service with memory.max `memoryMaxBytes`, as a unit installed with that limit would.
 */
export async function writeServiceCgroupRoot(root: string, memoryMaxBytes: number): Promise<void> {
  await mkdir(join(root, 'proc/self'), { recursive: true });
  await writeFile(join(root, 'proc/self/cgroup'), '0::/system.slice/edgevolve.service\n');
  await mkdir(join(root, 'sys/fs/cgroup/system.slice/edgevolve.service'), { recursive: true });
  await writeFile(join(root, 'sys/fs/cgroup/system.slice/edgevolve.service/memory.max'), `${memoryMaxBytes}\n`);
}

export async function writeDaemonConfig(dir: string, stateDir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, 'config.yaml');
  const config = {
    stateDir,
    log: { level: 'info' },
    server: { port: 0 },
    ...extra,
    daemon: { seedFixtures: true, ...((extra.daemon as object | undefined) ?? {}), watchdog: { probeIntervalMs: 200, ...(((extra.daemon as { watchdog?: object } | undefined)?.watchdog) ?? {}) } },
    deploy: { minTrialMs: 0, minSamples: 5, trialProbeIntervalMs: 5, ...((extra.deploy as object | undefined) ?? {}) },
  };
  await writeFile(path, stringify(config));
  return path;
}

const SIGNALS: Readonly<Record<string, number>> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2 };

export function startDaemonProcess(configPath: string, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, ['src/cli/bin.js', 'run', '--config', configPath], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (l) => {
    stdout.push(l);
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (SIGNALS[signal ?? ''] ?? 0))));
  return {
    child,
    stdout,
    stderr,
    exited,
    line: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = stdout.find((l) => match.test(l));
          if (found === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no stdout line matched ${match} in ${timeoutMs} ms; stderr tail:\n${stderr.slice(-10).join('\n')}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
        void exited.then(() => {
          if (waiters.has(check)) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`the daemon exited before printing ${match}; stderr tail:\n${stderr.slice(-10).join('\n')}`));
          }
        });
      }),
  };
}
