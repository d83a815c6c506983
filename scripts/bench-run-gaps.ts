/**
 * Why a served request's `session.run` costs more than the raw back-to-back baseline of
 * bench-serve: runs mnist-teacher at batch 16 in-process, with nothing between runs and
 * with what a server has between requests (a fresh input buffer, an event-loop turn, an
 * idle gap, other memory traffic), alternating the cases round by round, and prints the
 * p50 wall and CPU time of `session.run` alone for each:
 *
 *   npx tsx scripts/bench-run-gaps.ts [--rounds 2] [--runs 400]
 */
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readNpy } from '../src/data/index.ts';
import { DataType } from '../src/onnx/index.ts';
import { createSession } from '../src/runtime/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, runs: { type: 'string', default: '400' } } });
const rounds = Number(values.rounds);
const runs = Number(values.runs);

const session = await createSession(readFileSync(path.join(root, 'test/fixtures/models/mnist-teacher.onnx')), { threads: 1 });
const images = (await readNpy(path.join(root, 'test/fixtures/data/mnist-test/input.npy'))).data as Float32Array;
const input = images.slice(0, 16 * 784);
const sweep = new Float64Array(1024 * 1024); // 8 MB, more than this VM's L2

// A request body's worth of bytes (mnist-teacher batch 16 in binary KServe, about 50 KB) sent to this process over loopback TCP:
// the receive a server does between two runs, without another process or an HTTP parser.
const BODY = 50 * 1024;
let received = 0;
let onBody: (() => void) | undefined;
const sink = createServer((socket) =>
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= BODY) {
      received -= BODY;
      onBody?.();
    }
  }),
);
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sender = connect((sink.address() as AddressInfo).port, '127.0.0.1');
sender.setNoDelay(true);
await new Promise((resolve) => sender.once('connect', resolve));
const body = Buffer.alloc(BODY, 3);
const receiveBody = (): Promise<void> =>
  new Promise((resolve) => {
    onBody = resolve;
    sender.write(body);
  });
/** Keeps the loop cycling (never sleeping) for `ms`, as a busy-polling server does between requests. */
const spinFor = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    const until = performance.now() + ms;
    const turn = (): void => void (performance.now() >= until ? resolve() : setImmediate(turn));
    turn();
  });

const cases: { name: string; between: () => Promise<void> | void; fresh: boolean }[] = [
  { name: 'back to back (bench-serve raw baseline)', between: () => undefined, fresh: false },
  { name: 'fresh input buffer each run', between: () => undefined, fresh: true },
  { name: 'one event-loop turn between runs', between: () => new Promise((resolve) => setImmediate(resolve)), fresh: false },
  { name: 'idle 1 ms between runs', between: () => new Promise((resolve) => setTimeout(resolve, 1)), fresh: false },
  { name: 'loop kept awake 1 ms between runs (busy-poll)', between: () => spinFor(1), fresh: false },
  { name: '50 KB received over loopback TCP between runs', between: receiveBody, fresh: false },
  { name: '50 KB received, then loop kept awake 0.3 ms', between: async () => { await receiveBody(); await spinFor(0.3); }, fresh: false },
  { name: '8 MB memory sweep between runs', between: () => { for (let i = 0; i < sweep.length; i += 8) sweep[i] = (sweep[i] ?? 0) + 1; }, fresh: false },
];
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? Number.NaN;
const wall = new Map<string, number[]>();
const cpu = new Map<string, number[]>();

for (let round = 0; round < rounds; round++) {
  for (const c of round % 2 === 0 ? cases : [...cases].reverse()) {
    const w: number[] = [];
    const u: number[] = [];
    for (let i = 0; i < runs; i++) {
      await c.between();
      const data = c.fresh ? new Float32Array(input) : input;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await session.run({ input: { dataType: DataType.FLOAT, dims: [16, 1, 28, 28], data } });
      w.push(performance.now() - t0);
      const used = process.cpuUsage(cpu0);
      u.push((used.user + used.system) / 1000);
    }
    wall.set(c.name, [...(wall.get(c.name) ?? []), median(w)]);
    cpu.set(c.name, [...(cpu.get(c.name) ?? []), median(u)]);
  }
}
await session.release();
sender.destroy();
sink.close();

const base = median(wall.get(cases[0]!.name)!);
console.log(`mnist-teacher batch 16, 1 thread, ${rounds} rounds of ${runs} runs; load average ${loadavg()[0]!.toFixed(1)}\n`);
console.log('| between runs | session.run p50 wall | x back to back | p50 CPU | per round (wall) |');
console.log('|---|---|---|---|---|');
for (const c of cases) {
  const ws = wall.get(c.name)!;
  console.log(`| ${c.name} | ${median(ws).toFixed(3)} ms | ${(median(ws) / base).toFixed(2)}x | ${median(cpu.get(c.name)!).toFixed(3)} ms | ${ws.map((x) => x.toFixed(3)).join(', ')} |`);
}
