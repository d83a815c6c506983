/**
 * Telemetry over MQTT: the topic tree and payload schemas, the SQLite outbox, the MQTT
 * link (connection, birth/death, commands in) and the metrics aggregator.
 */
export { TOPIC_ROOT, FLEET_WIDE_DEVICE, ID_PATTERN, isValidId, assertValidId, deviceTopics, isInDeviceSubtree, type DeviceTopics, type IdKind } from './topics.ts';
export * from './schemas.ts';
export { mqttConfigSchema, telemetryConfigSchema, type MqttConfig, type TelemetryConfig } from './config.ts';
export { Outbox, PRIORITY, messageKey, type Priority, type OutboxLimits, type OutboxStats, type OutboxChange, type NewMessage, type StoredMessage, type DropCounts } from './outbox.ts';
export { backoffDelay, backoffCeiling, type BackoffPolicy } from './backoff.ts';
export { MqttLink, readTlsMaterial, type BirthProvider, type CommandHandler, type TlsMaterial, type LinkStatus, type LinkState } from './link.ts';
export { TelemetryAggregator, CONFIDENCE_BOUNDS, ENTROPY_BOUNDS, type TelemetryRecorder, type UnnumberedRecord } from './aggregator.ts';
export { Histogram } from './histogram.ts';
export { hostSystemSampler, parseProcStatCpu, type SystemSample, type SystemSampler, type HostSamplerDeps } from './system.ts';
export { TelemetryService, openTelemetry, type MessageChannel, type PublishOptions, type TelemetryOptions, type TelemetryHealth } from './service.ts';
