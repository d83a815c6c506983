/**
 * The pre-passes (issue 4, part 1): Constant-node hoisting, Identity/Dropout removal,
 * constant folding, BatchNormalization (and bias Add) folding, dead-node elimination.
 * `foldPass` runs them together until nothing changes; each is also a pass of its own.
 */
import { z } from 'zod';
import { cloneModel } from '../clone.ts';
import type { Change, Pass, PassResult } from '../pass.ts';
import type { ModelProto } from '../../onnx/index.ts';
import { foldBatchNorms } from './bn-fold.ts';
import { foldConstants } from './constant-fold.ts';
import { hoistConstants } from './hoist-constants.ts';
import { removeDeadNodes, removeIdentities } from './remove-identity.ts';

export { hoistConstants } from './hoist-constants.ts';
export { removeIdentities, removeDeadNodes } from './remove-identity.ts';
export { foldConstants } from './constant-fold.ts';
export { foldBatchNorms } from './bn-fold.ts';

export const FOLD_STEPS = ['hoist-constants', 'remove-identity', 'fold-constants', 'fold-batchnorm', 'remove-dead'] as const;
export type FoldStep = (typeof FOLD_STEPS)[number];

export const foldOptionsSchema = z
  .object({
    /** Which steps to run, in the fixed order above; all by default. */
    steps: z.array(z.enum(FOLD_STEPS)).min(1).optional(),
    /** Largest constant (elements) folding may create. */
    maxFoldElements: z.number().int().positive().optional(),
    /** Rounds of all steps before giving up on reaching a fixed point. */
    maxIterations: z.number().int().positive().max(100).optional(),
  })
  .strict();
export type FoldOptions = z.infer<typeof foldOptionsSchema>;

function applyStep(step: FoldStep, model: ModelProto, options: FoldOptions): Change[] {
  switch (step) {
    case 'hoist-constants':
      return hoistConstants(model);
    case 'remove-identity':
      return removeIdentities(model);
    case 'fold-constants':
      return foldConstants(model, options.maxFoldElements === undefined ? {} : { maxElements: options.maxFoldElements });
    case 'fold-batchnorm':
      return foldBatchNorms(model);
    case 'remove-dead':
      return removeDeadNodes(model);
  }
}

/** Applies the selected steps in place on a model the caller owns, until a round changes nothing. */
export function foldInPlace(model: ModelProto, options: FoldOptions = {}): { changes: Change[]; warnings: string[]; rounds: number } {
  const steps = FOLD_STEPS.filter((s) => options.steps === undefined || options.steps.includes(s));
  const maxRounds = options.maxIterations ?? 10;
  const changes: Change[] = [];
  const warnings: string[] = [];
  let rounds = 0;
  for (; rounds < maxRounds; rounds++) {
    let changed = 0;
    for (const step of steps) {
      const made = applyStep(step, model, options);
      changed += made.length;
      changes.push(...made);
    }
    if (changed === 0) break;
  }
  if (rounds === maxRounds) warnings.push(`fold still changed the model after ${maxRounds} rounds`);
  return { changes, warnings, rounds };
}

function countBy(changes: readonly Change[], action: string, detailPrefix: string): number {
  return changes.filter((c) => c.action === action && (c.detail ?? '').startsWith(detailPrefix)).length;
}

function foldResult(name: string, model: ModelProto, options: FoldOptions): PassResult {
  const copy = cloneModel(model);
  const nodesBefore = copy.graph?.node?.length ?? 0;
  const { changes, warnings, rounds } = foldInPlace(copy, options);
  const stats = {
    nodesBefore,
    nodesAfter: copy.graph?.node?.length ?? 0,
    rounds,
    constantsHoisted: changes.filter((c) => c.action === 'hoisted').reduce((a, c) => a + Number(c.stats?.['count'] ?? 0), 0),
    batchNormsFolded: countBy(changes, 'folded', 'BatchNormalization'),
    biasAddsFolded: countBy(changes, 'folded', 'Add folded'),
    constantsFolded: changes.filter((c) => c.action === 'folded' && / → constant/.test(c.detail ?? '')).length,
    identitiesRemoved: changes.filter((c) => c.action === 'removed' && /pass-through/.test(c.detail ?? '')).length,
    deadNodesRemoved: countBy(changes, 'removed', 'dead'),
  };
  return { model: changes.length > 0 ? copy : model, modified: changes.length > 0, report: { pass: name, changes, warnings, stats } };
}

/** All pre-passes to a fixed point. */
export const foldPass: Pass<FoldOptions> = {
  name: 'fold',
  run: (model, options) => foldResult('fold', model, options),
};

function singleStep(step: FoldStep): Pass<FoldOptions> {
  return { name: step, run: (model, options) => foldResult(step, model, { ...options, steps: [step] }) };
}

export const hoistConstantsPass = singleStep('hoist-constants');
export const removeIdentityPass = singleStep('remove-identity');
export const foldConstantsPass = singleStep('fold-constants');
export const foldBatchNormPass = singleStep('fold-batchnorm');
export const removeDeadPass = singleStep('remove-dead');
