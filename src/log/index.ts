import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  /** Where log lines go; the CLI sends them to stderr so stdout stays for results. */
  destination?: DestinationStream | NodeJS.WritableStream;
}

/** Paths whose values never reach a log line. */
const REDACT = [
  'password',
  'token',
  'authorization',
  '*.password',
  '*.token',
  '*.authorization',
  '*.headers.authorization',
  'mqtt.password',
  'registry.auth.password',
];

/** The one logger factory; modules take a child logger: `logger.child({ module: 'store' })`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ fd: 2, sync: true });
  return pino(
    { level: options.level ?? 'info', redact: { paths: REDACT, censor: '[redacted]' }, base: undefined },
    destination,
  );
}

/** A logger that discards everything (tests, `--quiet`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
