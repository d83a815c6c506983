/** planner/: evaluation (accuracy and fidelity) for choosing among model variants. */
export {
  evaluateModel,
  evaluateSessions,
  runOverDataset,
  collectOutputs,
  type RunStep,
  DEFAULT_BATCH_SIZE,
  type EvaluateOptions,
  type EvaluationReport,
  type OutputFidelity,
} from './evaluate.ts';
export {
  AccuracyMeter,
  FidelityMeter,
  argmax,
  inTopK,
  cosineSimilarity,
  relativeL2,
  maxAbsError,
  type AccuracyResult,
  type FidelityResult,
} from './metrics.ts';
