import { describe, expect, it } from 'vitest';
import { TelemetryAggregator } from '../../../src/telemetry/aggregator.ts';
import { Histogram } from '../../../src/telemetry/histogram.ts';
import type { OutboxStats } from '../../../src/telemetry/outbox.ts';
import { telemetryRecordSchema } from '../../../src/telemetry/schemas.ts';
import { parseProcStatCpu, type SystemSample } from '../../../src/telemetry/system.ts';

const OUTBOX: OutboxStats = { rows: 3, bytes: 300, droppedTotal: { metric: 2, event: 1 }, droppedUnreported: { metric: 0, event: 0 }, degraded: false };
const SYSTEM: SystemSample = { cpuPercent: 12.5, memoryUsedBytes: 1e9, memoryTotalBytes: 4e9, processRssBytes: 300 * 1024 * 1024, temperatureC: 61.2, throttled: false, diskFreeBytes: 5e9 };

describe('histogram', () => {
  it('puts each value in the first bucket whose bound is >= it, and estimates quantiles inside the right bucket', () => {
    const h = new Histogram([1, 2, 5, 10]);
    for (const v of [0.5, 1, 1.5, 2, 3, 4, 6, 20]) h.observe(v);
    expect(h.toJSON().counts).toEqual([2, 2, 2, 1, 1]);
    const p50 = h.quantile(0.5) ?? Number.NaN;
    expect(p50).toBeGreaterThanOrEqual(1);
    expect(p50).toBeLessThanOrEqual(2);
    expect(h.quantile(1)).toBe(20);
    expect(h.maximum()).toBe(20);
    expect(h.quantile(0)).toBeGreaterThanOrEqual(0.5);
    h.reset();
    expect(h.quantile(0.5)).toBeNull();
  });

  it('refuses bounds that are not ascending', () => {
    expect(() => new Histogram([1, 1])).toThrow(RangeError);
  });
});

describe('telemetry aggregator', () => {
  const make = () => new TelemetryAggregator({ device: 'dev-1', intervalMs: 30_000, latencyBucketsMs: [1, 2, 5, 10, 20, 50], sampler: { sample: () => Promise.resolve(SYSTEM) } });

  it('aggregates one interval into a record that matches the schema, then starts a fresh interval', async () => {
    const agg = make();
    for (let i = 0; i < 100; i++) agg.recordInference(i < 90 ? 3 : 30, true);
    agg.recordInference(0, false);
    agg.recordQueueDepth(4);
    agg.recordQueueDepth(1);
    agg.recordPrediction(0.95, 0.1, false);
    agg.recordPrediction(0.35, 1.9, true);
    agg.setDriftScore(0.2);
    agg.setActiveModel({ name: 'mnist-cnn', variant: 'int8-static', precision: 'int8' });
    const record = await agg.snapshot(1_700_000_000_000, OUTBOX);
    expect(telemetryRecordSchema.safeParse({ ...record, stream: 's', seq: 1 }).success).toBe(true);
    expect(record.inference).toMatchObject({ count: 101, errors: 1 });
    expect(record.inference.latencyMs.p50).toBeGreaterThan(2);
    expect(record.inference.latencyMs.p50).toBeLessThanOrEqual(5);
    expect(record.inference.latencyMs.p99).toBeGreaterThan(20);
    expect(record.queueDepth).toEqual({ last: 1, max: 4 });
    expect(record.quality.hardSampleRate).toBe(0.5);
    expect(record.system.temperatureC).toBe(61.2);
    expect(record.outbox).toEqual({ depth: 3, bytes: 300, droppedTotal: 3, degraded: false });
    const next = await agg.snapshot(1_700_000_030_000, OUTBOX);
    expect(next.inference.count).toBe(0);
    expect(next.inference.latencyMs.p50).toBeNull();
    expect(next.quality.hardSampleRate).toBeNull();
    expect(next.queueDepth.max).toBe(1);
  });

  it('reports budget compliance from measured p95 and process memory, null when no budget applies', async () => {
    const agg = make();
    for (let i = 0; i < 100; i++) agg.recordInference(30, true);
    expect((await agg.snapshot(1, OUTBOX)).budgets).toEqual({ compliant: null, violations: [] });
    agg.setBudgets({ latencyP95Ms: 10, memoryMb: 200 });
    for (let i = 0; i < 100; i++) agg.recordInference(30, true);
    const { budgets } = await agg.snapshot(2, OUTBOX);
    expect(budgets.compliant).toBe(false);
    expect(budgets.violations).toHaveLength(2);
    agg.setBudgets({ latencyP95Ms: 100 });
    for (let i = 0; i < 100; i++) agg.recordInference(30, true);
    expect((await agg.snapshot(3, OUTBOX)).budgets).toEqual({ compliant: true, violations: [] });
  });
});

describe('/proc/stat parsing', () => {
  it('reads busy and total jiffies of the aggregate cpu line (idle and iowait are not busy)', () => {
    expect(parseProcStatCpu('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n')).toEqual({ busy: 150, total: 1000 });
    expect(parseProcStatCpu('intr 1 2 3\n')).toBeUndefined();
    expect(parseProcStatCpu('cpu  a b c d\n')).toBeUndefined();
  });
});
