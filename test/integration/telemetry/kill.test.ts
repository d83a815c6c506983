import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { spawnTsxChild, type TsxChild } from '../../helpers/tsx-child.ts';
import { checkOrderedComplete, startCollector, type Collector } from './support.ts';

const AGENT = join(import.meta.dirname, 'fixtures', 'agent.ts');
const TELEMETRY = 'edgevolve/v1/fleet-t/dev-1/telemetry';

function startAgent(options: object): TsxChild {
  return spawnTsxChild(AGENT, { AGENT_OPTIONS: JSON.stringify(options) });
}

describe.runIf(requireMosquitto())('telemetry agent killed with SIGKILL mid-drain (child process, real mosquitto)', () => {
  let broker: RunningMosquitto | undefined;
  let collector: Collector | undefined;
  const children: ChildProcess[] = [];
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await collector?.close();
    await broker?.close();
    await cleanup();
  });

  it('after a restart drains the rest: every committed seq arrives, in order, duplicates only of seqs already seen', async () => {
    broker = await startMosquitto({ persistence: true });
    collector = await startCollector(broker.url, TELEMETRY);
    await broker.stop();
    const stateDir = join(dir, 'state');
    const first = startAgent({ stateDir, url: broker.url, produce: 600, maxInflight: 1 });
    children.push(first.child);
    const lastSeq = Number((await first.line('produced')).split(' ')[1]);
    expect(lastSeq).toBe(601); // seq 1 is the agent-start event
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    // Kill from the message handler, as soon as part of the backlog is through.
    collector.client.on('message', () => {
      if (first.child.exitCode === null && first.child.signalCode === null && collector!.seqs(TELEMETRY).length >= 100) first.child.kill('SIGKILL');
    });
    await broker.start();
    await exited;
    expect(first.child.signalCode).toBe('SIGKILL');
    const left = new Database(join(stateDir, 'telemetry.db'), { readonly: true });
    const remaining = left.prepare('SELECT count(*) FROM outbox').pluck().get() as number;
    left.close();
    expect(remaining).toBeGreaterThan(0); // the kill landed mid-drain

    const second = startAgent({ stateDir, url: broker.url, produce: 0, maxInflight: 16 });
    children.push(second.child);
    await second.line('drained');
    const expected = Array.from({ length: lastSeq - 1 }, (_, i) => i + 2);
    const distinct = new Set<number>();
    let processed = 0;
    await collector.until(() => {
      const all = collector!.seqs(TELEMETRY);
      for (; processed < all.length; processed++) distinct.add(all[processed] ?? 0);
      return distinct.size >= expected.length;
    }, 30_000);
    const check = checkOrderedComplete(collector.seqs(TELEMETRY), expected);
    expect(check.missing).toEqual([]);
    expect(check.outOfOrder).toBe(0);
    second.child.kill('SIGTERM');
  });
});
