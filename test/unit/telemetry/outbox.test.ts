import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Outbox, PRIORITY, type OutboxChange, type OutboxLimits } from '../../../src/telemetry/outbox.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const ROOMY: OutboxLimits = { maxRows: 100_000, maxBytes: 100 * 1024 * 1024, maxAgeMs: 24 * 3600_000 };

describe('telemetry outbox (real SQLite file)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let now = 1_700_000_000_000;
  const clock = { now: () => now };
  const open = (limits: OutboxLimits = ROOMY, onChange?: (c: OutboxChange) => void): Outbox =>
    Outbox.open(join(dir, 'telemetry.db'), { device: 'dev-1', limits, clock, ...(onChange === undefined ? {} : { onChange }) });

  beforeEach(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  afterEach(async () => {
    await cleanup();
  });

  it('numbers messages 1, 2, 3... and continues after reopening, with the same stream id', () => {
    const a = open();
    expect(a.enqueueMany([{ topic: 't', priority: PRIORITY.metric, body: { x: 1 } }, { topic: 't', priority: PRIORITY.metric, body: { x: 2 } }])).toEqual([1, 2]);
    a.acknowledge([1, 2]);
    const stream = a.stream;
    a.close();
    const b = open();
    expect(b.stream).toBe(stream);
    expect(b.enqueue({ topic: 't', priority: PRIORITY.event, body: { x: 3 } })).toBe(3);
    const [row] = b.peek(PRIORITY.event, 0, 10);
    expect(JSON.parse(row?.payload.toString() ?? '')).toEqual({ x: 3, stream, seq: 3 });
    b.close();
  });

  it('never reuses a seq after reopening, even when every row was acknowledged or evicted', () => {
    const a = open({ ...ROOMY, maxRows: 1 });
    a.enqueueMany([{ topic: 't', priority: PRIORITY.metric, body: {} }, { topic: 't', priority: PRIORITY.metric, body: {} }, { topic: 't', priority: PRIORITY.metric, body: {} }]);
    a.acknowledge([3]);
    expect(a.stats().rows).toBe(0);
    a.close();
    const b = open();
    expect(b.enqueue({ topic: 't', priority: PRIORITY.metric, body: {} })).toBe(4);
    b.close();
  });

  it('keeps raw byte payloads exactly as given', () => {
    const box = open();
    const bytes = Buffer.from([0, 1, 2, 255]);
    box.enqueue({ topic: 't', priority: PRIORITY.event, body: bytes, retain: true });
    const [row] = box.peek(PRIORITY.event, 0, 1);
    expect(row?.payload.equals(bytes)).toBe(true);
    expect(row?.retain).toBe(true);
    // Raw bytes carry no seq inside, so they are never batched and travel with user properties.
    expect(row?.numbered).toBe(false);
    box.enqueue({ topic: 't', priority: PRIORITY.event, body: bytes, batchable: true });
    expect(box.peek(PRIORITY.event, 1, 1)[0]?.batchable).toBe(false);
    box.close();
  });

  it('peeks per priority in seq order after a cursor, and deletes only acknowledged rows', () => {
    const box = open();
    for (let i = 0; i < 10; i++) box.enqueue({ topic: 't', priority: i % 2 === 0 ? PRIORITY.metric : PRIORITY.event, body: { i } });
    expect(box.peek(PRIORITY.metric, 0, 100).map((m) => m.seq)).toEqual([1, 3, 5, 7, 9]);
    expect(box.peek(PRIORITY.event, 4, 2).map((m) => m.seq)).toEqual([6, 8]);
    box.acknowledge([1, 6, 999]);
    expect(box.stats().rows).toBe(8);
    expect(box.peek(PRIORITY.metric, 0, 100).map((m) => m.seq)).toEqual([3, 5, 7, 9]);
    box.close();
    const again = open();
    expect(again.stats().rows).toBe(8);
    again.close();
  });

  it('evicts metrics before events under a row cap, counts every drop, and persists the counts', () => {
    const box = open({ ...ROOMY, maxRows: 10 });
    for (let i = 0; i < 5; i++) box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { i } });
    for (let i = 0; i < 20; i++) box.enqueue({ topic: 'm', priority: PRIORITY.metric, body: { i } });
    const stats = box.stats();
    expect(stats.rows).toBeLessThanOrEqual(10);
    expect(box.peek(PRIORITY.event, 0, 100)).toHaveLength(5);
    expect(stats.droppedTotal.metric).toBe(25 - stats.rows);
    expect(stats.droppedTotal.event).toBe(0);
    // The newest metrics survive.
    expect(box.peek(PRIORITY.metric, 0, 100).at(-1)?.seq).toBe(25);
    box.close();
    const reopened = open({ ...ROOMY, maxRows: 10 });
    expect(reopened.takeDropReport()).toEqual({ metric: 25 - stats.rows, event: 0 });
    expect(reopened.takeDropReport()).toEqual({ metric: 0, event: 0 });
    expect(reopened.stats().droppedTotal.metric).toBe(25 - stats.rows);
    reopened.close();
  });

  it('evicts events only when no metrics are left, under a byte cap', () => {
    const box = open({ ...ROOMY, maxBytes: 2000 });
    for (let i = 0; i < 40; i++) box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { pad: 'x'.repeat(100) } });
    const stats = box.stats();
    expect(stats.bytes).toBeLessThanOrEqual(2000);
    expect(stats.droppedTotal.event).toBe(40 - stats.rows);
    expect(stats.droppedTotal.event).toBeGreaterThan(0);
    box.close();
  });

  it('evicts rows older than maxAgeMs whatever their priority', () => {
    const box = open({ ...ROOMY, maxAgeMs: 60_000 });
    box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { old: true } });
    now += 120_000;
    box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { old: false } });
    expect(box.peek(PRIORITY.event, 0, 10).map((m) => m.seq)).toEqual([2]);
    expect(box.stats().droppedTotal.event).toBe(1);
    box.close();
  });

  it('on SQLITE_FULL (real page limit) evicts metrics, drops and counts what does not fit, and recovers by itself', () => {
    const changes: OutboxChange[] = [];
    const box = open(ROOMY, (c) => changes.push(c));
    const db = box.database;
    const pad = 'y'.repeat(2000);
    for (let i = 0; i < 50; i++) box.enqueue({ topic: 'm', priority: PRIORITY.metric, body: { pad } });
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const seqs: (number | undefined)[] = [];
    for (let i = 0; i < 200; i++) seqs.push(box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { pad } }));
    expect(changes[0]?.type).toBe('degraded');
    const refused = seqs.filter((s) => s === undefined).length;
    expect(refused).toBeGreaterThan(0);
    // Metrics went first to make room for events.
    expect(box.peek(PRIORITY.metric, 0, 1000).length).toBeLessThan(50);
    const stats = box.stats();
    expect(stats.degraded).toBe(true);
    expect(stats.droppedTotal.event).toBe(refused);
    // Space comes back (here: the limit is lifted; on a device: the disk is cleaned up).
    db.pragma('max_page_count = 1073741823');
    expect(box.enqueue({ topic: 'e', priority: PRIORITY.event, body: { after: true } })).toBeTypeOf('number');
    expect(box.stats().degraded).toBe(false);
    const recovered = changes.at(-1);
    expect(recovered?.type).toBe('recovered');
    if (recovered?.type === 'recovered') expect(recovered.droppedWhileDegraded.event).toBe(refused);
    box.close();
  });
});
