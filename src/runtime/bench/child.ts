/**
 * The benchmark child's entry: forked by parent.ts, it says `ready`, waits for one
 * `run` request, reports its phases, sends the result or the error, and exits. A
 * crash or hang here is what the parent exists to survive.
 */
import { toEdgevolveError } from '../../errors/index.ts';
import { selfProcessMemory } from '../../host/process-memory.ts';
import type { ChildMessage, ParentMessage } from './protocol.ts';
import { runBenchmark } from './run.ts';

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

async function handle(message: ParentMessage): Promise<void> {
  try {
    const result = await runBenchmark(message.request, selfProcessMemory, (phase) => void send({ type: 'phase', phase }));
    await send({ type: 'result', result });
  } catch (err) {
    await send({ type: 'error', error: toEdgevolveError(err).toJSON() });
  }
  // onnxruntime's thread pool would keep the process alive; the parent has what it needs.
  process.exit(0);
}

if (process.send === undefined) {
  console.error('edgevolve bench child: start me with child_process.fork (I talk over IPC)');
  process.exit(2);
}
process.once('message', (message: ParentMessage) => void handle(message));
void send({ type: 'ready' });
