/**
 * systemd notifications (sd_notify(3)): READY=1, STATUS=…, WATCHDOG=1, STOPPING=1.
 *
 * Why the `systemd-notify` binary and not a socket of our own: Node has no AF_UNIX
 * datagram sockets, and the npm ways to get one are native addons (`unix-dgram`,
 * `sd-notify`) that need a compiler on the device or prebuilt binaries for every
 * board; `systemd-notify` is on every systemd machine. Its caveat: the message comes
 * from a short-lived child, so the unit needs NotifyAccess=all, and if the child exits
 * before systemd reads the datagram systemd may not find its unit (systemd#2739) and
 * drop it. We make that harmless by repetition: every watchdog ping re-sends READY=1
 * and STATUS (systemd ignores a repeated READY), and pings come at half of
 * WatchdogSec, so one lost datagram neither fails the start nor trips the watchdog.
 */
import type { RunCommand } from '../host/commands.ts';
import type { Logger } from '../log/index.ts';

export interface Notifier {
  /** True when a service manager listens (NOTIFY_SOCKET is set). */
  readonly enabled: boolean;
  /** Watchdog interval the manager asked for (WATCHDOG_USEC), ms; undefined when none. */
  readonly watchdogMs: number | undefined;
  notify(fields: Readonly<Record<string, string>>): Promise<void>;
}

/** Builds the notifier from the environment systemd gives a Type=notify service. */
export function systemdNotifier(env: NodeJS.ProcessEnv, commands: RunCommand, logger: Logger, pid = process.pid): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  return {
    enabled,
    watchdogMs: enabled ? watchdogIntervalMs(env, pid) : undefined,
    notify: async (fields) => {
      if (!enabled) return;
      const args = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`);
      const result = await commands.runCommand('systemd-notify', args, { timeoutMs: 5_000 });
      if (result === undefined) logger.warn('systemd-notify is not installed; systemd will not see READY or WATCHDOG');
      else if (result.exitCode !== 0) logger.warn({ exitCode: result.exitCode, stderr: result.stderr.trim() }, 'systemd-notify failed');
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
