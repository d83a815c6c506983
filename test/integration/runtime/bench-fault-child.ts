/**
 * FAULT INJECTION for test/integration/runtime/bench.test.ts: a stand-in for the
 * benchmark child that speaks the same IPC protocol and then misbehaves in the way
 * argv[2] names. Real models cannot be made to hang or segfault onnxruntime on
 * demand, and the parent's handling of those endings is what the tests check.
 *   hang   — reports the session phase, then never answers (an endless kernel)
 *   abort  — process.abort() during the session phase (SIGABRT, like a failed assert in native code)
 *   segv   — sends itself SIGSEGV (what a native crash looks like to the parent)
 *   exit   — writes a reason to stderr and exits with code 3 without a result
 */
import type { ChildMessage } from '../../../src/runtime/bench/protocol.ts';

const fault: string = process.argv[2] ?? 'exit';
const send = (m: ChildMessage): void => void process.send?.(m);

process.once('message', () => {
  send({ type: 'phase', phase: 'session' });
  // Let the phase message leave before the process dies.
  setTimeout(() => {
    switch (fault) {
      case 'hang':
        setInterval(() => undefined, 60_000);
        break;
      case 'abort':
        process.abort();
        break;
      case 'segv':
        process.kill(process.pid, 'SIGSEGV');
        break;
      default:
        process.stderr.write('fault child: giving up on purpose\n');
        process.exit(3);
    }
  }, 50);
});
send({ type: 'ready' });
