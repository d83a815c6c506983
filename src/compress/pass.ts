/**
 * The one contract every compression pass follows (STYLE.md principle 6, after
 * onnx/ir-py's pass infrastructure): a named, pure function from a model and its
 * options to a new model, whether anything changed, and a report. Passes never
 * touch the filesystem, network or clock. `runPass` adds the checks: optional
 * preconditions, and IR validation of the result as the default postcondition.
 */
import { EdgevolveError } from '../errors/index.ts';
import type { ModelProto } from '../onnx/types.ts';

/** What a pass did to one node or tensor, for the report. */
export interface Change {
  /** Node name (or tensor name for initializer-only edits). */
  readonly target: string;
  /** Short verb: 'quantized', 'folded', 'pruned', 'removed', 'kept-float', ... */
  readonly action: string;
  readonly detail?: string;
  /** Pass-specific numbers: sparsity, channels before/after, scale... */
  readonly stats?: Readonly<Record<string, number | string | boolean>>;
}

export interface PassReport {
  readonly pass: string;
  readonly changes: readonly Change[];
  /** Things the user should know: ops left in float, values clamped, groups not pruned and why. */
  readonly warnings: readonly string[];
  /** Pass-wide numbers (counts, sizes, sparsity). */
  readonly stats: Readonly<Record<string, number>>;
}

export interface PassResult {
  readonly model: ModelProto;
  /** False when the pass found nothing to do; `fixpoint` stops on it. */
  readonly modified: boolean;
  readonly report: PassReport;
}

/** A problem found by a pre- or postcondition check. */
export interface ConditionFailure {
  readonly message: string;
  readonly target?: string;
}

export interface Pass<Options = void> {
  readonly name: string;
  /** Checks the input before `run`; any failure aborts with E_COMPRESS_PRECONDITION. */
  requires?(model: ModelProto, options: Options): readonly ConditionFailure[];
  /** The transformation. Must not mutate `model`: copy what it changes (see `cloneModel`). */
  run(model: ModelProto, options: Options): PassResult;
  /** Checks the output after `run`, in addition to IR validation. */
  ensures?(before: ModelProto, after: ModelProto, options: Options): readonly ConditionFailure[];
}

/** Validates a model and returns its error-level problems; injected so that this file depends only on types. */
export type ModelValidator = (model: ModelProto) => readonly ConditionFailure[];

export interface RunPassOptions {
  /** The postcondition applied to every output; pass `null` only in tests of the checks themselves. */
  readonly validate: ModelValidator | null;
}

/** Runs a pass with its pre- and postconditions. */
export function runPass<Options>(pass: Pass<Options>, model: ModelProto, options: Options, checks: RunPassOptions): PassResult {
  const pre = pass.requires?.(model, options) ?? [];
  if (pre.length > 0) {
    throw new EdgevolveError('E_COMPRESS_PRECONDITION', `${pass.name}: ${describe(pre)}`, { context: { pass: pass.name, failures: pre } });
  }
  const result = pass.run(model, options);
  if (!result.modified) return result;
  const post = [...(pass.ensures?.(model, result.model, options) ?? []), ...(checks.validate?.(result.model) ?? [])];
  if (post.length > 0) {
    throw new EdgevolveError('E_COMPRESS_POSTCONDITION', `${pass.name} produced an invalid model: ${describe(post)}`, {
      context: { pass: pass.name, failures: post },
    });
  }
  return result;
}

function describe(failures: readonly ConditionFailure[]): string {
  const shown = failures.slice(0, 5).map((f) => (f.target ? `${f.target}: ${f.message}` : f.message));
  const more = failures.length > 5 ? ` (+${failures.length - 5} more)` : '';
  return shown.join('; ') + more;
}

/** Runs passes one after another; the report concatenates theirs. */
export function sequential(name: string, passes: readonly Pass[], checks: RunPassOptions): Pass {
  return {
    name,
    run(model) {
      let current = model;
      let modified = false;
      const changes: Change[] = [];
      const warnings: string[] = [];
      const stats: Record<string, number> = {};
      for (const pass of passes) {
        const result = runPass(pass, current, undefined, checks);
        current = result.model;
        modified ||= result.modified;
        changes.push(...result.report.changes);
        warnings.push(...result.report.warnings);
        for (const [key, value] of Object.entries(result.report.stats)) stats[`${pass.name}.${key}`] = value;
      }
      return { model: current, modified, report: { pass: name, changes, warnings, stats } };
    },
  };
}

/** Repeats a pass until it reports no modification, at most `maxIterations` times. */
export function fixpoint(pass: Pass, maxIterations: number, checks: RunPassOptions): Pass {
  return {
    name: `fixpoint(${pass.name})`,
    run(model) {
      let current = model;
      let modified = false;
      const changes: Change[] = [];
      const warnings: string[] = [];
      let iterations = 0;
      for (; iterations < maxIterations; iterations++) {
        const result = runPass(pass, current, undefined, checks);
        changes.push(...result.report.changes);
        warnings.push(...result.report.warnings);
        if (!result.modified) break;
        current = result.model;
        modified = true;
      }
      if (iterations === maxIterations) warnings.push(`${pass.name} still changed the model after ${maxIterations} iterations`);
      return { model: current, modified, report: { pass: `fixpoint(${pass.name})`, changes, warnings, stats: { iterations } } };
    },
  };
}

/** A report for a pass that changed nothing. */
export function unchanged(model: ModelProto, pass: string, warnings: readonly string[] = []): PassResult {
  return { model, modified: false, report: { pass, changes: [], warnings, stats: {} } };
}
