/**
 * What co-evolution's serving hooks cost per request: mnist-student in a ModelSlot, fed the
 * shifted field digits one at a time, with no hooks (the baseline), with the quality + drift
 * observer (coevolution.enabled, mining off), and with mining on as well (hard rows kept at
 * the default 60 per minute, written by the miner's queue). Rounds alternate between the
 * configurations so load changes hit each alike; the table gives per-request medians and the
 * ratio to the baseline measured in the same run.
 *
 *   npx tsx scripts/bench-coevolution.ts [--rounds 5] [--requests 400]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { coevolutionConfigSchema, DEFAULT_FIELD_SHIFT, DeviceCoevolution, loadFieldData } from '../src/coevolution/index.ts';
import { systemClock } from '../src/host/index.ts';
import { DataType } from '../src/onnx/index.ts';
import { createSession } from '../src/runtime/index.ts';
import { ModelSlots } from '../src/runtime/serving/index.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '400' } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const STUDENT = 'test/fixtures/models/mnist-student.onnx';

interface Setup {
  readonly name: string;
  readonly slots: ModelSlots;
  readonly close: () => Promise<void>;
  readonly perRequestUs: number[];
}

async function setup(name: string, coevolution: Record<string, unknown> | undefined, dir: string): Promise<Setup> {
  let device: DeviceCoevolution | undefined;
  const running = new AbortController();
  if (coevolution !== undefined) {
    device = new DeviceCoevolution(coevolutionConfigSchema.parse({ enabled: true, ...coevolution }), {
      stateDir: path.join(dir, name), deviceId: 'bench', clock: systemClock,
      driftSink: { report: () => {}, event: () => {} },
      quality: { recordPrediction: () => {}, setDriftScore: () => {} },
      onError: () => {},
    });
    await device.start(running.signal);
  }
  const hooks = device?.hooks();
  const slots = new ModelSlots({ warmupRuns: 3, observers: hooks?.observers ?? [] });
  await slots.add('student').swap({ version: '1', createSession: () => createSession(STUDENT, { threads: 1 }) });
  return {
    name, slots, perRequestUs: [],
    close: async () => {
      await slots.close();
      running.abort();
      await device?.stop();
    },
  };
}

const dir = await mkdtemp(path.join(tmpdir(), 'bench-coevolution-'));
const field = await loadFieldData('test/fixtures/data/mnist-test', DEFAULT_FIELD_SHIFT, 1500);
const rule = { defaultRule: { kind: 'classification', maxProbabilityBelow: 0.8 } };
const setups = [
  await setup('no hooks (baseline)', undefined, dir),
  await setup('quality + drift', { mining: rule }, dir),
  await setup('quality + drift + mining', { mining: { enabled: true, ...rule } }, dir),
];
const inputs = field.stream.inputs;
for (let round = 0; round < rounds; round++) {
  // Alternate the order each round so no configuration always runs first.
  const order = round % 2 === 0 ? setups : [...setups].reverse();
  for (const s of order) {
    const slot = s.slots.get('student')!;
    const started = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) {
      const k = (round * requests + i) % 1500;
      await slot.infer({ input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: inputs.subarray(k * 784, (k + 1) * 784) } });
    }
    s.perRequestUs.push(Number(process.hrtime.bigint() - started) / 1000 / requests);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(setups[0]!.perRequestUs);
console.log(`mnist-student, batch 1, ${requests} requests x ${rounds} alternating rounds (median of the round means)`);
console.log('| configuration | µs / request | vs baseline |');
console.log('|---|---|---|');
for (const s of setups) console.log(`| ${s.name} | ${median(s.perRequestUs).toFixed(1)} | ${(median(s.perRequestUs) / base).toFixed(3)}x |`);

// The hooks alone, without inference: one observer call per answer, on real student outputs.
const probe = await setup('hooks alone', { mining: rule }, dir);
const answer = await probe.slots.get('student')!.infer({ input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: inputs.subarray(0, 784) } });
const device = new DeviceCoevolution(coevolutionConfigSchema.parse({ enabled: true, mining: rule }), {
  stateDir: path.join(dir, 'alone'), deviceId: 'bench', clock: systemClock, driftSink: { report: () => {}, event: () => {} },
  quality: { recordPrediction: () => {}, setDriftScore: () => {} }, onError: () => {},
});
await device.start(new AbortController().signal);
const [observer] = device.hooks().observers;
const event = { model: 'student', version: '1', requestId: undefined, inputs: { input: { dataType: DataType.FLOAT, dims: [1, 1, 28, 28], data: inputs.subarray(0, 784) } }, localOutputs: answer.outputs };
const calls = 100_000;
const callUs: number[] = [];
for (let round = 0; round < 3; round++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) observer!.onInference(event);
  callUs.push(Number(process.hrtime.bigint() - started) / 1000 / calls);
}
console.log(`quality + drift observer alone: ${median(callUs).toFixed(2)} µs per call (median of 3 x ${calls} calls)`);
await device.stop();
await probe.close();
for (const s of setups) await s.close();
await rm(dir, { recursive: true, force: true });
