/** Daemon events into the telemetry outbox (durable, sent when a broker is reachable). */
import type { EventType, TelemetryEvent } from '../telemetry/index.ts';
import type { DaemonEvent, EventSink } from './events.ts';

type Severity = TelemetryEvent['severity'];

/** How each daemon event is reported upstream; undefined: kept local (log, status). */
function classify(event: DaemonEvent): { type: EventType; severity: Severity; message: string } | undefined {
  const f = event.fields as Readonly<Record<string, unknown>>;
  switch (event.kind) {
    case 'deploy-started':
      return { type: 'deploy', severity: 'info', message: `${String(f.model)} ${String(f.version)}/${String(f.variant)} on trial (${String(f.reason)})` };
    case 'deploy-committed':
      return { type: 'deploy', severity: 'info', message: `${String(f.model)} ${String(f.version)}/${String(f.variant)} passed its health gate: ${String(f.gate)}` };
    case 'deploy-rolled-back':
      return { type: 'rollback', severity: 'warning', message: `${String(f.model)} rolled back from ${String(f.from)} to ${String(f.to)}: ${String(f.reason)}` };
    case 'deploy-aborted':
      return { type: 'rollback', severity: 'error', message: `${String(f.model)} ${String(f.version)} aborted: ${String(f.reason)}` };
    case 'shadow-promoted':
      return { type: 'deploy', severity: 'info', message: `${String(f.model)} ${String(f.version)}/${String(f.variant)} passed its shadow: ${String(f.reason)}` };
    case 'shadow-rejected':
      return { type: 'rollback', severity: 'warning', message: `${String(f.model)} ${String(f.version)}/${String(f.variant)} rejected in shadow, ${String(f.live)} keeps serving: ${String(f.reason)}` };
    case 'shadow-timeout':
      return { type: 'deploy', severity: 'warning', message: `${String(f.model)} ${String(f.version)}: only ${String(f.mirrored)} of ${String(f.minRequests)} requests mirrored within ${String(f.maxDurationMs)} ms (${String(f.action)})` };
    case 'shadow-skipped':
      return { type: 'deploy', severity: 'warning', message: `${String(f.model)} ${String(f.version)}/${String(f.variant)} not shadowed (${String(f.action)}): ${String(f.reason)}` };
    case 'memory-limit-mismatch':
      // Reported as an error-type warning: a unit whose MemoryMax is not the configured one needs an operator (install.sh again).
      return { type: 'error', severity: 'warning', message: String(f.message) };
    case 'budget-breach': {
      const b = (event as DaemonEvent<'budget-breach'>).fields;
      const over: string[] = [];
      if (b.p95Ms !== null) over.push(`p95 ${b.p95Ms} ms over its ${b.budgetMs} ms budget`);
      if (b.cause !== 'latency') over.push(`memory tight against its ${b.memoryBudgetMb} MB budget (${b.memoryAvailableMb} MB available, ${b.memoryResidentMb} MB resident)`);
      const throttled = b.throttled === null ? 'unknown' : b.throttled ? 'yes' : 'no';
      return { type: 'budget-violation', severity: 'warning', message: `${b.model} ${over.join(', ')}; CPU throttled: ${throttled}` };
    }
    case 'replan':
      return { type: 'budget-violation', severity: 'info', message: `${String(f.model)} re-planned from ${String(f.from)} to ${String(f.to)}: ${String(f.reason)}` };
    case 'local-optimize': {
      const severity: Severity = f.outcome === 'failed' ? 'error' : f.outcome === 'no-candidate' ? 'warning' : 'info';
      const what = typeof f.variant === 'string' ? `${String(f.outcome)} ${f.variant} (${String(f.method)})` : String(f.outcome);
      return { type: 'local-optimize', severity, message: `${String(f.model)} on-device optimization from ${String(f.parent)} (${String(f.trigger)}): ${what}: ${String(f.reason)}` };
    }
    case 'runtime-error':
      return { type: 'error', severity: 'error', message: `${String(f.where)}: ${String(f.code)}: ${String(f.message)}` };
    case 'shadow-started':
    case 'daemon-started':
    case 'daemon-stopping':
    case 'config-reloaded':
      return undefined;
  }
}

export function telemetryEventSink(telemetry: { event(type: EventType, severity: Severity, message: string, data?: Record<string, unknown>): unknown }): EventSink {
  return {
    emit: (event) => {
      const report = classify(event);
      if (report !== undefined) telemetry.event(report.type, report.severity, report.message, { ...event.fields });
    },
  };
}
