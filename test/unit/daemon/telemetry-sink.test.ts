import { describe, expect, it } from 'vitest';
import { telemetryEventSink, type DaemonEvent, type LocalOptimizeEvent } from '../../../src/daemon/index.ts';
import { eventSchema, PAYLOAD_VERSION } from '../../../src/telemetry/schemas.ts';

const built: LocalOptimizeEvent = {
  model: 'm',
  trigger: 'rollback',
  outcome: 'built',
  parent: '1.0.0/fp32',
  method: 'int8-dynamic',
  variant: 'opt-int8-dynamic-1a2b3c4d',
  metrics: { latency_ms_p95: 0.2, size_bytes: 250_000 },
  cached: false,
  reason: 'meets every budget',
};

function mirrored(fields: LocalOptimizeEvent): { type: string; severity: string; message: string; data: Record<string, unknown> } {
  const sent: { type: string; severity: string; message: string; data: Record<string, unknown> }[] = [];
  telemetryEventSink({ event: (type, severity, message, data = {}) => sent.push({ type, severity, message, data }) }).emit({ kind: 'local-optimize', at: 1, fields });
  expect(sent).toHaveLength(1);
  return sent[0]!;
}

describe('local-optimize events in telemetry', () => {
  it('go out as their own event type with every field as data, in a payload the event schema accepts', () => {
    const event = mirrored(built);
    expect(event).toMatchObject({ type: 'local-optimize', severity: 'info', data: { ...built } });
    expect(event.message).toBe('m on-device optimization from 1.0.0/fp32 (rollback): built opt-int8-dynamic-1a2b3c4d (int8-dynamic): meets every budget');
    const payload = { v: PAYLOAD_VERSION, device: 'dev1', stream: 's', seq: 1, ts: 1, kind: 'event', ...event };
    expect(eventSchema.safeParse(payload).success).toBe(true);
  });
  it('say failures as errors and no candidate as a warning', () => {
    expect(mirrored({ ...built, outcome: 'failed', method: null, variant: null, reason: 'E_DATA_SET_INVALID: no data' })).toMatchObject({ severity: 'error', message: expect.stringContaining('(rollback): failed: E_DATA_SET_INVALID') as unknown });
    expect(mirrored({ ...built, outcome: 'no-candidate', method: null, variant: null })).toMatchObject({ severity: 'warning' });
    expect(mirrored({ ...built, outcome: 'cancelled', method: null, variant: null })).toMatchObject({ severity: 'info' });
  });
});

describe('deployment and start-up warnings in telemetry', () => {
  const sent = (event: DaemonEvent): { type: string; severity: string; message: string; data: Record<string, unknown> }[] => {
    const out: { type: string; severity: string; message: string; data: Record<string, unknown> }[] = [];
    telemetryEventSink({ event: (type, severity, message, data = {}) => out.push({ type, severity, message, data }) }).emit(event);
    return out;
  };

  it('a memory-limit mismatch goes out as a warning with the operator\'s message and the limits as data, in a payload the schema accepts', () => {
    const fields = { configured: '512M', expectedBytes: 512 * 1024 ** 2, actualBytes: null, cgroup: '/system.slice/edgevolve.service', message: 'service.memoryMax is 512M (512 MiB) but the cgroup /system.slice/edgevolve.service has memory.max no limit: run scripts/install.sh again to apply the configured limit' };
    const [event] = sent({ kind: 'memory-limit-mismatch', at: 1, fields });
    expect(event).toEqual({ type: 'error', severity: 'warning', message: fields.message, data: fields });
    expect(eventSchema.safeParse({ v: PAYLOAD_VERSION, device: 'dev1', stream: 's', seq: 1, ts: 1, kind: 'event', ...event }).success).toBe(true);
  });

  it('a skipped shadow and a rollback carry what an operator needs: the action, and the exact variants by digest', () => {
    expect(sent({ kind: 'shadow-skipped', at: 1, fields: { model: 'm', version: '2.0.0', variant: 'fp32', live: '1.0.0/fp32', reason: 'no shadow: no traffic', action: 'trial' } })).toMatchObject([
      { type: 'deploy', severity: 'warning', message: 'm 2.0.0/fp32 not shadowed (trial): no shadow: no traffic' },
    ]);
    const rolledBack = { model: 'm', from: '2.0.0/fp32', fromManifest: 'sha256:aa', to: '1.0.0/opt-int8-dynamic-1a2b3c4d', toManifest: 'sha256:bb', reason: 'health gate failed' };
    expect(sent({ kind: 'deploy-rolled-back', at: 1, fields: rolledBack })).toMatchObject([{ type: 'rollback', data: { fromManifest: 'sha256:aa', toManifest: 'sha256:bb' } }]);
  });
});
