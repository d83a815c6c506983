/**
 * Running a program and reading what it printed (`vcgencmd get_throttled`, …), the
 * seam edge-impulse-linux-cli calls its SpawnHelper: probes get this interface, tests
 * replay outputs recorded on real boards.
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** Null when the program was killed by a signal. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunCommand {
  /**
   * Runs `file` with `args` (no shell). Resolves undefined when the program is not
   * installed; a non-zero exit, a signal or the timeout is a result, not a rejection.
   */
  runCommand(file: string, args: readonly string[], options?: { readonly timeoutMs?: number }): Promise<CommandResult | undefined>;
}

/** Probes print a few lines; anything longer than this is not what we asked for. */
const MAX_OUTPUT_BYTES = 1024 * 1024;

export const systemCommands: RunCommand = {
  runCommand: (file, args, options = {}) =>
    new Promise((resolve) => {
      execFile(
        file,
        [...args],
        { timeout: options.timeoutMs ?? 5000, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
        (err, stdout, stderr) => {
          if (err === null) {
            resolve({ exitCode: 0, signal: null, stdout, stderr });
            return;
          }
          // ENOENT from spawn: the program is not on PATH. A numeric code is the exit status.
          if (err.code === 'ENOENT') {
            resolve(undefined);
            return;
          }
          resolve({
            exitCode: typeof err.code === 'number' ? err.code : null,
            signal: err.signal ?? null,
            stdout,
            stderr: stderr || err.message,
          });
        },
      );
    }),
};
