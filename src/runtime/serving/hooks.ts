/**
 * Extension points of the inference path, as plain interfaces that other modules
 * implement and the composition root passes in: telemetry and hard-sample mining
 * observe every inference; the co-evolution cascade may replace a local answer.
 */
import type { TensorValue } from '../../onnx/tensor.ts';
import type { EdgevolveError } from '../../errors/index.ts';

/** Which model produced the answer the caller receives. */
export type AnsweredBy = 'local' | 'cloud';

/** What an observer learns of one inference, after it finished (or failed). */
export interface InferenceEvent {
  readonly model: string;
  readonly version: string;
  readonly variant: string | undefined;
  /** The caller's id for the request, when it gave one (KServe `id`). */
  readonly requestId: string | undefined;
  readonly inputs: Readonly<Record<string, TensorValue>>;
  /** The outputs returned to the caller; undefined when the inference failed. */
  readonly outputs: Readonly<Record<string, TensorValue>> | undefined;
  /** The local model's outputs, which differ from `outputs` when the cloud answered. */
  readonly localOutputs: Readonly<Record<string, TensorValue>> | undefined;
  /** Local model run time, in milliseconds (excludes the interceptor). */
  readonly latencyMs: number;
  readonly answeredBy: AnsweredBy;
  readonly error: EdgevolveError | undefined;
}

/**
 * Called synchronously after each inference. It must return quickly and must not
 * throw (a throw is caught and logged, never failing the request): queue heavy work.
 */
export interface InferenceObserver {
  onInference(event: InferenceEvent): void;
}

/** What an interceptor sees: the request and the local model's answer. */
export interface InterceptionRequest {
  readonly model: string;
  readonly version: string;
  readonly requestId: string | undefined;
  readonly inputs: Readonly<Record<string, TensorValue>>;
  readonly localOutputs: Readonly<Record<string, TensorValue>>;
  readonly latencyMs: number;
}

/** A replacement answer; outputs must carry the same names as the local ones. */
export interface InterceptionResult {
  readonly outputs: Readonly<Record<string, TensorValue>>;
  readonly answeredBy: AnsweredBy;
}

/**
 * Given the local answer, may return a better one (the co-evolution cascade asks the
 * cloud when the local model is unsure). Returning undefined keeps the local answer;
 * a rejection is logged and the local answer is kept.
 */
export interface InferenceInterceptor {
  intercept(request: InterceptionRequest): Promise<InterceptionResult | undefined>;
}
