export { labelWithTeachers, type SoftLabels } from './label.ts';
export { distilStudent, DEFAULT_DISTIL_OPTIONS, type DistilOptions, type DistilResult, type UnlabelledSet } from './distil.ts';
export { compareStudents, scoreStudent, type Comparison, type StudentScore, type EvaluationSet } from './evaluate.ts';
export { startSampleReceiver, readReceivedSamples, type SampleReceiver, type SampleReceiverOptions } from './sample-receiver.ts';
export { FleetDatabase, type FleetDevice, type IngestOutcome } from './fleet-db.ts';
export { startIngest, ingestSubscriptions, type IngestOptions, type IngestWorker } from './ingest.ts';
export { publishStudent, type PublishRequest, type Published } from './publish.ts';
export { rollOut, pickCanaries, judgeCanaries, rolloutTargets, versionOfRef, type RolloutOptions, type RolloutResult, type RolloutTelemetry, type FleetCommander, type RolloutCandidate, type RolloutTargets } from './rollout.ts';
export { controlCommander, type ControlCommanderOptions } from './control-commander.ts';
