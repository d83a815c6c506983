/**
 * CommandTransport over a plain mqtt.js client: what tests, the fleet simulator and a
 * minimal deployment use. The daemon passes the telemetry service instead.
 */
import type { MqttClient } from 'mqtt';
import type { CommandTransport } from './channel.ts';
import { commandTopics, type DeviceAddress } from './topics.ts';

/**
 * Subscribes (QoS 1) to the device's command topics, and the fleet-wide one unless
 * `fleetWide` is false, then returns the transport. Messages that arrive before a handler
 * is registered are kept and handed to it.
 */
export async function mqttCommandTransport(client: MqttClient, address: DeviceAddress, options: { fleetWide?: boolean } = {}): Promise<CommandTransport> {
  const topics = commandTopics(address);
  const wanted = new Set(options.fleetWide === false ? [topics.device] : [topics.device, topics.fleet]);
  let handler: ((topic: string, payload: Buffer) => void) | undefined;
  const early: [string, Buffer][] = [];
  client.on('message', (topic, payload) => {
    if (!wanted.has(topic)) return;
    if (handler === undefined) early.push([topic, payload]);
    else handler(topic, payload);
  });
  await client.subscribeAsync([...wanted], { qos: 1 });
  return {
    onCommand: (h) => {
      handler = h;
      for (const [topic, payload] of early.splice(0)) h(topic, payload);
    },
    publish: async (topic, payload, publishOptions) => {
      await client.publishAsync(topic, payload, { qos: publishOptions.qos, retain: publishOptions.retain ?? false });
      publishOptions.onDelivered?.();
    },
  };
}
