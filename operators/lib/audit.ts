// The audit trail of alerting: the AuditEvent records that alert, route, escalate and incident put on their
// `audit` outputs (sinks gather them into one topic, which `vigil report` reads).
import type { OperatorContext, RecordSchema, StreamRecord } from '../../kernel/operator.ts';
import type { ConfigIssue } from '../../kernel/spec.ts';

export const AUDIT_SCHEMA = 'vigil.alerting.AuditEvent';
export const AUDIT_OUTPUT = 'audit';

export type AuditKind = 'PENDING' | 'FIRING' | 'RESOLVED' | 'NOTIFIED' | 'SILENCED' | 'INHIBITED' | 'ACKED' | 'ESCALATED' | 'FEEDBACK' | 'INCIDENT_OPENED' | 'INCIDENT_UPDATED' | 'INCIDENT_MERGED' | 'INCIDENT_CLOSED';

/** What an event says about its alert: the fields of the Alert record it copies. */
export interface AuditedAlert {
  id: string;
  rule?: unknown;
  entity?: unknown;
  category?: unknown;
  severity?: unknown;
  priority?: unknown;
  starts_at?: unknown;
}

export interface AuditDetail {
  who: string;
  why: string;
  group_key?: string;
  receiver?: string;
  level?: number;
}

/** The AuditEvent schema from the catalog, or an issue saying it is missing. */
export function auditSchema(resolve: (fullname: string) => RecordSchema | undefined, issues: ConfigIssue[]): RecordSchema | undefined {
  const s = resolve(AUDIT_SCHEMA);
  if (s === undefined) issues.push({ path: [], message: `the schema ${AUDIT_SCHEMA} is not known (schemas/audit.avsc)` });
  return s;
}

/**
 * Emits one AuditEvent on the `audit` output. Its id is made of what identifies the event (kind,
 * alert, time, receiver, level), so an event emitted again after a crash has the same id.
 */
export function audit(ctx: OperatorContext, kind: AuditKind, alert: AuditedAlert, at: number, d: AuditDetail): void {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const record: StreamRecord = {
    key: alert.id === '' ? (d.group_key ?? null) : alert.id,
    value: {
      id: [kind, alert.id, at, d.group_key ?? '', d.receiver ?? '', d.level ?? ''].join('|'),
      timestamp: at,
      event: kind,
      alert_id: alert.id,
      group_key: d.group_key ?? null,
      rule: str(alert.rule),
      entity: str(alert.entity),
      category: str(alert.category),
      severity: str(alert.severity),
      priority: typeof alert.priority === 'number' ? alert.priority : 3,
      who: d.who,
      why: d.why,
      receiver: d.receiver ?? null,
      level: d.level ?? null,
      started_at: typeof alert.starts_at === 'number' ? alert.starts_at : null,
    },
    timestamp: at,
  };
  ctx.emit(AUDIT_OUTPUT, record);
}
