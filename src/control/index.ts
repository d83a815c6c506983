/**
 * The fleet command channel: validated, signed, idempotent commands over MQTT
 * (README "Fleet commands").
 */
export {
  CommandChannel,
  type CommandChannelOptions,
  type CommandTransport,
  type CommandContext,
  type CommandHandler,
  type CommandHandlers,
  type HandlerOutput,
  type ConfigPatchValidator,
  type ControlSettings,
  type ChannelStats,
} from './channel.ts';
export { controlConfigSchema, controlSettings, controlStorePath, DEFAULT_TIMEOUT_SECONDS, type ControlConfig } from './config.ts';
export { parsePublicKey, parsePrivateKey, resolveFleetKeys, signBytes, verifyBytes, type FleetPublicKey, type FleetSigningKey, type FleetKeyType } from './keys.ts';
export { mqttCommandTransport } from './mqtt-transport.ts';
export {
  PROTOCOL_VERSION,
  PAYLOAD_SCHEMAS,
  COMMAND_TYPES,
  READ_ONLY_TYPES,
  envelopeSchema,
  wireSchema,
  ackSchema,
  resultSchema,
  budgetsSchema,
  isCommandType,
  type Ack,
  type Command,
  type CommandPayloads,
  type CommandResult,
  type CommandState,
  type CommandType,
  type Envelope,
  type ResultStatus,
  type WireCommand,
} from './schemas.ts';
export { sendCommand, topicMatcher, type SendCommandOptions, type SendCommandOutcome } from './sender.ts';
export { CommandStore, CONTROL_MIGRATIONS, type StoredCommand } from './store.ts';
export { TOPIC_ROOT, FLEET_WIDE, INVALID_ID, ID_PATTERN, assertId, commandTopics, answerTopics, sendTopic, type CommandTopics, type DeviceAddress } from './topics.ts';
export { decodeCommand, encodeCommand, sha256Hex, type CommandDraft, type Decoded, type DecodeOptions, type EncodedCommand } from './wire.ts';
