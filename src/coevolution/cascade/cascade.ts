import { request } from 'undici';
import { DataType, type TensorValue } from '../../onnx/index.ts';
import { EdgevolveError } from '../../errors/index.ts';
import { isHard, scoreLogits, type HardnessCriteria } from '../confidence.ts';
import { CircuitBreaker } from './breaker.ts';

export interface CascadeOptions {
  /** Base URL of the cloud KServe v2 server, e.g. `http://cloud:8080`. */
  readonly url: string;
  /** The cloud's model name; `{model}` in it is replaced by the local model's name. */
  readonly cloudModel: string;
  /** Which local answers are worth asking the cloud about. */
  readonly criteria: HardnessCriteria;
  /** The cloud's answer is used only if it arrives within this many milliseconds. */
  readonly deadlineMs: number;
  readonly breakerFailures: number;
  readonly breakerOpenMs: number;
  readonly token?: string | undefined;
}

export interface CascadeCounters {
  requests: number;
  /** Asked the cloud (hard and the breaker allowed it). */
  offloaded: number;
  answeredByCloud: number;
  answeredLocally: number;
  cloudTimeouts: number;
  cloudErrors: number;
  /** Hard, but the breaker was open: answered locally without asking. */
  breakerSkipped: number;
}

/** What the cascade needs of a request; InterceptionRequest of src/runtime/serving/hooks.ts fits. */
export interface CascadeRequest {
  readonly model: string;
  readonly requestId: string | undefined;
  readonly inputs: Readonly<Record<string, TensorValue>>;
  readonly localOutputs: Readonly<Record<string, TensorValue>>;
}

/** A replacement answer; InterceptionResult of src/runtime/serving/hooks.ts. */
export interface CascadeAnswer {
  readonly outputs: Readonly<Record<string, TensorValue>>;
  readonly answeredBy: 'local' | 'cloud';
}

const KSERVE_TYPES: Readonly<Record<number, string>> = { [DataType.FLOAT]: 'FP32', [DataType.INT64]: 'INT64', [DataType.INT32]: 'INT32' };

/**
 * Joint inference: when the local model is unsure of a request (every row of the batch is
 * judged; any hard row sends the batch), the request goes to a cloud KServe v2 endpoint
 * with a deadline. The cloud's answer replaces the local one when it arrives in time with
 * the same output names and shapes; otherwise the local answer stands. A circuit breaker
 * stops asking while the cloud keeps failing. Implements the serving path's
 * InferenceInterceptor (`intercept`), so the API reports which model answered.
 */
export class CloudCascade {
  readonly counters: CascadeCounters = { requests: 0, offloaded: 0, answeredByCloud: 0, answeredLocally: 0, cloudTimeouts: 0, cloudErrors: 0, breakerSkipped: 0 };
  private readonly breaker: CircuitBreaker;

  constructor(private readonly options: CascadeOptions, now: () => number, private readonly onError: (err: EdgevolveError) => void = () => {}) {
    this.breaker = new CircuitBreaker(options.breakerFailures, options.breakerOpenMs, now);
  }

  get breakerState(): 'closed' | 'open' | 'half-open' {
    return this.breaker.state;
  }

  async intercept(req: CascadeRequest): Promise<CascadeAnswer | undefined> {
    this.counters.requests++;
    if (!this.isUnsure(req.localOutputs)) {
      this.counters.answeredLocally++;
      return undefined;
    }
    if (!this.breaker.allow()) {
      this.counters.breakerSkipped++;
      this.counters.answeredLocally++;
      return undefined;
    }
    this.counters.offloaded++;
    try {
      const outputs = await this.askCloud(req);
      this.breaker.success();
      this.counters.answeredByCloud++;
      return { outputs, answeredBy: 'cloud' };
    } catch (err) {
      this.breaker.failure();
      const error = err instanceof EdgevolveError ? err : new EdgevolveError('E_COEVO_CLOUD', (err as Error).message, { cause: err });
      if (error.context?.timeout === true) this.counters.cloudTimeouts++;
      else this.counters.cloudErrors++;
      this.counters.answeredLocally++;
      this.onError(error);
      return undefined;
    }
  }

  private isUnsure(outputs: Readonly<Record<string, TensorValue>>): boolean {
    const first = Object.values(outputs)[0];
    if (first === undefined || !(first.data instanceof Float32Array)) return false;
    const rows = first.dims[0] ?? 1;
    const classes = first.data.length / rows;
    if (!Number.isInteger(classes) || classes < 2) return false;
    for (let row = 0; row < rows; row++) if (isHard(scoreLogits(first.data, row, classes), this.options.criteria)) return true;
    return false;
  }

  private async askCloud(req: CascadeRequest): Promise<Record<string, TensorValue>> {
    const model = this.options.cloudModel.replace('{model}', req.model);
    const url = `${this.options.url.replace(/\/$/, '')}/v2/models/${encodeURIComponent(model)}/infer`;
    const inputs = Object.entries(req.inputs).map(([name, value]) => {
      const datatype = KSERVE_TYPES[value.dataType];
      if (datatype === undefined) throw new EdgevolveError('E_COEVO_CLOUD', `input ${name}: element type ${value.dataType} is not sent to the cloud`);
      return { name, shape: value.dims, datatype, data: Array.from(value.data as ArrayLike<number | bigint>, Number) };
    });
    const body = JSON.stringify({ ...(req.requestId === undefined ? {} : { id: req.requestId }), inputs, outputs: Object.keys(req.localOutputs).map((name) => ({ name })) });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    const signal = AbortSignal.timeout(this.options.deadlineMs);
    let text: string;
    let status: number;
    try {
      const res = await request(url, { method: 'POST', headers, body, signal });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const timeout = signal.aborted;
      throw new EdgevolveError('E_COEVO_CLOUD', timeout ? `${url}: no answer within ${this.options.deadlineMs} ms` : `${url}: ${(err as Error).message}`, { cause: err, context: { timeout } });
    }
    if (status !== 200) throw new EdgevolveError('E_COEVO_CLOUD', `${url}: HTTP ${status} ${text.slice(0, 200)}`);
    return parseOutputs(text, req.localOutputs, url);
  }
}

/** The cloud's outputs, accepted only with the local outputs' names, element count and type FP32. */
function parseOutputs(text: string, local: Readonly<Record<string, TensorValue>>, url: string): Record<string, TensorValue> {
  let doc: { outputs?: { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown }[] };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (err) {
    throw new EdgevolveError('E_COEVO_CLOUD', `${url}: the answer is not JSON`, { cause: err });
  }
  const out: Record<string, TensorValue> = {};
  for (const [name, value] of Object.entries(local)) {
    const match = doc.outputs?.find((o) => o.name === name);
    if (match === undefined || match.datatype !== 'FP32' || !Array.isArray(match.data) || match.data.length !== value.data.length) {
      throw new EdgevolveError('E_COEVO_CLOUD', `${url}: output ${name} is missing or differs from the local one (need FP32 x ${value.data.length})`);
    }
    const data = Float32Array.from(match.data as number[]);
    out[name] = { dataType: DataType.FLOAT, dims: [...value.dims], data };
  }
  return out;
}
