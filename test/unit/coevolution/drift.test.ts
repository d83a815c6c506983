import { describe, expect, it } from 'vitest';
import { DriftMonitor, Histogram, klDivergence, psi, type DriftReport } from '../../../src/coevolution/drift.ts';
import { codeOf } from '../../helpers/error-code.ts';

describe('psi and klDivergence', () => {
  it('are 0 for identical distributions and match a hand computation otherwise', () => {
    const a = Histogram.of([0.1, 0.1, 0.9, 0.9], 2);
    expect(psi(a, Histogram.of([0.2, 0.8], 2))).toBeCloseTo(0, 12);
    const live = Histogram.of([0.1, 0.9, 0.9, 0.9], 2); // shares 0.25 / 0.75 vs 0.5 / 0.5
    const expected = (0.25 - 0.5) * Math.log(0.25 / 0.5) + (0.75 - 0.5) * Math.log(0.75 / 0.5);
    expect(psi(a, live)).toBeCloseTo(expected, 12);
    expect(klDivergence(a, live)).toBeCloseTo(0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), 12);
  });

  it('stays finite when a bin is empty on one side', () => {
    expect(Number.isFinite(psi(Histogram.of([0.1], 4), Histogram.of([0.9], 4)))).toBe(true);
  });

  it('refuses empty histograms and different bin counts with E_COEVO_INVALID', () => {
    expect(codeOf(() => psi(new Histogram(4), Histogram.of([0.5], 4)))).toBe('E_COEVO_INVALID');
    expect(codeOf(() => psi(Histogram.of([0.5], 3), Histogram.of([0.5], 4)))).toBe('E_COEVO_INVALID');
  });
});

describe('DriftMonitor', () => {
  function monitor(): { drift: DriftMonitor; reports: DriftReport[]; events: DriftReport[] } {
    const reports: DriftReport[] = [];
    const events: DriftReport[] = [];
    const drift = new DriftMonitor({ bins: 10, referenceSize: 100, windowSize: 50, threshold: 0.25 }, { report: (r) => reports.push(r), event: (r) => events.push(r) });
    return { drift, reports, events };
  }

  it('reports a low score while live answers look like the reference and raises one event when they shift', () => {
    const { drift, reports, events } = monitor();
    for (let i = 0; i < 100; i++) drift.observe('m', '1', 0.9 + (i % 10) / 100, 0.05 + (i % 5) / 100);
    for (let i = 0; i < 50; i++) drift.observe('m', '1', 0.9 + (i % 10) / 100, 0.05 + (i % 5) / 100);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.score).toBeLessThan(0.05);
    expect(events).toHaveLength(0);
    for (let w = 0; w < 2; w++) for (let i = 0; i < 50; i++) drift.observe('m', '1', 0.4 + (i % 10) / 50, 0.5 + (i % 5) / 20);
    expect(reports).toHaveLength(3);
    expect(reports[1]!.drifted).toBe(true);
    expect(events).toHaveLength(1); // the second drifted window does not repeat the event
    expect(drift.latest()[0]!.score).toBe(reports[2]!.score);
  });

  it('records a new reference when a new version starts serving', () => {
    const { drift, reports } = monitor();
    for (let i = 0; i < 150; i++) drift.observe('m', '1', 0.95, 0.05);
    for (let i = 0; i < 100; i++) drift.observe('m', '2', 0.5, 0.6);
    expect(reports).toHaveLength(1);
    for (let i = 0; i < 50; i++) drift.observe('m', '2', 0.5, 0.6);
    expect(reports[1]!.version).toBe('2');
    expect(reports[1]!.score).toBeLessThan(0.01);
  });

  it('does not flap around the threshold: one event when it rises, one "cleared" event only after a window below clearBelow', () => {
    const reports: DriftReport[] = [];
    const events: DriftReport[] = [];
    const drift = new DriftMonitor({ bins: 2, referenceSize: 100, windowSize: 100, threshold: 0.25, clearBelow: 0.05 }, { report: (r) => reports.push(r), event: (r) => events.push(r) });
    // Reference: half the answers in each confidence bin.
    for (let i = 0; i < 100; i++) drift.observe('m', '1', i % 2 === 0 ? 0.2 : 0.8, 0.5);
    /** A window with `low` of 100 answers in the low-confidence bin. */
    const window = (low: number): void => {
      for (let i = 0; i < 100; i++) drift.observe('m', '1', i < low ? 0.2 : 0.8, 0.5);
    };
    // PSI of shares (p, 1-p) against (0.5, 0.5): 90 -> 0.88, 70 -> 0.17, 75 -> 0.27, 55 -> 0.01.
    for (const low of [90, 70, 75, 70, 75]) window(low);
    expect(reports.map((r) => r.drifted)).toEqual([true, true, true, true, true]);
    expect(events).toHaveLength(1);
    expect(reports[1]!.score).toBeLessThan(0.25); // below the threshold, above clearBelow: still drifted
    window(55);
    expect(events).toHaveLength(2);
    expect(events[1]!.drifted).toBe(false);
    window(70); // between clearBelow and threshold after clearing: no new event
    expect(events).toHaveLength(2);
  });
});
