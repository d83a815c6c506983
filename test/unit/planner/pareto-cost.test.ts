import { describe, expect, it } from 'vitest';
import { NEUTRAL_SPEED, dominates, paretoFront, predictLatencyRatio, subsetNoiseMargin, type NodeMacs } from '../../../src/planner/index.ts';

describe('Pareto front', () => {
  const p = (id: string, drop: number, p95Ms: number, sizeBytes: number) => ({ id, drop, p95Ms, sizeBytes });

  it('keeps the points no other beats on every axis', () => {
    const points = [p('fp32', 0, 1, 100), p('int8', 0.2, 0.5, 25), p('fp16', 0, 1.1, 50), p('worse-int8', 0.3, 0.6, 25), p('prune', 1, 0.7, 60)];
    expect(paretoFront(points)).toEqual(['fp32', 'int8', 'fp16']);
  });

  it('equal points do not dominate each other', () => {
    expect(dominates(p('a', 0, 1, 1), p('b', 0, 1, 1))).toBe(false);
    expect(paretoFront([p('a', 0, 1, 1), p('b', 0, 1, 1)])).toEqual(['a', 'b']);
  });
});

describe('cost prediction', () => {
  const nodes: NodeMacs[] = [
    { node: 'fc1', opType: 'Gemm', macs: 750 },
    { node: 'conv', opType: 'Conv', macs: 250 },
  ];
  const speed = { gemmInt8Speedup: 2, convInt8Speedup: 0.5, heavyShare: 0.8 };

  it('scales the heavy share by the measured int8 speed-up of each op type, the rest unchanged', () => {
    // 0.2 + 0.8 × (0.75 / 2 + 0.25 / 0.5) = 0.2 + 0.8 × 0.875 = 0.9
    expect(predictLatencyRatio(nodes, { int8Nodes: new Set(['fc1', 'conv']), macsRatio: 1 }, speed)).toBeCloseTo(0.9, 12);
    expect(predictLatencyRatio(nodes, { int8Nodes: new Set(['fc1']), macsRatio: 1 }, speed)).toBeCloseTo(0.2 + 0.8 * (0.375 + 0.25), 12);
  });

  it('predicts fp32 for fp32, and no int8 gain without a measured profile', () => {
    expect(predictLatencyRatio(nodes, { int8Nodes: new Set(), macsRatio: 1 }, speed)).toBeCloseTo(1, 12);
    expect(predictLatencyRatio(nodes, { int8Nodes: new Set(['fc1', 'conv']), macsRatio: 1 }, NEUTRAL_SPEED)).toBeCloseTo(1, 12);
  });

  it('pruning scales the heavy share by the MACs left', () => {
    expect(predictLatencyRatio(nodes, { int8Nodes: new Set(), macsRatio: 0.5 }, speed)).toBeCloseTo(0.6, 12);
  });
});

describe('subset noise margin', () => {
  it('is two standard errors of the paired difference: 2·sqrt(flips)/n in points', () => {
    expect(subsetNoiseMargin({ samples: 400, score: 97, drop: 0.5, disagreement: 4 / 400 })).toBeCloseTo((200 * 2) / 400, 12);
    // At least one flip is assumed, so a perfect subset still has a margin.
    expect(subsetNoiseMargin({ samples: 100, score: 97, drop: 0, disagreement: 0 })).toBeCloseTo(2, 12);
    expect(subsetNoiseMargin({ samples: 100, score: 99.9, drop: 0.1, disagreement: null })).toBe(0.1);
  });
});
