/** planner/: evaluation (accuracy and fidelity), budgets, candidates, the search behind `edgevolve optimize`, its report and Pareto plot. */
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
export { optimize, calibrationFrom, bySensitivity, type OptimizeOptions, type OptimizeDeps, type OptimizeResult, type CandidateRecord, type CandidateStatus, type BenchNumbers, type SensitivityLayer, type Stage } from './search.ts';
export { validateBudgets, budgetMisses, describeMiss, relaxAdvice, hasAnyBudget, OBJECTIVES, MIB, type Budgets, type BudgetMiss, type Objective } from './budgets.ts';
export { chooseMetric, scoreOf, subsetNoiseMargin, describeMetric, type AccuracyMetric, type AccuracyScore } from './accuracy.ts';
export { uniformCandidates, describeCandidate, type CandidateSpec, type CandidateStep } from './candidates.ts';
export { CandidateBuilder, type BuiltCandidate } from './build.ts';
export { countMacs, macsByOpType, predictLatencyRatio, deviceSpeed, NEUTRAL_SPEED, type NodeMacs, type DeviceSpeed } from './cost.ts';
export { paretoFront, dominates, type ParetoPoint } from './pareto.ts';
export { renderReport, reportDocument, type ReportHeader } from './report.ts';
export { paretoSvg } from './plot.ts';
export { isolatedBench } from './bench.ts';
export { cancelledError, throwIfCancelled } from './cancel.ts';
