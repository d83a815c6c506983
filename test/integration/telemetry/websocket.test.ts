/**
 * MQTT over WebSockets (ws://) and over WebSockets in TLS (wss://, the test CA) against
 * mosquitto's own websockets listener: Debian's mosquitto 2.0 is built with
 * libwebsockets, so no bridge stands in for the broker here. The device side is the
 * daemon's wiring: the telemetry service is the link and the command channel's transport.
 * The cloud listens and commands over plain TCP on the same broker.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommandChannel, CommandStore, controlConfigSchema, controlSettings, sendCommand } from '../../../src/control/index.ts';
import { systemClock } from '../../../src/host/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { openTelemetry, type TelemetryService } from '../../../src/telemetry/service.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { FLEET, makeKeyPair } from '../control/harness.ts';
import { checkOrderedComplete, serviceOptions, startCollector, testMqttConfig, type Collector } from './support.ts';

const fleetKey = makeKeyPair('fleet-ws');
const TELEMETRY = `edgevolve/v1/${FLEET}/dev-ws/telemetry`;
const RECORDS = 120;

describe.runIf(requireMosquitto())('telemetry and commands over MQTT over WebSockets (mosquitto websockets listener)', () => {
  let broker: RunningMosquitto | undefined;
  let collector: Collector | undefined;
  let service: TelemetryService | undefined;
  let store: CommandStore | undefined;
  let tmp: { dir: string; cleanup: () => Promise<void> };

  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await service?.stop();
    service = undefined;
    store?.close();
    store = undefined;
    await collector?.close();
    await broker?.close();
    await tmp.cleanup();
  });

  for (const scheme of ['ws', 'wss'] as const) {
    it(`${scheme}://: telemetry arrives complete and in order, and a signed command runs once and answers`, async () => {
      broker = await startMosquitto({ websockets: true, tls: scheme === 'wss' });
      const wsUrl = broker.wsUrl ?? '';
      expect(wsUrl.startsWith(`${scheme}://`)).toBe(true);
      const tlsClient = broker.tls === undefined ? {} : { ca: broker.tls.ca };
      collector = await startCollector(broker.url, `edgevolve/v1/${FLEET}/dev-ws/#`, tlsClient);

      service = openTelemetry({
        ...serviceOptions(tmp.dir, 'dev-ws', testMqttConfig({ urls: [wsUrl], fleet: FLEET })),
        ...(broker.tls === undefined ? {} : { tls: { ca: broker.tls.ca } }),
      });
      store = CommandStore.open(join(tmp.dir, 'control.db'));
      let pings = 0;
      const channel = new CommandChannel({
        address: { fleet: FLEET, device: 'dev-ws' },
        transport: service,
        store,
        handlers: {
          ping: (payload) => {
            pings += 1;
            return Promise.resolve({ pong: true, echo: payload.echo ?? null });
          },
        },
        keys: new Map([[fleetKey.publicKey.keyId, fleetKey.publicKey]]),
        settings: controlSettings(controlConfigSchema.parse({})),
        clock: systemClock,
        logger: silentLogger(),
      });
      await channel.start();
      service.start();
      await service.link.waitConnected();
      expect(service.link.getStatus().url).toBe(wsUrl);

      for (let i = 0; i < RECORDS; i += 1) await service.tick();
      const expected = Array.from({ length: RECORDS }, (_, i) => i + 2); // seq 1 is the agent-start event
      await collector.until(() => checkOrderedComplete(collector!.seqs(TELEMETRY), expected).missing.length === 0);
      const check = checkOrderedComplete(collector.seqs(TELEMETRY), expected);
      expect(check).toEqual({ missing: [], outOfOrder: 0, duplicates: 0 });

      const outcome = await sendCommand(collector.client, { fleet: FLEET, device: 'dev-ws', type: 'ping', payload: { echo: scheme }, signer: fleetKey.signer, timeoutMs: 10_000 });
      expect(outcome.timedOut).toBe(false);
      expect(outcome.acks.get('dev-ws')).toMatchObject({ id: outcome.id, state: 'received' });
      expect(outcome.results.get('dev-ws')?.result).toMatchObject({ id: outcome.id, status: 'done', result: { pong: true, echo: scheme } });
      expect(pings).toBe(1);
      await channel.stop(1000);
    });
  }
});
