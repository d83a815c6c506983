/**
 * CommandTransport over a plain mqtt.js client: what tests, the fleet simulator and a
 * minimal deployment use. The daemon adapts its own telemetry link instead.
 */
import type { MqttClient } from 'mqtt';
import type { CommandTransport } from './channel.ts';

export function mqttCommandTransport(client: MqttClient): CommandTransport {
  return {
    subscribe: async (topics, onMessage) => {
      const wanted = new Set(topics);
      client.on('message', (topic, payload) => {
        if (wanted.has(topic)) onMessage(topic, payload);
      });
      await client.subscribeAsync([...wanted], { qos: 1 });
    },
    publish: async (topic, payload, options) => {
      await client.publishAsync(topic, payload, { qos: options.qos, retain: options.retain ?? false });
    },
  };
}
