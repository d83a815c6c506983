/**
 * The isolated benchmark: the model runs in a forked child so that a segfault, an
 * abort, the OOM killer or an endless loop in a kernel costs a child, never the
 * daemon. The parent watches the clock (SIGKILL after the timeout), keeps the tail of
 * the child's stderr, and turns every ending into a BenchOutcome.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../../errors/index.ts';
import type { BenchPhase, BenchRequest, BenchResult, ChildMessage, ParentMessage, SerializedError } from './protocol.ts';

export interface IsolatedBenchOptions {
  readonly request: BenchRequest;
  /** The child is SIGKILLed when it has not finished by then, start-up included. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /**
   * The child entry file. Tests point this at a fault-injecting entry (hang, abort);
   * production uses child.ts beside this file.
   */
  readonly childEntry?: string;
  /** Extra arguments for the child entry (the fault-injecting entry reads its fault here). */
  readonly childArgs?: readonly string[];
}

export interface BenchFailure {
  readonly kind: 'crashed' | 'timeout' | 'error' | 'aborted';
  readonly error: SerializedError;
  /** The phase the child last reported: where it died. */
  readonly phase: BenchPhase | null;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines the child wrote to stderr (onnxruntime and V8 say why they died there). */
  readonly stderrTail: string;
}

export type BenchOutcome =
  | { readonly ok: true; readonly result: BenchResult; readonly child: { readonly pid: number; readonly wallMs: number } }
  | { readonly ok: false; readonly failure: BenchFailure; readonly child: { readonly pid: number | null; readonly wallMs: number } };

const STDERR_TAIL_BYTES = 4096;
// From the sources (tsx, vitest): child.ts beside this file, run through tsx's loader. From
// the dist/ bundle, where import.meta.url is the bundle itself: bench-child.mjs, the second
// entry point scripts/build.ts writes beside it.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const DEFAULT_ENTRY = fileURLToPath(new URL(FROM_SOURCE ? './child.ts' : './bench-child.mjs', import.meta.url));

export function runIsolatedBenchmark(options: IsolatedBenchOptions): Promise<BenchOutcome> {
  const entry = options.childEntry ?? DEFAULT_ENTRY;
  const started = performance.now();
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = fork(entry, [...(options.childArgs ?? [])], {
        execArgv: entry.endsWith('.ts') ? ['--import', tsxLoaderUrl()] : [],
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
    } catch (err) {
      resolve(failed(null, 'crashed', 'E_BENCH_CRASHED', `cannot start the benchmark child: ${(err as Error).message}`));
      return;
    }
    let stderr = '';
    let phase: BenchPhase | null = 'load';
    let result: BenchResult | undefined;
    let childError: SerializedError | undefined;
    let ending: 'timeout' | 'aborted' | undefined;
    let settled = false;

    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    child.on('message', (message: ChildMessage) => {
      switch (message.type) {
        case 'ready':
          child.send({ type: 'run', request: options.request } satisfies ParentMessage);
          break;
        case 'phase':
          phase = message.phase;
          break;
        case 'result':
          result = message.result;
          break;
        case 'error':
          childError = message.error;
          break;
      }
    });
    const kill = (why: 'timeout' | 'aborted'): void => {
      ending ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), options.timeoutMs);
    const onAbort = (): void => kill('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      const wallMs = performance.now() - started;
      const pid = child.pid ?? null;
      if (result !== undefined && pid !== null) {
        resolve({ ok: true, result, child: { pid, wallMs } });
        return;
      }
      const base = { phase, exitCode, signal, stderrTail: stderr.trimEnd() };
      const where = phase === null ? '' : ` during ${phase}`;
      let failure: BenchFailure;
      if (ending === 'timeout') {
        failure = { ...base, kind: 'timeout', error: serialized('E_BENCH_TIMEOUT', `the benchmark did not finish within ${options.timeoutMs} ms (stuck${where}); the child was killed`) };
      } else if (ending === 'aborted') {
        failure = { ...base, kind: 'aborted', error: serialized('E_BENCH_CRASHED', `the benchmark was cancelled${where}; the child was killed`) };
      } else if (childError !== undefined) {
        failure = { ...base, kind: 'error', error: childError };
      } else {
        failure = { ...base, kind: 'crashed', error: serialized('E_BENCH_CRASHED', crashMessage(exitCode, signal, where, spawnError, stderr)) };
      }
      resolve({ ok: false, failure, child: { pid, wallMs } });
    };
    child.on('error', (err) => {
      // Spawn failures arrive here without an 'exit'; kill failures after exit are harmless.
      if (child.pid === undefined) finish(null, null, err);
    });
    child.on('exit', (code, signal) => finish(code, signal));
  });

  function failed(pid: number | null, kind: BenchFailure['kind'], code: ErrorCode, message: string): BenchOutcome {
    return {
      ok: false,
      failure: { kind, error: serialized(code, message), phase: null, exitCode: null, signal: null, stderrTail: '' },
      child: { pid, wallMs: performance.now() - started },
    };
  }
}

function serialized(code: ErrorCode, message: string): SerializedError {
  return { code, message, context: {} };
}

function crashMessage(exitCode: number | null, signal: NodeJS.Signals | null, where: string, spawnError: Error | undefined, stderr: string): string {
  if (spawnError !== undefined) return `cannot start the benchmark child: ${spawnError.message}`;
  const lastLine = stderr.trimEnd().split('\n').at(-1)?.trim();
  const said = lastLine === undefined || lastLine.length === 0 ? '' : `; last stderr line: ${lastLine}`;
  if (signal === 'SIGKILL') return `the benchmark child was killed by SIGKILL${where} (the kernel's OOM killer, or another process)${said}`;
  if (signal !== null) return `the benchmark child died of ${signal}${where}${said}`;
  return `the benchmark child exited with code ${exitCode ?? '?'}${where} without a result${said}`;
}

/** tsx's ESM loader as a file URL, so a .ts child entry runs without a build step. */
function tsxLoaderUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}
