// escalate: on-call escalation of notification groups, with acknowledgements. Each group's first
// firing notification pages escalation level 1; a group nobody acknowledges within a level's
// timeout pages the next level; an emergency (priority 1) pages every level at once; a resolved
// group stops escalating. Acknowledgements come from the ack topic (`vigil ack`, the /ack
// endpoint); those marked as noise count per alert series, for the alerting rules' feedback.
// State per group in a changelogged store; deadlines as persisted timers, so an escalation due
// while the instance was down happens after it restarts.
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord, Timer } from '../kernel/operator.ts';
import { DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import type { AvroType } from '../kernel/schema.ts';
import { schemaFullname } from '../kernel/avro-types.ts';
import { formatDuration } from '../kernel/spec.ts';
import { NOTIFICATION_SCHEMA } from './route.ts';
import { AUDIT_OUTPUT, audit, auditSchema } from './lib/audit.ts';
import type { AuditKind } from './lib/audit.ts';

const ACK_SCHEMA = 'vigil.alerting.Ack';
const FEEDBACK_SCHEMA = 'vigil.alerting.Feedback';
const FEEDBACK_OUTPUT = 'feedback';
const ACKS = 'acks';
const NOTIFICATIONS = 'in';

export interface EscalateConfig {
  levels: Array<{ receiver: string; timeout: number }>;
  emergency_priority: number;
  ack_url?: string;
  retain: number;
  wall_clock: boolean;
}

type Notification = Record<string, unknown> & { id: string; timestamp: number; status: string; group_key: string; alerts: Array<Record<string, unknown> & { id: string }>; common_annotations: Record<string, string> };

interface Escalation {
  group_key: string;
  latest: Notification;
  /** The highest level paged (1...). */
  level: number;
  acked_by: string | null;
  acked_at: number | null;
  /** When the next level is due (null: not escalating: acknowledged, resolved or at the last level). */
  next_at: number | null;
  /** When the group resolved; the escalation is kept `retain` for late acknowledgements. */
  resolved_at: number | null;
}

function escalationSchema(notification: AvroType): AvroType {
  return {
    type: 'record',
    name: 'Escalation',
    namespace: 'vigil.state',
    fields: [
      { name: 'group_key', type: 'string' },
      { name: 'latest', type: notification },
      { name: 'level', type: 'int' },
      { name: 'acked_by', type: ['null', 'string'] },
      { name: 'acked_at', type: ['null', 'long'] },
      { name: 'next_at', type: ['null', 'long'] },
      { name: 'resolved_at', type: ['null', 'long'] },
    ],
  };
}

const DESCRIPTION = `
On-call escalation of the notifications of a \`route\` operator, with acknowledgements: what Alertmanager leaves to
paging services. Inputs: \`in\`, \`vigil.alerting.Notification\` records (a route's output, or one of its receivers'), and
\`acks\`, \`vigil.alerting.Ack\` records (the ack topic that \`vigil ack\` and the running instance's \`/ack\` endpoint write).

**Escalation.** A group's first firing notification pages \`levels[0]\`: it goes out on that level's receiver output.
If nobody acknowledges the group within that level's \`timeout\`, the latest notification pages the next level (reason
"escalated to level 2: not acknowledged within 15m"), and so on to the last level. A group whose firing alerts include
one of priority \`emergency_priority\` (1) or more urgent pages every level at once. Later notifications of the group
(new alerts, repeats, resolved) go to every level paged so far; a resolved group stops escalating. Each page has the
notification's id with \`@<level>\` appended (an idempotency key per level) and, with \`ack_url\`, an \`ack_url\` common
annotation linking to the \`/ack\` endpoint for the group. Deadlines are timers kept with the state, in event time and
(with \`wall_clock\`) in wall-clock time: an escalation that fell due while the instance was down happens after it
restarts, and the schedule stays the one it was (level 3 is due at level 2's time + its timeout).

**Acknowledgement.** An Ack whose \`target\` is the group's id (the notifications' key), its group key or the id of one
of its alerts acknowledges the group: its escalation stops. Acks are kept \`retain\` after a group resolved, so an alert
can be acknowledged (as noise, say) after the fact. An Ack of kind NOISE also counts, for every alert of the group (or
for the alert its target names), one more acknowledgement as noise: a \`vigil.alerting.Feedback\` record with the count
goes out on the \`feedback\` output (a compacted topic, read as a table by alerting rules with \`feedback\`); REVERT sets
the count back to 0.

**Audit.** The \`audit\` output has a \`vigil.alerting.AuditEvent\` per alert for every page (NOTIFIED at level 1 or for
an update, ESCALATED at a new level, with the receiver and level), acknowledgement (ACKED, who and their comment) and
feedback change (FEEDBACK). All notifications and acks meet in one task (both inputs are gathered).
`.trim();

export const escalateOperator: OperatorDefinition<EscalateConfig> = {
  type: 'escalate',
  category: 'response',
  summary: 'On-call escalation of notification groups: level after level until acknowledged, every level at once for an emergency; acknowledgements and noise feedback.',
  description: DESCRIPTION,
  inputs: [
    { name: NOTIFICATIONS, description: '`vigil.alerting.Notification` records (a route operator\'s output).' },
    { name: ACKS, description: '`vigil.alerting.Ack` records (the ack topic).' },
  ],
  outputs: [
    { name: DEFAULT_OUTPUT, description: 'Every page (Notification records, the receiver set to the level\'s).' },
    { name: AUDIT_OUTPUT, description: '`vigil.alerting.AuditEvent` records: NOTIFIED, ESCALATED, ACKED, FEEDBACK.' },
    { name: FEEDBACK_OUTPUT, description: '`vigil.alerting.Feedback` records: acknowledgements as noise per alert, keyed by alert id.' },
    { name: '<receiver>', description: 'One output per level receiver, with its pages only.' },
  ],
  config: {
    levels: {
      kind: 'array',
      min: 1,
      max: 10,
      items: {
        kind: 'object',
        description: 'An escalation level.',
        fields: {
          receiver: { kind: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,99}$', description: 'The output its pages go to (a sink delivers them).', examples: ['primary'] },
          timeout: { kind: 'duration', default: '15m', min: 1, description: 'How long this level has to acknowledge before the next level is paged.' },
        },
      },
      description: 'The escalation levels, in order.',
    },
    emergency_priority: { kind: 'integer', default: 1, min: 0, max: 5, description: 'Alerts of this priority or more urgent (lower) page every level at once (0: never).' },
    ack_url: { kind: 'string', optional: true, freeText: true, pattern: '^https?://[^\\s]+$', description: "The running instance's base URL as receivers reach it: pages get an `ack_url` annotation, <ack_url>/ack/<group id>.", examples: ['http://vigil.example.com:9464'] },
    retain: { kind: 'duration', default: '24h', min: 1, description: 'How long a resolved group is kept for late acknowledgements (noise feedback).' },
    wall_clock: { kind: 'boolean', default: true, description: 'Also escalate when the wall clock passes a deadline. Turn off for backtests on recorded data.' },
  },
  examples: [
    {
      title: 'Primary on-call, then secondary after 10 minutes, then the manager; critical high-impact alerts page everyone',
      yaml: `sources:
  - name: alerts
    topic: alerts
    schema: vigil.alerting.Alert
    timestamp: timestamp
  - name: acks
    topic: alerting.acks
    schema: vigil.alerting.Ack
    timestamp: timestamp
operators:
  - name: notify
    type: route
    from: alerts
    route: { receiver: oncall, group_by: [alertname, host] }
  - name: oncall
    type: escalate
    from: { in: notify.oncall, acks: acks }
    levels:
      - { receiver: primary, timeout: 10m }
      - { receiver: secondary, timeout: 20m }
      - { receiver: manager }
    ack_url: http://vigil.example.com:9464
sinks:
  - { name: primary, from: oncall.primary, topic: pages.primary }
  - { name: secondary, from: oncall.secondary, topic: pages.secondary }
  - { name: manager, from: oncall.manager, topic: pages.manager }
  - { name: audit, from: oncall.audit, topic: alerting.audit }
  - { name: feedback, from: oncall.feedback, topic: alerting.feedback }
`,
    },
  ],
  compile(config, ctx) {
    const [input, acks] = ctx.inputs as [(typeof ctx.inputs)[number], (typeof ctx.inputs)[number]];
    const issues: ConfigIssue[] = [];
    if (schemaFullname(input.schema) !== NOTIFICATION_SCHEMA) issues.push({ path: [], message: `escalate's input 'in' reads ${NOTIFICATION_SCHEMA} records (a route operator's output), but it has ${schemaFullname(input.schema)}` });
    if (schemaFullname(acks.schema) !== ACK_SCHEMA) issues.push({ path: [], message: `escalate's input 'acks' reads ${ACK_SCHEMA} records, but it has ${schemaFullname(acks.schema)}` });
    const receivers: string[] = [];
    config.levels.forEach((l, i) => {
      if (l.receiver === DEFAULT_OUTPUT || l.receiver === AUDIT_OUTPUT || l.receiver === FEEDBACK_OUTPUT) issues.push({ path: ['levels', i, 'receiver'], message: `'${l.receiver}' is an output of its own: name the receiver otherwise` });
      else if (!receivers.includes(l.receiver)) receivers.push(l.receiver);
    });
    const auditOut = auditSchema(ctx.resolveSchema, issues);
    const feedbackOut = ctx.resolveSchema(FEEDBACK_SCHEMA);
    if (feedbackOut === undefined) issues.push({ path: [], message: `the schema ${FEEDBACK_SCHEMA} is not known (schemas/feedback.avsc)` });
    if (issues.length > 0 || auditOut === undefined || feedbackOut === undefined) return refused(issues);
    const settings: Settings = { ...config, name: ctx.name, ackUrl: config.ack_url?.replace(/\/+$/, '') };
    return compiled({
      outputs: [
        { name: DEFAULT_OUTPUT, schema: input.schema },
        { name: AUDIT_OUTPUT, schema: auditOut },
        { name: FEEDBACK_OUTPUT, schema: feedbackOut, keyFields: ['id'] },
        ...receivers.map((name) => ({ name, schema: input.schema })),
      ],
      gather: [NOTIFICATIONS, ACKS],
      stores: [
        { name: 'escalations', kind: 'kv', value: escalationSchema(input.schema as unknown as AvroType) },
        { name: 'noise', kind: 'kv', value: 'int' },
      ],
      create: () => new EscalateInstance(settings),
    });
  },
};

interface Settings extends EscalateConfig {
  name: string;
  ackUrl: string | undefined;
}

/** The most urgent priority among a notification's firing alerts (99 when none fires). */
function urgency(n: Notification): number {
  let p = 99;
  for (const a of n.alerts) if (a.status !== 'RESOLVED' && typeof a.priority === 'number') p = Math.min(p, a.priority);
  return p;
}

class EscalateInstance implements OperatorInstance {
  private escalations!: KeyValueStore<Escalation>;
  private noise!: KeyValueStore<number>;

  constructor(private readonly s: Settings) {}

  open(ctx: OperatorContext): void {
    this.escalations = ctx.kv<Escalation>('escalations');
    this.noise = ctx.kv<number>('noise');
    ctx.gauge('escalations', this.escalations.size);
  }

  process(record: StreamRecord, ctx: OperatorContext, input: string): void {
    if (input === ACKS) this.ack(record.value, record.timestamp, ctx);
    else this.notification(record, ctx);
    ctx.gauge('escalations', this.escalations.size);
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const gid = timer.key;
    const e = this.escalations.get(gid);
    if (e === undefined) return;
    if (e.resolved_at !== null) {
      if (e.resolved_at + this.s.retain <= timer.at) this.escalations.delete(gid);
    } else if (e.next_at !== null && e.next_at <= timer.at && e.acked_by === null) {
      const timeout = this.s.levels[e.level - 1]!.timeout;
      const level = e.level + 1;
      const at = e.next_at;
      this.page(gid, e.latest, level, `escalated to level ${level}: not acknowledged within ${formatDuration(timeout)}`, 'ESCALATED', at, ctx);
      ctx.count('escalated');
      this.save(gid, { ...e, level, next_at: level < this.s.levels.length ? at + this.s.levels[level - 1]!.timeout : null }, ctx);
    }
    ctx.gauge('escalations', this.escalations.size);
  }

  private notification(record: StreamRecord, ctx: OperatorContext): void {
    const n = record.value as Notification;
    const t = record.timestamp;
    const gid = typeof record.key === 'string' && record.key !== '' ? record.key : n.group_key;
    let e = this.escalations.get(gid);
    if (e !== undefined && e.resolved_at !== null) e = undefined; // a group firing again escalates afresh
    if (e === undefined) {
      if (n.status === 'RESOLVED') return; // nothing was paged
      const all = this.s.emergency_priority > 0 && urgency(n) <= this.s.emergency_priority;
      const level = all ? this.s.levels.length : 1;
      for (let l = 1; l <= level; l++) this.page(gid, n, l, l === 1 ? String(n.reason) : `priority ${urgency(n)}: every level at once`, l === 1 ? 'NOTIFIED' : 'ESCALATED', t, ctx);
      ctx.count(all ? 'emergencies' : 'escalations');
      this.save(gid, { group_key: n.group_key, latest: n, level, acked_by: null, acked_at: null, next_at: level < this.s.levels.length ? t + this.s.levels[0]!.timeout : null, resolved_at: null }, ctx);
      return;
    }
    for (let l = 1; l <= e.level; l++) this.page(gid, n, l, String(n.reason), 'NOTIFIED', t, ctx);
    if (n.status === 'RESOLVED') {
      this.save(gid, { ...e, latest: n, next_at: null, resolved_at: t }, ctx);
      return;
    }
    let next: Escalation = { ...e, latest: n };
    if (e.acked_by === null && this.s.emergency_priority > 0 && urgency(n) <= this.s.emergency_priority && e.level < this.s.levels.length) {
      for (let l = e.level + 1; l <= this.s.levels.length; l++) this.page(gid, n, l, `priority ${urgency(n)}: every level at once`, 'ESCALATED', t, ctx);
      ctx.count('emergencies');
      next = { ...next, level: this.s.levels.length, next_at: null };
    }
    this.save(gid, next, ctx);
  }

  private ack(a: Record<string, unknown>, t: number, ctx: OperatorContext): void {
    const target = String(a.target);
    const by = String(a.by);
    const comment = typeof a.comment === 'string' ? a.comment : '';
    const kind = String(a.kind ?? 'ACK');
    const why = comment !== '' ? comment : kind === 'NOISE' ? 'acknowledged as noise' : kind === 'REVERT' ? 'noise feedback reverted' : 'acknowledged';
    const alertIds = new Set<string>();
    let matched = false;
    for (const [gid, e] of this.escalations.entries()) {
      const ids = e.latest.alerts.map((x) => x.id);
      if (gid !== target && e.group_key !== target && !ids.includes(target)) continue;
      matched = true;
      const whole = gid === target || e.group_key === target;
      for (const x of e.latest.alerts) {
        if (!whole && x.id !== target) continue;
        alertIds.add(x.id);
        audit(ctx, 'ACKED', x, t, { who: by, why: `${why}${kind === 'ACK' ? '' : ` (${kind.toLowerCase()})`}`, group_key: e.group_key });
      }
      if (e.acked_by === null && e.resolved_at === null && kind !== 'REVERT') {
        ctx.count('acked');
        this.save(gid, { ...e, acked_by: by, acked_at: t, next_at: null }, ctx);
      }
    }
    if (!matched) {
      ctx.count('ack-unmatched');
      alertIds.add(target);
      audit(ctx, 'ACKED', { id: target }, t, { who: by, why: `${why} (nothing active has this id)` });
    }
    if (kind === 'NOISE' || kind === 'REVERT') {
      for (const id of alertIds) {
        const rule = this.ruleOf(id);
        const count = kind === 'NOISE' ? (this.noise.get(id) ?? 0) + 1 : 0;
        if (count === 0) this.noise.delete(id);
        else this.noise.put(id, count);
        ctx.emit(FEEDBACK_OUTPUT, { key: id, value: { id, timestamp: t, rule, noise_acks: count, by, comment }, timestamp: t });
        audit(ctx, 'FEEDBACK', { id, rule }, t, { who: by, why: kind === 'NOISE' ? `acknowledged as noise ${count} time(s): the rule's threshold for this series rises where it has feedback` : 'noise feedback reverted: the threshold is back to the rule\'s' });
      }
    }
  }

  private ruleOf(id: string): string {
    for (const [, e] of this.escalations.entries()) for (const a of e.latest.alerts) if (a.id === id && typeof a.rule === 'string') return a.rule;
    return '';
  }

  /** Sends a notification to one level's receiver, and audits it per alert. */
  private page(gid: string, n: Notification, level: number, reason: string, kind: AuditKind, at: number, ctx: OperatorContext): void {
    const receiver = this.s.levels[level - 1]!.receiver;
    const annotations = this.s.ackUrl === undefined ? n.common_annotations : { ...n.common_annotations, ack_url: `${this.s.ackUrl}/ack/${encodeURIComponent(gid)}` };
    const page: StreamRecord = { key: gid, value: { ...n, id: `${n.id}@${level}`, timestamp: at, receiver, reason, common_annotations: annotations }, timestamp: at };
    ctx.emit(DEFAULT_OUTPUT, page);
    ctx.emit(receiver, page);
    for (const a of n.alerts) audit(ctx, kind, a, at, { who: `escalate:${this.s.name}`, why: reason, group_key: n.group_key, receiver, level });
  }

  private save(gid: string, e: Escalation, ctx: OperatorContext): void {
    this.escalations.put(gid, e);
    const at = e.resolved_at !== null ? e.resolved_at + this.s.retain : e.next_at;
    if (at === null) {
      ctx.cancel('event', gid);
      ctx.cancel('wall', gid);
      return;
    }
    ctx.schedule({ kind: 'event', at, key: gid });
    if (this.s.wall_clock) ctx.schedule({ kind: 'wall', at, key: gid });
  }
}
