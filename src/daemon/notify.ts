/**
 * systemd notifications (sd_notify(3)): READY=1, STATUS=…, WATCHDOG=1, STOPPING=1.
 *
 * Why the `systemd-notify` binary and not a socket of our own: Node has no AF_UNIX
 * datagram sockets, and the npm ways to get one are native addons (`unix-dgram`,
 * `sd-notify`) that need a compiler on the device or prebuilt binaries for every
 * board; `systemd-notify` is on every systemd machine. Its caveat: the message comes
 * from a short-lived child, so the unit needs NotifyAccess=all, and systemd must read
 * the datagram while the child lives to find its unit (systemd#2739). systemd-notify of
 * systemd 252 (Debian 12) follows each message with BARRIER=1 and waits until the
 * manager has processed it, which closes that race; for older systemd we also repeat:
 * every watchdog ping re-sends READY=1 and STATUS (systemd ignores a repeated READY),
 * and pings come at half of WatchdogSec, so one lost datagram neither fails the start
 * nor trips the watchdog.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log/index.ts';

export interface Notifier {
  /** True when a service manager listens (NOTIFY_SOCKET is set). */
  readonly enabled: boolean;
  /** Watchdog interval the manager asked for (WATCHDOG_USEC), ms; undefined when none. */
  readonly watchdogMs: number | undefined;
  notify(fields: Readonly<Record<string, string>>): Promise<void>;
}

/** Runs `systemd-notify` with the given environment; resolves with its failure, or null. */
export type RunNotify = (args: readonly string[], env: NodeJS.ProcessEnv) => Promise<string | null>;

const runSystemdNotify: RunNotify = (args, env) =>
  new Promise((resolve) => {
    execFile('systemd-notify', [...args], { env, timeout: 10_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (err === null) resolve(null);
      else resolve(err.code === 'ENOENT' ? 'systemd-notify is not installed; systemd will not see READY or WATCHDOG' : `systemd-notify failed: ${stderr.trim() || err.message}`);
    });
  });

/** Builds the notifier from the environment systemd gives a Type=notify service. */
export function systemdNotifier(env: NodeJS.ProcessEnv, logger: Logger, pid = process.pid, run: RunNotify = runSystemdNotify): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  return {
    enabled,
    watchdogMs: enabled ? watchdogIntervalMs(env, pid) : undefined,
    notify: async (fields) => {
      if (!enabled) return;
      const args = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
      const failure = await run(args, { PATH: env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: socket });
      if (failure !== null) logger.warn({ fields: Object.keys(fields) }, failure);
    },
  };
}

/**
 * WATCHDOG_USEC applies to us only when WATCHDOG_PID is unset or names our pid
 * (sd_watchdog_enabled(3)); it is in microseconds.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 1000;
}
