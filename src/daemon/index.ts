/** daemon/: configuration, wiring, lifecycle (start, reload, stop), safe deployment, systemd notify and watchdog. */
export { Daemon, type DaemonDeps } from './daemon.ts';
export { DeploymentManager, servedModel, type DeployDeps, type DeployOutcome, type Recovery } from './deploy.ts';
export { DeployStateStore, emptyDeployState, type ModelDeployState, type TrialMarker } from './deploy-state.ts';
export { judgeTrial, type GateRules, type GateVerdict } from './health-gate.ts';
export { LatencyWindow, percentile, type WindowSummary } from './latency-window.ts';
export { BudgetWatch, stepBreach, type BreachRules, type BreachState } from './budget-watch.ts';
export { EventLog, type DaemonEvent, type DaemonEventKind, type DaemonEventMap, type EventSink } from './events.ts';
export { InferenceHealth, type HealthConfig } from './health.ts';
export { InProcessServing, zeroFeeds } from './in-process-serving.ts';
export { SlotServing, PROBE_REQUEST_ID } from './slot-serving.ts';
export { systemdNotifier, watchdogIntervalMs, type Notifier } from './notify.ts';
export { EventLoopLag, Watchdog } from './watchdog.ts';
export { Reconciler, precisionBits, type DesiredModel, type ReconcileResult } from './reconcile.ts';
export { planReload, RELOADABLE, type ReloadPlan } from './reload.ts';
export { seedFixtureLayout, seedRef, seedLayoutDir, fixtureModelsDir, sampleRequestPath, writeSampleRequest, SEED_MODEL, SEED_TAG } from './seed.ts';
export { resolveConfigFile, SYSTEM_CONFIG_FILE } from './config-file.ts';
export { readRuntimeStatus, writeRuntimeStatus, runtimeStatusPath, processAlive, modelStatus, type RuntimeStatus, type StatusReport, type ModelStatus } from './status.ts';
export type { ApiServer, InferenceOutcome, ModelServing, ServedModel, ServiceHealth, TelemetryLink } from './ports.ts';
