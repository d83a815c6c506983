/**
 * A TypeScript fixture run as a child process (through tsx) whose stdout lines the test
 * waits on: the kill tests start a device or agent this way, SIGKILL it at a known
 * point, and start it again on the same state directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface TsxChild {
  readonly child: ChildProcess;
  /** The first stdout line starting with `prefix`, already printed or still to come. */
  line(prefix: string): Promise<string>;
  /** SIGKILL, resolved once the process is gone. */
  killed(): Promise<void>;
}

export function spawnTsxChild(script: string, env: Record<string, string>): TsxChild {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      lines.push(l);
      for (const w of [...waiters]) {
        if (l.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    line: (prefix) => {
      const found = lines.find((l) => l.startsWith(prefix));
      return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ prefix, resolve }));
    },
    killed: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
