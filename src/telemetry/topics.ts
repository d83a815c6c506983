/**
 * The topic tree of one device: `edgevolve/v1/<fleet>/<device>/{state,telemetry,events,
 * samples,cmd,cmd/<id>/ack,cmd/<id>/result}`, plus the fleet-wide command topic
 * `edgevolve/v1/<fleet>/$all/cmd` that src/control/ also listens on.
 */
import { EdgevolveError } from '../errors/index.ts';

export const TOPIC_ROOT = 'edgevolve/v1';
/** The device level of the fleet-wide command topic (`$` never occurs in an id). */
export const FLEET_WIDE_DEVICE = '$all';

/**
 * Fleet, device, client and command ids. No `+`, `#` or `/` (CVE-2017-7650: wildcards in
 * ids bypassed mosquitto pattern ACLs, and mosquitto now refuses such client ids), never
 * empty, at most 64 characters so a topic stays well under broker limits.
 */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type IdKind = 'fleet' | 'device' | 'client' | 'command';

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Throws E_TELEMETRY_ID_INVALID naming the kind and what is wrong. */
export function assertValidId(kind: IdKind, value: string): void {
  if (ID_PATTERN.test(value)) return;
  const reason =
    value.length === 0
      ? 'is empty'
      : value.length > 64
        ? `is ${value.length} characters (at most 64)`
        : /[+#/]/.test(value)
          ? 'contains an MQTT wildcard or separator (+, # or /)'
          : 'has characters outside [A-Za-z0-9_-]';
  throw new EdgevolveError('E_TELEMETRY_ID_INVALID', `${kind} id ${JSON.stringify(value.slice(0, 80))} ${reason}`, { context: { kind } });
}

/** The topics of one device; built once from validated ids. */
export interface DeviceTopics {
  readonly base: string;
  readonly state: string;
  readonly telemetry: string;
  readonly events: string;
  readonly samples: string;
  /** Commands to this device alone. */
  readonly cmd: string;
  /** Commands to every device of the fleet. */
  readonly fleetCmd: string;
  ack(commandId: string): string;
  result(commandId: string): string;
}

export function deviceTopics(fleet: string, device: string, root: string = TOPIC_ROOT): DeviceTopics {
  assertValidId('fleet', fleet);
  assertValidId('device', device);
  const base = `${root}/${fleet}/${device}`;
  return {
    base,
    state: `${base}/state`,
    telemetry: `${base}/telemetry`,
    events: `${base}/events`,
    samples: `${base}/samples`,
    cmd: `${base}/cmd`,
    fleetCmd: `${root}/${fleet}/${FLEET_WIDE_DEVICE}/cmd`,
    ack: (commandId) => {
      assertValidId('command', commandId);
      return `${base}/cmd/${commandId}/ack`;
    },
    result: (commandId) => {
      assertValidId('command', commandId);
      return `${base}/cmd/${commandId}/result`;
    },
  };
}

/** True when `topic` lies inside the device's own subtree (the only place it may publish). */
export function isInDeviceSubtree(topics: DeviceTopics, topic: string): boolean {
  return topic.startsWith(`${topics.base}/`) && !/[+#]/.test(topic);
}
