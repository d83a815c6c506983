import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { requireMosquitto, startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.ts';

async function connectOnce(url: string, options: mqtt.IClientOptions): Promise<{ ok: boolean; error?: string; client: mqtt.MqttClient }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  return new Promise((resolve) => {
    client.once('connect', () => resolve({ ok: true, client }));
    client.once('error', (e) => resolve({ ok: false, error: e.message, client }));
    client.once('close', () => resolve({ ok: false, error: 'closed', client }));
  });
}

describe.runIf(requireMosquitto())('test helper: mosquitto', () => {
  let broker: RunningMosquitto | undefined;
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
  });

  it('accepts a plain connection, and comes back on the same port after stop() and kill()', async () => {
    broker = await startMosquitto();
    const first = await connectOnce(broker.url, {});
    expect(first.ok).toBe(true);
    await first.client.endAsync();
    await broker.kill();
    const down = await connectOnce(broker.url, {});
    expect(down.ok).toBe(false);
    down.client.end(true);
    await broker.start();
    const again = await connectOnce(broker.url, {});
    expect(again.ok).toBe(true);
    await again.client.endAsync();
  });

  it('with mTLS accepts a client certificate from the test CA and refuses one from another CA', async () => {
    broker = await startMosquitto({ tls: { requireCertificate: true } });
    const tls = broker.tls;
    if (tls === undefined) throw new Error('tls expected');
    const good = tls.issueClientCert('dev-1');
    const accepted = await connectOnce(broker.url, { ca: tls.ca, cert: good.cert, key: good.key, clientId: 'dev-1' });
    expect(accepted.ok).toBe(true);
    await accepted.client.endAsync();
    const bad = tls.issueUntrustedClientCert('dev-1');
    const refused = await connectOnce(broker.url, { ca: tls.ca, cert: bad.cert, key: bad.key, clientId: 'dev-1' });
    expect(refused.ok).toBe(false);
    refused.client.end(true);
  });

  it('with a password file refuses a wrong password', async () => {
    broker = await startMosquitto({ users: { alice: 's3cret' } });
    const ok = await connectOnce(broker.url, { username: 'alice', password: 's3cret' });
    expect(ok.ok).toBe(true);
    await ok.client.endAsync();
    const wrong = await connectOnce(broker.url, { username: 'alice', password: 'nope' });
    expect(wrong.ok).toBe(false);
    wrong.client.end(true);
  });

  it('with persistence keeps a retained message across stop() and start()', async () => {
    broker = await startMosquitto({ persistence: true });
    const pub = await connectOnce(broker.url, {});
    await pub.client.publishAsync('t/retained', 'kept', { qos: 1, retain: true });
    await pub.client.endAsync();
    await broker.stop();
    await broker.start();
    const sub = await connectOnce(broker.url, {});
    const got = new Promise<string>((resolve) => sub.client.on('message', (_t, p) => resolve(p.toString())));
    await sub.client.subscribeAsync('t/retained', { qos: 1 });
    expect(await got).toBe('kept');
    await sub.client.endAsync();
  });
});
