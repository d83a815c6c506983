/**
 * The command topics of one device. Commands arrive on `<root>/<fleet>/<device>/cmd`
 * (one device) or `<root>/<fleet>/$all/cmd` (the whole fleet: one publish, the broker
 * fans it out); each device answers under its own subtree, `cmd/<id>/ack` and
 * `cmd/<id>/result`. A command that is rejected before its id can be read is answered
 * on `cmd/$invalid/result`. `$` never occurs in a fleet, device or command id, so the
 * reserved levels cannot collide with a real one.
 */
import { EdgevolveError } from '../errors/index.ts';
import { FLEET_WIDE_DEVICE, ID_PATTERN, TOPIC_ROOT } from '../telemetry/topics.ts';

// The topic tree and the id rule belong to telemetry/topics.ts (one definition for
// both halves of the channel); re-exported under the names control has used.
export { ID_PATTERN, TOPIC_ROOT };
/** The device level of the fleet-wide command topic. */
export const FLEET_WIDE = FLEET_WIDE_DEVICE;
/** The id level of results for commands whose id could not be read. */
export const INVALID_ID = '$invalid';

export interface DeviceAddress {
  readonly fleet: string;
  readonly device: string;
}

export interface CommandTopics {
  /** The topic commands for this device alone arrive on. */
  readonly device: string;
  /** The topic fleet-wide commands arrive on. */
  readonly fleet: string;
  ack(id: string): string;
  result(id: string): string;
}

export function assertId(kind: 'fleet' | 'device' | 'command', value: string): void {
  if (!ID_PATTERN.test(value)) {
    throw new EdgevolveError('E_CONTROL_ID', `${kind} id ${JSON.stringify(value.slice(0, 80))} is not 1-64 characters of [A-Za-z0-9_-]`, {
      context: { kind },
    });
  }
}

export function commandTopics(address: DeviceAddress, root: string = TOPIC_ROOT): CommandTopics {
  assertId('fleet', address.fleet);
  assertId('device', address.device);
  const base = `${root}/${address.fleet}/${address.device}/cmd`;
  return {
    device: base,
    fleet: `${root}/${address.fleet}/${FLEET_WIDE}/cmd`,
    ack: (id) => `${base}/${id}/ack`,
    result: (id) => `${base}/${id}/result`,
  };
}

/** Where a sender listens for the answers of command `id` sent to `device` (`+`: every device). */
export function answerTopics(fleet: string, device: string, id: string, root: string = TOPIC_ROOT): { ack: string; result: string } {
  assertId('fleet', fleet);
  if (device !== '+') assertId('device', device);
  assertId('command', id);
  return { ack: `${root}/${fleet}/${device}/cmd/${id}/ack`, result: `${root}/${fleet}/${device}/cmd/${id}/result` };
}

/** The topic a sender publishes a command to: one device, or the fleet with `+`. */
export function sendTopic(fleet: string, device: string, root: string = TOPIC_ROOT): string {
  assertId('fleet', fleet);
  if (device !== '+') assertId('device', device);
  return `${root}/${fleet}/${device === '+' ? FLEET_WIDE : device}/cmd`;
}
