/**
 * Worker threads for createWorkerSession whose next request can be made fatal: the
 * injected fault for the worker-crash tests.
 */
import { Worker } from 'node:worker_threads';
import type { InferenceWorker } from '../../src/runtime/worker-session.ts';

/**
 * Real node:worker_threads workers, one of which a test kills the moment a request is
 * handed to it: terminate() is the injected fault, since no onnxruntime call can be made
 * to kill its thread on demand. It lands before the worker reads the request, because
 * terminating a thread while onnxruntime-node runs in it aborts the whole process.
 */
export function killableWorkers(): { spawn: (source: string, workerData: unknown) => InferenceWorker; killDuringNextRun: () => void; spawned: () => number } {
  let killNext = false;
  let spawned = 0;
  return {
    spawn: (source, workerData) => {
      spawned++;
      const worker = new Worker(source, { eval: true, workerData });
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message: unknown, transfer?: readonly ArrayBuffer[]): void => {
        if (killNext && (message as { type: string }).type === 'run') {
          killNext = false;
          void worker.terminate();
        }
        post(message, transfer);
      };
      return worker;
    },
    killDuringNextRun: () => (killNext = true),
    spawned: () => spawned,
  };
}
