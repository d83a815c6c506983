/** runtime/serving/: model slots holding the active session per model name, with zero-downtime swaps. */
export {
  ModelSlot,
  type ModelSlotOptions,
  type ModelVersionSpec,
  type LoadedVersionInfo,
  type InferOptions,
  type InferResult,
  type SwapResult,
  type SlotMetrics,
  type BatchingState,
} from './slot.ts';
export { ModelSlots } from './slots.ts';
export type {
  AnsweredBy,
  InferenceEvent,
  InferenceObserver,
  InferenceInterceptor,
  InterceptionRequest,
  InterceptionResult,
} from './hooks.ts';
export { InferenceStats, LATENCY_BUCKETS_MS, LATENCY_WINDOW, percentiles, type InferenceStatsSnapshot, type LatencyPercentiles } from './stats.ts';
export { checkFeeds, checkOutputNames } from './check-feeds.ts';
export { warmupFeeds } from './warmup.ts';
export { batchingSession, batchingFromConfig, AUTO_BATCH_MAX_ROWS, type BatchingOptions } from './batching.ts';
export { probeBatching, shapeObstacle, DEFAULT_PROBE_TOLERANCE, type BatchProbeOptions, type BatchProbeVerdict } from './batch-probe.ts';
export { ShadowMirror, startShadowMirror, type ShadowCandidate, type ShadowMirrorOptions, type ShadowSpec, type ShadowStats } from './shadow.ts';
export { scoreAgreement, type AgreementMetric, type AgreementScore } from './shadow-compare.ts';
