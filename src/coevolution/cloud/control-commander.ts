import type { MqttClient } from 'mqtt';
import { sendCommand, type FleetSigningKey } from '../../control/index.ts';
import type { FleetCommander } from './rollout.ts';

export interface ControlCommanderOptions {
  readonly fleet: string;
  readonly signer: FleetSigningKey | undefined;
  /** How long to wait for each device's result, ms. */
  readonly timeoutMs: number;
  /** Passed in the deploy payload's rollout block: seconds the device keeps the new version on trial. */
  readonly trialSeconds?: number | undefined;
}

/**
 * The rollout's commands as signed src/control commands over MQTT: `deploy {ref}` and
 * `rollback {}`, one device at a time; true only when the device answered `done`.
 */
export function controlCommander(client: MqttClient, options: ControlCommanderOptions): FleetCommander {
  const send = async (device: string, type: 'deploy' | 'rollback', payload: unknown): Promise<boolean> => {
    const outcome = await sendCommand(client, { fleet: options.fleet, device, type, payload, signer: options.signer, timeoutMs: options.timeoutMs, expectResults: 1 });
    return outcome.results.get(device)?.result.status === 'done';
  };
  return {
    deploy: (device, ref) => send(device, 'deploy', { ref, ...(options.trialSeconds === undefined ? {} : { rollout: { trialSeconds: options.trialSeconds } }) }),
    rollback: (device) => send(device, 'rollback', {}),
  };
}
