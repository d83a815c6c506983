/**
 * A real NOTIFY_SOCKET: a unix datagram socket bound by python3 (Node has none), each
 * datagram printed as one line with `|` for newlines. Stands in for systemd's end of
 * sd_notify(3) so the daemon's READY/WATCHDOG/STATUS/STOPPING can be observed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const SCRIPT = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)
`;

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface NotifyListener {
  readonly socket: string;
  readonly messages: string[];
  /** Resolves with the first message (from `from` on) that satisfies `match`. */
  waitFor(match: (message: string) => boolean, timeoutMs?: number, from?: number): Promise<string>;
  close(): void;
}

export async function startNotifyListener(dir: string): Promise<NotifyListener> {
  const socket = join(dir, 'notify.sock');
  const child: ChildProcess = spawn(PYTHON, ['-c', SCRIPT, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    lines.on('line', (line) => {
      if (line === 'listening') {
        resolve();
        return;
      }
      messages.push(line);
      for (const w of waiters) w();
    });
  });
  return {
    socket,
    messages,
    waitFor: (match, timeoutMs = 30_000, from = 0) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = messages.slice(from).find(match);
          if (found === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no notify message matched within ${timeoutMs} ms; got: ${messages.join(' / ')}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      }),
    close: () => child.kill('SIGKILL'),
  };
}
