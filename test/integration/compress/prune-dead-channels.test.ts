/**
 * End-to-end exactness of channel pruning on a real network: in the folded PaddleOCR
 * detector, the channels pruning will remove are first made dead (their producers'
 * weights and biases, and every per-channel parameter along the group, set to zero),
 * so removing them must leave the output unchanged. One wrong slice among the
 * hundreds of tensors the 36 groups touch (depthwise groups, SE blocks, residual
 * joins, the neck's Concat and Resize, ConvTranspose in the head) changes the output.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataType, decodeModel, makeTensor, tensorDims, tensorToFloat32, type ModelProto, type NodeProto } from '../../../src/onnx/index.ts';
import { runPass } from '../../../src/compress/pass.ts';
import { foldPass } from '../../../src/compress/fold/index.ts';
import { pruneChannelsPass } from '../../../src/compress/prune/index.ts';
import { analyzeChannels } from '../../../src/compress/prune/channels/analysis.ts';
import { KeptIndex } from '../../../src/compress/prune/channels/apply.ts';
import { planGroups, type GroupPlan } from '../../../src/compress/prune/channels/plan.ts';
import { CHECKS, expectEquivalent } from '../../helpers/ort-equivalence.ts';
import { PADDLE_MODELS } from '../../helpers/onnx-builders.ts';

const RATIO = 0.3;

/** Sets the entries of input `slot` of `node` whose index along `axis` is not kept to `value`. */
function kill(model: ModelProto, node: NodeProto, slot: number, axis: number, kept: Int32Array, value: number): void {
  const graph = model.graph!;
  const name = node.input![slot]!;
  const index = graph.initializer!.findIndex((t) => t.name === name);
  const t = graph.initializer![index]!;
  const dims = tensorDims(t);
  const data = tensorToFloat32(t);
  const alive = new Uint8Array(dims[axis]!);
  for (const k of kept) alive[k] = 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < data.length; i++) if (alive[Math.floor(i / inner) % dims[axis]!] === 0) data[i] = value;
  graph.initializer![index] = makeTensor(name, DataType.FLOAT, dims, data);
}

describe('prune-channels on the PaddleOCR detector, exactly', () => {
  it('removes channels made dead beforehand without changing the output (rtol 1e-4)', async () => {
    const det = runPass(foldPass, decodeModel(readFileSync(PADDLE_MODELS.det)), {}, CHECKS).model;
    const analysis = analyzeChannels(det);
    const options = { ratio: RATIO, criterion: 'l1' as const, importance: 'group' as const, maxRatio: 0.9, layers: {}, neverPrune: [], minChannels: 1, channelMultiple: 1 };
    // The dead channels of each prunable group are its last ones, so they differ from what importance alone would pick.
    const plans: GroupPlan[] = planGroups(det.graph!, analysis, options).map((p) =>
      p.reasons.length > 0 ? p : { ...p, kept: Int32Array.from({ length: p.kept.length }, (_, i) => i) },
    );
    const kept = new KeptIndex(analysis, plans);
    let killed = 0;
    for (const e of analysis.edits) {
      if (e.kind === 'source' && kept.isPruned(e.atom)) kill(det, e.node, e.slot, e.axis, kept.ofAtom(e.atom), 0);
      else if (e.kind === 'layout' && kept.touches(e.layout)) kill(det, e.node, e.slot, e.axis, kept.features(e.layout), e.node.opType === 'Div' ? 1 : 0);
      else continue;
      killed++;
    }
    expect(killed).toBeGreaterThan(100);
    const result = runPass(pruneChannelsPass, det, { ratio: RATIO }, CHECKS);
    expect(result.report.stats['groupsPruned']).toBe(36);
    await expectEquivalent(det, result.model, { dims: { x: [1, 3, 64, 64] }, rtol: 1e-4, atol: 1e-5 });
  });
});
