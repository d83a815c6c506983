/**
 * A stand-in for systemd's service manager, for the settings of systemd/edgevolve.service that
 * decide restarts. No systemd runs as PID 1 here, so this follows systemd.service(5) and
 * systemd.unit(5) for a Type=notify unit itself:
 * - a start is `activating` until READY=1 arrives on NOTIFY_SOCKET, then `active`;
 * - with WatchdogSec, WATCHDOG_USEC is passed and every WATCHDOG=1 re-arms the timer; when it
 *   expires the process gets the watchdog signal (SIGABRT, followed by SIGCONT as systemd
 *   does, so a SIGSTOPped process dies of it), and SIGKILL if it has not exited within the
 *   abort timeout (TimeoutStopSec);
 * - Restart=on-failure restarts after RestartSec on a non-zero exit, a death by signal, or a
 *   watchdog timeout, not on exit 0;
 * - every start counts against StartLimitBurst within StartLimitIntervalSec; the start that
 *   would exceed it is refused and the unit is `failed` (start-limit-hit).
 * The values are read from the unit file itself; `timeScale` shortens RestartSec, WatchdogSec
 * and the abort timeout (not the start limit: what it bounds is the number of starts).
 */
import type { DaemonProcess } from './daemon-process.ts';
import type { NotifyListener } from './notify-listener.ts';

export interface UnitRestartSettings {
  readonly restart: string;
  readonly restartSec: number;
  readonly watchdogSec: number;
  readonly timeoutStopSec: number;
  readonly startLimitIntervalSec: number;
  readonly startLimitBurst: number;
}

/** The restart-related settings of a unit file (seconds, as plain numbers in this unit). */
export function readUnitRestartSettings(unit: string): UnitRestartSettings {
  const value = (key: string): string => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(unit);
    if (m === null) throw new Error(`the unit has no ${key}=`);
    return m[1]!.trim();
  };
  const seconds = (key: string): number => {
    const v = value(key);
    if (!/^\d+$/.test(v)) throw new Error(`${key}=${v}: this stand-in reads plain seconds only`);
    return Number(v);
  };
  return {
    restart: value('Restart'),
    restartSec: seconds('RestartSec'),
    watchdogSec: seconds('WatchdogSec'),
    timeoutStopSec: seconds('TimeoutStopSec'),
    startLimitIntervalSec: seconds('StartLimitIntervalSec'),
    startLimitBurst: seconds('StartLimitBurst'),
  };
}

export type UnitState = 'activating' | 'active' | 'auto-restart' | 'failed' | 'inactive';

export interface ServiceManagerOptions {
  readonly settings: UnitRestartSettings;
  /** Multiplies RestartSec, WatchdogSec and the abort timeout. */
  readonly timeScale: number;
  readonly listener: NotifyListener;
  /** Starts the service's main process with the environment the manager adds. */
  readonly spawn: (env: NodeJS.ProcessEnv) => DaemonProcess;
}

export class ServiceManager {
  state: UnitState = 'inactive';
  /** What happened, in order: `start 1`, `ready 1`, `watchdog timeout 1`, `exit 1 SIGABRT`, `exit 2 code 1`, `start-limit-hit`. */
  readonly journal: string[] = [];
  process: DaemonProcess | undefined;
  #starts: number[] = [];
  #watchdog: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #waiters = new Set<() => void>();
  readonly #options: ServiceManagerOptions;

  constructor(options: ServiceManagerOptions) {
    this.#options = options;
  }

  get starts(): number {
    return this.#starts.length;
  }

  start(): void {
    const { settings, timeScale, listener } = this.#options;
    const now = Date.now();
    this.#starts = this.#starts.filter((t) => now - t < settings.startLimitIntervalSec * 1000);
    if (this.#starts.length >= settings.startLimitBurst) {
      this.#record('start-limit-hit', 'failed');
      return;
    }
    this.#starts.push(now);
    const n = this.starts;
    const watchdogMs = settings.watchdogSec * 1000 * timeScale;
    const from = listener.messages.length;
    const daemon = this.#options.spawn({ NOTIFY_SOCKET: listener.socket, WATCHDOG_USEC: String(Math.round(watchdogMs * 1000)) });
    this.process = daemon;
    this.#record(`start ${n}`, 'activating');
    let watchdogFired = false;
    const arm = (): void => {
      clearTimeout(this.#watchdog);
      this.#watchdog = setTimeout(() => {
        watchdogFired = true;
        this.#record(`watchdog timeout ${n}`, this.state);
        // systemd sends SIGCONT after a kill signal, so a stopped process acts on it.
        daemon.child.kill('SIGABRT');
        daemon.child.kill('SIGCONT');
        setTimeout(() => daemon.child.kill('SIGKILL'), settings.timeoutStopSec * 1000 * timeScale).unref();
      }, watchdogMs);
    };
    // The manager reads each datagram as it comes: READY moves the unit to active, WATCHDOG re-arms.
    let seen = from;
    const poll = setInterval(() => {
      for (; seen < listener.messages.length; seen++) {
        const fields = listener.messages[seen]!.split('|');
        if (fields.includes('READY=1') && this.state === 'activating') {
          this.#record(`ready ${n}`, 'active');
          arm();
        } else if (fields.includes('WATCHDOG=1') && this.state === 'active') {
          arm();
        }
      }
    }, 10);
    void daemon.exited.then((code) => {
      clearInterval(poll);
      clearTimeout(this.#watchdog);
      const signal = daemon.child.signalCode;
      this.#record(`exit ${n} ${signal === null ? `code ${code}` : signal}`, this.state);
      const failed = code !== 0 || signal !== null || watchdogFired;
      if (this.#stopped || !failed || settings.restart !== 'on-failure') {
        this.#record(`stopped ${n}`, failed ? 'failed' : 'inactive');
        return;
      }
      this.#record(`scheduled restart ${n}`, 'auto-restart');
      this.#restartTimer = setTimeout(() => this.start(), settings.restartSec * 1000 * timeScale);
    });
  }

  /** Resolves once the journal has an entry matching, from entry `from` on. */
  waitFor(match: RegExp, timeoutMs: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.journal.slice(from).find((e) => match.test(e));
        if (found === undefined) return false;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no journal entry matched ${match} within ${timeoutMs} ms: ${this.journal.join(' / ')}`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }

  /** Stops managing: no more restarts; kills a running process. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#watchdog);
    const daemon = this.process;
    if (daemon !== undefined && daemon.child.exitCode === null && daemon.child.signalCode === null) {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
    }
  }

  #record(entry: string, state: UnitState): void {
    this.journal.push(entry);
    this.state = state;
    for (const w of [...this.#waiters]) w();
  }
}
