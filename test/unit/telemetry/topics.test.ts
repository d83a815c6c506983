import { describe, expect, it } from 'vitest';
import { assertValidId, deviceTopics, isInDeviceSubtree } from '../../../src/telemetry/topics.ts';
import { codeOf } from '../../helpers/error-code.ts';
import { birthSchema, eventSchema, payloadJsonSchemas, telemetryPayloadSchema } from '../../../src/telemetry/schemas.ts';

describe('telemetry topics', () => {
  it('builds the device topic tree under edgevolve/v1/<fleet>/<device>', () => {
    const t = deviceTopics('fleet-a', 'dev_1');
    expect([t.state, t.telemetry, t.events, t.samples, t.cmd, t.fleetCmd, t.ack('c1'), t.result('c1')]).toEqual([
      'edgevolve/v1/fleet-a/dev_1/state',
      'edgevolve/v1/fleet-a/dev_1/telemetry',
      'edgevolve/v1/fleet-a/dev_1/events',
      'edgevolve/v1/fleet-a/dev_1/samples',
      'edgevolve/v1/fleet-a/dev_1/cmd',
      'edgevolve/v1/fleet-a/$all/cmd',
      'edgevolve/v1/fleet-a/dev_1/cmd/c1/ack',
      'edgevolve/v1/fleet-a/dev_1/cmd/c1/result',
    ]);
  });

  it.each([
    ['', 'is empty'],
    ['a+b', 'wildcard'],
    ['a#', 'wildcard'],
    ['a/b', 'separator'],
    ['x'.repeat(65), '65 characters'],
    ['dev 1', 'outside'],
    ['dév', 'outside'],
  ])('refuses the id %j with E_TELEMETRY_ID_INVALID saying it %s', (id, reason) => {
    expect(codeOf(() => assertValidId('device', id))).toBe('E_TELEMETRY_ID_INVALID');
    expect(() => assertValidId('device', id)).toThrow(reason);
  });

  it('refuses a command id with a wildcard when building its result topic', () => {
    expect(codeOf(() => deviceTopics('f', 'd').result('#'))).toBe('E_TELEMETRY_ID_INVALID');
  });

  it('tells a topic inside the device subtree from one outside or with a wildcard', () => {
    const t = deviceTopics('f', 'd');
    expect(isInDeviceSubtree(t, 'edgevolve/v1/f/d/samples')).toBe(true);
    expect(isInDeviceSubtree(t, 'edgevolve/v1/f/d2/samples')).toBe(false);
    expect(isInDeviceSubtree(t, 'edgevolve/v1/f/d')).toBe(false);
    expect(isInDeviceSubtree(t, 'edgevolve/v1/f/d/#')).toBe(false);
  });
});

describe('telemetry payload schemas', () => {
  it('require the version field v = 1', () => {
    const birth = {
      v: 1, status: 'online', device: 'd', fleet: 'f', ts: 1, session: 1, protocol: '5', agentVersion: '0.1.0',
      hardware: { arch: 'arm64' }, model: null, budgets: {},
    };
    expect(birthSchema.safeParse(birth).success).toBe(true);
    expect(birthSchema.safeParse({ ...birth, v: 2 }).success).toBe(false);
    const event = { v: 1, kind: 'event', device: 'd', stream: 's', seq: 1, ts: 1, type: 'deploy', severity: 'info', message: 'm', data: {} };
    expect(eventSchema.safeParse(event).success).toBe(true);
    expect(eventSchema.safeParse({ ...event, type: 'nonsense' }).success).toBe(false);
    expect(telemetryPayloadSchema.safeParse({ v: 1, batch: [] }).success).toBe(false);
  });

  it('render as JSON Schema for the README', () => {
    const schemas = payloadJsonSchemas();
    expect(Object.keys(schemas)).toEqual(['state', 'telemetry', 'events']);
    expect(JSON.stringify(schemas.events)).toContain('"seq"');
  });
});
