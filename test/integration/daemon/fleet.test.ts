import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sendCommand } from '../../../src/control/index.ts';
import { silentLogger } from '../../../src/log/index.ts';
import { startDaemon, type DaemonHandle } from '../../../src/main.ts';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { writeDaemonConfig } from './daemon-process.ts';

describe.runIf(requireMosquitto())('the daemon on a real broker: birth, telemetry events and fleet commands', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let broker: RunningMosquitto;
  let handle: DaemonHandle | undefined;
  let client: MqttClient | undefined;

  beforeEach(async () => {
    tmp = await makeTempDir('edgevolve-fleet-');
    broker = await startMosquitto();
  });
  afterEach(async () => {
    await client?.endAsync();
    await handle?.stop();
    await broker.close();
    await tmp.cleanup();
  });

  it('publishes a retained birth naming the served model, and answers ping and set-budgets commands', async () => {
    const config = await writeDaemonConfig(tmp.dir, join(tmp.dir, 'state'), { mqtt: { urls: [broker.url], fleet: 'f1', deviceId: 'dev1' }, control: { trustBrokerAcl: true } });
    handle = await startDaemon({ configFile: config, env: {}, installProcessHandlers: false, logger: silentLogger(), notifier: { enabled: false, watchdogMs: undefined, notify: () => Promise.resolve() } });
    client = await connectAsync(broker.url, { clientId: 'operator' });

    const birth = new Promise<Record<string, unknown>>((resolve) => {
      client!.on('message', (topic, payload) => {
        if (topic === 'edgevolve/v1/f1/dev1/state') resolve(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
      });
    });
    await client.subscribeAsync('edgevolve/v1/f1/dev1/state', { qos: 1 });
    expect(await birth).toMatchObject({ status: 'online', device: 'dev1', model: { name: 'mnist', version: '1.0.0', variant: 'cnn' } });

    const ping = await sendCommand(client, { fleet: 'f1', device: 'dev1', type: 'ping', payload: { echo: 'hello' }, signer: undefined, timeoutMs: 30_000 });
    expect(ping.results.get('dev1')?.result).toMatchObject({ status: 'done', result: { echo: 'hello', status: expect.stringMatching(/^ready; serving mnist 1\.0\.0\/cnn/) as unknown } });

    const budgets = await sendCommand(client, { fleet: 'f1', device: 'dev1', type: 'set-budgets', payload: { budgets: { latencyP95Ms: 25 } }, signer: undefined, timeoutMs: 30_000 });
    expect(budgets.results.get('dev1')?.result).toMatchObject({ status: 'done', result: { model: 'mnist', budgets: { latencyP95Ms: 25 } } });
    expect(handle.daemon.budgets('mnist').latencyP95Ms).toBe(25);

    const rollback = await sendCommand(client, { fleet: 'f1', device: 'dev1', type: 'rollback', payload: {}, signer: undefined, timeoutMs: 30_000 });
    // One version only: nothing to roll back to, reported as an error result with a code.
    expect(rollback.results.get('dev1')?.result).toMatchObject({ status: 'failed', error: { code: 'E_STORE_NOT_FOUND' } });
  });
});
