/**
 * Structural validation of a decoded model, with limits, before it reaches
 * onnxruntime or a compression pass. Findings, not exceptions: a caller can show all
 * problems at once; `assertValidModel` throws E_ONNX_INVALID when any is an error.
 */
import { EdgevolveError } from '../errors/index.ts';
import { elementTypeInfo } from './dtype.ts';
import { checkedElementCount, resolveLimits, type OnnxLimits } from './limits.ts';
import { nodeLabel, subgraphsOf } from './graph-scope.ts';
import { topologicalOrder } from './graph.ts';
import { int64ToNumberClamped } from './int64.ts';
import { tensorProblems } from './tensor.ts';
import type { GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto, TypeProto, ValueInfoProto } from './types.ts';

/** One problem found in a model. `code` is a stable identifier (e.g. `dangling-input`). */
export interface Finding {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  node?: string;
  value?: string;
  graph?: string;
}

export interface ValidateOptions {
  limits?: Partial<OnnxLimits>;
  /** The model's directory, to check external data; without it, external data is an error. */
  baseDir?: string;
  /** Stop collecting after this many findings (default 1000): a hostile model cannot make the report huge. */
  maxFindings?: number;
}

/** The domains every model may use without importing them explicitly. */
const STANDARD_DOMAIN = '';

function normalizeDomain(domain: string | undefined): string {
  return domain === undefined || domain === 'ai.onnx' ? STANDARD_DOMAIN : domain;
}

class Collector {
  readonly findings: Finding[] = [];
  nodeCount = 0;
  private stopped = false;
  constructor(private readonly max: number) {}

  add(f: Finding): void {
    if (this.stopped) return;
    if (this.findings.length >= this.max) {
      this.stopped = true;
      this.findings.push({ severity: 'warning', code: 'too-many-findings', message: `stopped after ${this.max} findings` });
      return;
    }
    this.findings.push(f);
  }
}

interface Context {
  readonly limits: OnnxLimits;
  readonly baseDir: string | undefined;
  readonly domains: ReadonlySet<string>;
  readonly out: Collector;
}

/** Checks a model and returns every finding (errors and warnings). Never throws for a bad model. */
export function validateModel(model: ModelProto, opts: ValidateOptions = {}): Finding[] {
  const limits = resolveLimits(opts.limits);
  const out = new Collector(opts.maxFindings ?? 1000);
  const domains = new Set<string>();
  for (const o of model.opsetImport ?? []) domains.add(normalizeDomain(o.domain));
  for (const f of model.functions ?? []) domains.add(normalizeDomain(f.domain));
  const seenDomains = new Set<string>();
  for (const o of model.opsetImport ?? []) {
    const domain = normalizeDomain(o.domain);
    const version = int64ToNumberClamped(o.version);
    if (!Number.isSafeInteger(version) || version < 1) {
      out.add({ severity: 'error', code: 'bad-opset-version', message: `opset import of domain '${domain}' has version ${String(o.version)}` });
    }
    if (seenDomains.has(domain)) {
      out.add({ severity: 'error', code: 'duplicate-opset-import', message: `domain '${domain}' is imported more than once` });
    }
    seenDomains.add(domain);
  }
  if ((model.opsetImport ?? []).length === 0) {
    out.add({ severity: 'error', code: 'no-opset-import', message: 'the model imports no opset (opset_import is empty)' });
  }
  if (int64ToNumberClamped(model.irVersion) <= 0) {
    out.add({ severity: 'warning', code: 'no-ir-version', message: 'the model does not declare an IR version' });
  }
  if (!model.graph) {
    out.add({ severity: 'error', code: 'missing-graph', message: 'the model has no graph' });
    return out.findings;
  }
  const ctx: Context = { limits, baseDir: opts.baseDir, domains, out };
  validateGraph(model.graph, new Set(), 0, ctx);
  if (out.nodeCount > limits.maxNodes) {
    out.add({ severity: 'error', code: 'too-many-nodes', message: `the model has ${out.nodeCount} nodes, more than limits.maxNodes (${limits.maxNodes})` });
  }
  for (const fn of model.functions ?? []) {
    // A function body may use domains it imports itself.
    const fnDomains = new Set(domains);
    for (const o of fn.opsetImport ?? []) fnDomains.add(normalizeDomain(o.domain));
    validateFunctionBody(fn.name ?? '', fn.input ?? [], fn.output ?? [], fn.node ?? [], { ...ctx, domains: fnDomains });
  }
  return out.findings;
}

/** Throws E_ONNX_INVALID (findings in context) when the model has error findings; returns the warnings. */
export function assertValidModel(model: ModelProto, opts: ValidateOptions = {}): Finding[] {
  const findings = validateModel(model, opts);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) {
    const first = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new EdgevolveError('E_ONNX_INVALID', `invalid model: ${first.message}${more}`, { context: { findings: errors } });
  }
  return findings;
}

function checkTensor(t: TensorProto, where: string, graph: string, ctx: Context): void {
  const readOpts = ctx.baseDir === undefined ? { limits: ctx.limits } : { limits: ctx.limits, baseDir: ctx.baseDir };
  for (const err of tensorProblems(t, readOpts)) {
    const code =
      err.code === 'E_ONNX_EXTERNAL_DATA' ? 'external-data' : err.code === 'E_ONNX_TOO_LARGE' ? 'tensor-too-large' : err.code === 'E_ONNX_UNSUPPORTED' ? 'unknown-data-type' : 'tensor-data';
    ctx.out.add({ severity: 'error', code, message: `${where}: ${err.message}`, value: t.name ?? '', graph });
  }
}

function checkSparse(s: SparseTensorProto, where: string, graph: string, ctx: Context): void {
  if (s.values) checkTensor(s.values, `${where} values`, graph, ctx);
  if (s.indices) checkTensor(s.indices, `${where} indices`, graph, ctx);
  const count = checkedElementCount(s.dims ?? [], ctx.limits);
  if (count.problem !== undefined) {
    ctx.out.add({ severity: 'error', code: 'tensor-too-large', message: `${where}: ${count.problem.message}`, value: s.values?.name ?? '', graph });
  }
}

/** Declared shapes: rank and element caps, negative dims. Types nest (sequence/map/optional) so this recurses, bounded by the decoder's depth cap. */
function checkType(type: TypeProto | null | undefined, name: string, graph: string, ctx: Context, depth = 0): void {
  if (!type || depth > 64) return;
  const tensorType = type.tensorType ?? type.sparseTensorType;
  const elemType = tensorType?.elemType ?? 0;
  if (tensorType && elemType !== 0 && elementTypeInfo(elemType) === undefined) {
    ctx.out.add({ severity: 'error', code: 'unknown-data-type', message: `value '${name}' declares element type ${elemType}, which is not an ONNX data type`, value: name, graph });
  }
  if (tensorType?.shape) {
    const dims = tensorType.shape.dim ?? [];
    if (dims.length > ctx.limits.maxDims) {
      ctx.out.add({ severity: 'error', code: 'shape-rank', message: `value '${name}' declares rank ${dims.length}, more than limits.maxDims (${ctx.limits.maxDims})`, value: name, graph });
      return;
    }
    const known: number[] = [];
    for (const d of dims) {
      if (d.dimParam) continue;
      if (d.dimValue === undefined || d.dimValue === null) continue;
      const v = int64ToNumberClamped(d.dimValue);
      // A -1 in a declared shape is common exporter noise (onnxruntime treats it as unknown).
      if (v < 0) {
        ctx.out.add({ severity: 'warning', code: 'negative-dim', message: `value '${name}' declares a negative dimension ${v}`, value: name, graph });
        continue;
      }
      known.push(v);
    }
    const count = checkedElementCount(known, ctx.limits);
    if (count.problem !== undefined) {
      ctx.out.add({ severity: 'error', code: 'shape-too-large', message: `value '${name}': ${count.problem.message}`, value: name, graph });
    }
  }
  if (type.sequenceType) checkType(type.sequenceType.elemType, name, graph, ctx, depth + 1);
  if (type.optionalType) checkType(type.optionalType.elemType, name, graph, ctx, depth + 1);
  if (type.mapType) checkType(type.mapType.valueType, name, graph, ctx, depth + 1);
}

function checkValueInfos(list: readonly ValueInfoProto[] | undefined, graph: string, ctx: Context): void {
  for (const v of list ?? []) checkType(v.type, v.name ?? '', graph, ctx);
}

function validateGraph(graph: GraphProto, outer: ReadonlySet<string>, depth: number, ctx: Context): void {
  const gname = graph.name ?? '';
  const out = ctx.out;
  if (depth > ctx.limits.maxGraphDepth) {
    out.add({ severity: 'error', code: 'graph-too-deep', message: `graph '${gname}' is nested ${depth} deep, more than limits.maxGraphDepth (${ctx.limits.maxGraphDepth})`, graph: gname });
    return;
  }
  const nodes = graph.node ?? [];
  out.nodeCount += nodes.length;
  if (out.nodeCount > ctx.limits.maxNodes) return; // reported once by validateModel; do not walk a node bomb further

  const available = new Set<string>(outer);
  const localDefined = new Set<string>();
  const define = (name: string, what: string, node?: NodeProto, index?: number): void => {
    if (name === '') return;
    if (localDefined.has(name)) {
      out.add({
        severity: 'error',
        code: 'duplicate-definition',
        message: `value '${name}' is defined more than once in graph '${gname}' (again by ${what})`,
        value: name,
        graph: gname,
        ...(node ? { node: nodeLabel(node, index) } : {}),
      });
    } else if (outer.has(name) && depth > 0) {
      out.add({ severity: 'warning', code: 'shadows-outer', message: `value '${name}' in subgraph '${gname}' shadows a value of an enclosing graph`, value: name, graph: gname });
    }
    localDefined.add(name);
    available.add(name);
  };

  for (const v of graph.input ?? []) define(v.name ?? '', 'a graph input');
  const initializerNames = new Set<string>();
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    if (name === '') {
      out.add({ severity: 'error', code: 'unnamed-initializer', message: `graph '${gname}' has an initializer without a name`, graph: gname });
    } else if (initializerNames.has(name)) {
      out.add({ severity: 'error', code: 'duplicate-initializer', message: `initializer '${name}' appears more than once in graph '${gname}'`, value: name, graph: gname });
    } else {
      initializerNames.add(name);
      // IR < 4 lists initializers among the inputs too: that is not a second definition.
      if (!localDefined.has(name)) define(name, 'an initializer');
    }
    checkTensor(t, `initializer '${name}'`, gname, ctx);
  }
  for (const s of graph.sparseInitializer ?? []) {
    const name = s.values?.name ?? '';
    if (name !== '' && !localDefined.has(name)) define(name, 'a sparse initializer');
    checkSparse(s, `sparse initializer '${name}'`, gname, ctx);
  }
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) define(o, `node ${nodeLabel(n, i)}`, n, i);
  });

  checkValueInfos(graph.input, gname, ctx);
  checkValueInfos(graph.output, gname, ctx);
  checkValueInfos(graph.valueInfo, gname, ctx);

  nodes.forEach((n, i) => validateNode(n, i, available, gname, depth, ctx));

  for (const o of graph.output ?? []) {
    const name = o.name ?? '';
    if (name === '') out.add({ severity: 'error', code: 'unnamed-output', message: `graph '${gname}' has an output without a name`, graph: gname });
    else if (!available.has(name)) {
      out.add({ severity: 'error', code: 'output-not-produced', message: `graph output '${name}' of '${gname}' is produced by nothing`, value: name, graph: gname });
    }
  }

  try {
    topologicalOrder(graph);
  } catch (err) {
    if (!(err instanceof EdgevolveError)) throw err;
    const node = typeof err.context.node === 'string' ? err.context.node : undefined;
    out.add({ severity: 'error', code: 'cycle', message: err.message, graph: gname, ...(node === undefined ? {} : { node }) });
  }
}

function validateNode(n: NodeProto, index: number, available: ReadonlySet<string>, gname: string, depth: number, ctx: Context): void {
  const out = ctx.out;
  const label = nodeLabel(n, index);
  if (!n.opType) out.add({ severity: 'error', code: 'empty-op-type', message: `node ${label} has no op_type`, node: label, graph: gname });
  const domain = normalizeDomain(n.domain);
  if (!ctx.domains.has(domain)) {
    out.add({ severity: 'error', code: 'unknown-domain', message: `node ${label} (${n.opType ?? ''}) uses domain '${domain}', which the model does not import`, node: label, graph: gname });
  }
  for (const input of n.input ?? []) {
    if (input !== '' && !available.has(input)) {
      out.add({ severity: 'error', code: 'dangling-input', message: `node ${label} (${n.opType ?? ''}) reads '${input}', which nothing produces`, node: label, value: input, graph: gname });
    }
  }
  for (const a of n.attribute ?? []) {
    const where = `attribute '${a.name ?? ''}' of node ${label}`;
    if (a.t) checkTensor(a.t, where, gname, ctx);
    for (const t of a.tensors ?? []) checkTensor(t, where, gname, ctx);
    if (a.sparseTensor) checkSparse(a.sparseTensor, where, gname, ctx);
    for (const s of a.sparseTensors ?? []) checkSparse(s, where, gname, ctx);
  }
  for (const g of subgraphsOf(n)) validateGraph(g, available, depth + 1, ctx);
}

/** Function bodies: dangling inputs and unknown domains, scoped to the function's inputs. */
function validateFunctionBody(name: string, inputs: readonly string[], outputs: readonly string[], nodes: readonly NodeProto[], ctx: Context): void {
  const graph: GraphProto = {
    name: `function ${name}`,
    node: [...nodes],
    input: inputs.map((i) => ({ name: i })),
    output: outputs.map((o) => ({ name: o })),
  };
  validateGraph(graph, new Set(), 0, ctx);
}
