/**
 * Edge–cloud co-evolution (issue 9): on the device, hard-sample mining, drift detection
 * and the cloud cascade; in the cloud, teacher labelling, distillation and the publish
 * gate. See README, "Edge–cloud co-evolution".
 */
export { scoreLogits, isHard, lowConfidenceBoxShare, type ConfidenceScores, type HardnessCriteria } from './confidence.ts';
export { openPredictor, argmax, accuracyOf, type Predictor } from './predictor.ts';
export { applyFieldShift, loadFieldData, loadTrainingReplay, DEFAULT_FIELD_SHIFT, type FieldShift, type FieldData, type FieldSet } from './field/index.ts';
export { measureCascade, CloudCascade, CircuitBreaker, type CascadeOutcome, type CascadeOptions, type CascadeCounters, type CascadeRequest, type CascadeAnswer } from './cascade/index.ts';
export { Histogram, psi, klDivergence, DriftMonitor, type DriftOptions, type DriftReport, type DriftSink } from './drift.ts';
export { labelWithTeachers, type SoftLabels } from './cloud/label.ts';
export { distilStudent, DEFAULT_DISTIL_OPTIONS, type DistilOptions, type DistilResult, type UnlabelledSet } from './cloud/distil.ts';
export { compareStudents, scoreStudent, type Comparison, type StudentScore, type EvaluationSet } from './cloud/evaluate.ts';
export { runRound, type RoundInputs, type RoundReport } from './round.ts';
export { DeviceCoevolution, type DeviceCoevolutionDeps, type ServingHooks, type QualityRecorder, type ServedInference, type CollectReport } from './device.ts';
export { collectSamplesHandler } from './collect-command.ts';
export { coevolutionConfigSchema, miningRuleSchema, type CoevolutionConfig } from './config.ts';
