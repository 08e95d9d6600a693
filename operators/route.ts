// route: Alertmanager's dispatcher on a Kafka stream of alerts. A routing tree (matchers,
// `continue`) picks the routes of each alert; each route groups its alerts by labels and sends one
// notification per group, after group_wait, then at most every group_interval when the group
// changed, and again every repeat_interval while it fires; inhibition rules and silences (a table)
// mute alerts; the notification log dedupes as Alertmanager's does. Notifications go to the default
// output and to one output per receiver (sinks deliver them: topics, webhooks, PagerDuty...).
import { createHash } from 'node:crypto';
import type { ConfigIssue, FieldSpec, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, RecordSchema, StreamRecord, TableView, Timer } from '../kernel/operator.ts';
import { DEFAULT_INPUT, DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import type { AvroType } from '../kernel/schema.ts';
import { recordSchemaOf, recordTy, schemaFullname, T_INT, T_LONG, T_STRING } from '../kernel/avro-types.ts';
import type { Ty } from '../kernel/avro-types.ts';
import { badLabelName } from '../kernel/labels.ts';
import type { LabelSet } from '../kernel/labels.ts';
import { alertAnnotations, routingLabels } from '../kernel/labels.ts';
import { formatLabels, formatMatchers, matchesAll, parseMatcher } from './lib/matchers.ts';
import type { Matcher } from './lib/matchers.ts';
import { unknownTable } from './lib/fields.ts';
import { AUDIT_OUTPUT, audit, auditSchema } from './lib/audit.ts';

const ALERT_SCHEMA = 'vigil.alerting.Alert';
const SILENCE_SCHEMA = 'vigil.alerting.Silence';
export const NOTIFICATION_SCHEMA = 'vigil.alerting.Notification';
/** How deep the routing tree may nest below the root (the config spec is finite). */
const MAX_DEPTH = 4;

interface RouteConfig {
  receiver?: string;
  matchers?: string[];
  continue: boolean;
  group_by?: string[];
  group_wait?: number;
  group_interval?: number;
  repeat_interval?: number;
  routes?: RouteConfig[];
}

export interface RouteOperatorConfig {
  route: RouteConfig;
  inhibit_rules?: Array<{ source_matchers: string[]; target_matchers: string[]; equal?: string[] }>;
  silences?: string;
  send_resolved: boolean;
  max_alerts: number;
  wall_clock: boolean;
}

/** A node of the routing tree, with what it inherits resolved. */
interface RouteNode {
  index: number;
  matchers: Matcher[];
  receiver: string;
  /** Label names to group by; 'all' for `...`. */
  groupBy: string[] | 'all';
  groupWait: number;
  groupInterval: number;
  repeatInterval: number;
  continue: boolean;
  children: RouteNode[];
  /** Alertmanager's route key: `{}` for the root, the parent's key + `/` + the matchers below it. */
  key: string;
}

interface InhibitRule {
  source: Matcher[];
  target: Matcher[];
  equal: string[];
}

type Alert = Record<string, unknown> & { id: string; timestamp: number; labels: LabelSet; status: string };

/** An aggregation group of one route, with its notification log. */
interface GroupState {
  route: number;
  group_key: string;
  group_labels: LabelSet;
  /** The group's alerts by id: their latest record. */
  alerts: Record<string, Alert>;
  next_flush: number;
  sequence: number;
  /** The notification log: when the group was last notified, and which alerts were firing and resolved then. */
  last_notify: number | null;
  notified_firing: string[];
  notified_resolved: string[];
  /** Alerts muted at the latest flush (audited when they become muted). */
  muted: string[];
}

function groupSchema(alert: RecordSchema): AvroType {
  return {
    type: 'record',
    name: 'RouteGroup',
    namespace: 'vigil.state',
    fields: [
      { name: 'route', type: 'int' },
      { name: 'group_key', type: 'string' },
      { name: 'group_labels', type: { type: 'map', values: 'string' } },
      { name: 'alerts', type: { type: 'map', values: alert as unknown as AvroType } },
      { name: 'next_flush', type: 'long' },
      { name: 'sequence', type: 'long' },
      { name: 'last_notify', type: ['null', 'long'] },
      { name: 'notified_firing', type: { type: 'array', items: 'string' } },
      { name: 'notified_resolved', type: { type: 'array', items: 'string' } },
      { name: 'muted', type: { type: 'array', items: 'string' }, default: [] },
    ],
  };
}

const FIRING_STATE: AvroType = { type: 'map', values: 'string' };

function routeFields(depth: number): Record<string, FieldSpec> {
  const fields: Record<string, FieldSpec> = {
    receiver: { kind: 'string', optional: true, pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,99}$', description: 'Where its notifications go: a named output of the operator. Default: the parent route\'s (the root must set it).', examples: ['pager'] },
    matchers: { kind: 'array', optional: true, items: { kind: 'string', freeText: true, description: 'name="value", name!="value", name=~"regex" or name!~"regex".' }, description: 'Matchers an alert\'s labels must all satisfy to take this route (not on the root).', examples: [['severity="critical"', 'team=~"db|storage"']] },
    continue: { kind: 'boolean', default: false, description: 'After this route matched, keep trying its next siblings.' },
    group_by: { kind: 'array', optional: true, items: { kind: 'string', description: 'A label name, or `...` for all labels.' }, description: 'Labels whose values form a group. Default: the parent\'s (the root: none, one group).', examples: [['alertname', 'host']] },
    group_wait: { kind: 'duration', optional: true, description: 'How long a new group waits for more alerts before its first notification. Default: the parent\'s, 30s at the root.' },
    group_interval: { kind: 'duration', optional: true, min: 1, description: 'How long after a notification a group waits before notifying what changed. Default: the parent\'s, 5m at the root.' },
    repeat_interval: { kind: 'duration', optional: true, min: 1, description: 'How long after a notification an unchanged firing group is notified again. Default: the parent\'s, 4h at the root.' },
  };
  if (depth < MAX_DEPTH) fields.routes = { kind: 'array', optional: true, items: { kind: 'object', description: 'A child route.', fields: routeFields(depth + 1) }, description: 'Child routes, tried in order; the first that matches takes the alert unless it has `continue`.' };
  return fields;
}

const DESCRIPTION = `
Alertmanager's routing, grouping, inhibition, silencing and deduplication, on a stream of \`vigil.alerting.Alert\`
records (the \`alert\` operator's FIRING and RESOLVED transitions, or any alert stream). Its configuration follows
Alertmanager's \`route\` and \`inhibit_rules\`.

**Routing.** An alert's labels (its \`labels\`, plus \`alertname\` (the rule), \`severity\` and \`category\` in lower case,
\`priority\` and \`entity\` where the labels lack them) walk the tree from the root: the first child route whose
\`matchers\` all match takes the alert (and the next siblings too when it has \`continue\`), recursively; an alert no
child takes stays at the parent. A label an alert lacks matches as the empty string; regular expressions are anchored.

**Grouping and timing.** Each route groups its alerts by the values of \`group_by\` (\`...\`: all labels). A new group
waits \`group_wait\` (an alert that started firing longer ago is notified at once), then sends one notification with
all its alerts; afterwards it is looked at every \`group_interval\`: a new firing alert, or a resolved one, gives a
notification; an unchanged firing group is notified again once \`repeat_interval\` has passed. Resolved alerts leave the
group once notified, and an empty group ends. Defaults are Alertmanager's: 30s, 5m, 4h. Deduplication follows
Alertmanager's notification log: the same alert firing again (a replay, a duplicate) does not notify, and a group
whose alerts all resolved sends one resolved notification.

**Muting.** An inhibition rule mutes an alert matching \`target_matchers\` while an alert matching \`source_matchers\`
fires with the same values of the \`equal\` labels (an alert that matches both is not muted by others that match both).
\`silences\` names a table of \`vigil.alerting.Silence\` rows (a compacted topic, written by \`vigil silence\`): an alert
matching every matcher of a silence is muted from \`starts_at\` until \`ends_at\`. Muted alerts are left out of
notifications, and when a silence ends the next notification of the group includes them. A silence whose matchers do
not parse is ignored and counted (\`silence-invalid\`).

**Output.** \`vigil.alerting.Notification\` records, one per group notification, as Alertmanager's webhook sends them:
\`receiver\`, \`status\` (FIRING while any alert fires), \`group_key\`, \`group_labels\`, \`common_labels\`,
\`common_annotations\`, \`alerts\` (firing first, at most \`max_alerts\`; \`truncated_alerts\` counts the rest), \`reason\`
(Alertmanager's notification reason: first notification, new alerts added, some alerts resolved, all alerts resolved,
repeat interval elapsed) and \`id\`,
an idempotency key unique per group and notification (a notification sent again after a crash has the same id, so a
receiver can dedupe). The default output has every notification; each receiver named in the tree is also an output
(\`from: <operator>.<receiver>\`) with only its own. All alerts meet in one task (the input is gathered).

**Audit.** The \`audit\` output has a \`vigil.alerting.AuditEvent\` per alert of every notification (NOTIFIED, with the
receiver and the reason), and one when an alert of a group becomes muted: SILENCED (\`who\` the silence's author, \`why\`
its comment and id) or INHIBITED (\`why\` the inhibiting alert).

**Time.** Timers run in event time (the alerts' transition times); with \`wall_clock\` (default on) a group is also
flushed when the wall clock passes its deadline, since alerts are sparse and the event time of a quiet stream does
not move. Turn it off for backtests on recorded data.
`.trim();

export const routeOperator: OperatorDefinition<RouteOperatorConfig> = {
  type: 'route',
  category: 'alerting',
  summary: "Alertmanager's routing tree, grouping timers, inhibition, silences and dedupe: one notification per group, to named receivers.",
  description: DESCRIPTION,
  outputs: [
    { name: DEFAULT_OUTPUT, description: '`vigil.alerting.Notification` records: every notification of every receiver.' },
    { name: AUDIT_OUTPUT, description: '`vigil.alerting.AuditEvent` records: NOTIFIED, SILENCED and INHIBITED, per alert.' },
    { name: '<receiver>', description: 'One output per receiver named in the routing tree, with its notifications only.' },
  ],
  config: {
    route: { kind: 'object', fields: routeFields(0), description: 'The routing tree\'s root: it takes every alert.' },
    inhibit_rules: {
      kind: 'array',
      optional: true,
      items: {
        kind: 'object',
        description: 'An inhibition rule.',
        fields: {
          source_matchers: { kind: 'array', min: 1, items: { kind: 'string', freeText: true, description: 'A matcher.' }, description: 'Matchers of the alerts that mute others while they fire.' },
          target_matchers: { kind: 'array', min: 1, items: { kind: 'string', freeText: true, description: 'A matcher.' }, description: 'Matchers of the alerts they mute.' },
          equal: { kind: 'array', optional: true, items: { kind: 'string', description: 'A label name.' }, description: 'Labels that must have equal values in the source and the target.' },
        },
      },
      description: 'Alerts that mute others while they fire (a host down mutes its services\' alerts).',
    },
    silences: { kind: 'string', optional: true, description: 'A table source of `vigil.alerting.Silence` rows.', examples: ['silences'] },
    send_resolved: { kind: 'boolean', default: true, description: 'Send notifications about resolved alerts.' },
    max_alerts: { kind: 'integer', default: 100, min: 1, max: 10_000, description: 'Alerts per notification at most; `truncated_alerts` counts the rest.' },
    wall_clock: { kind: 'boolean', default: true, description: 'Also flush groups when the wall clock passes their deadline. Turn off for backtests on recorded data.' },
  },
  examples: [
    {
      title: 'Critical alerts page, the rest go to chat; a host down mutes its other alerts; silences from a topic',
      yaml: `sources:
  - name: alerts
    topic: alerts
    schema: vigil.alerting.Alert
    timestamp: timestamp
  - name: silences
    topic: alerting.silences
    schema: vigil.alerting.Silence
    table: true
    key: [id]
operators:
  - name: notify
    type: route
    from: alerts
    route:
      receiver: chat
      group_by: [alertname, host]
      routes:
        - matchers: ['severity="critical"']
          receiver: pager
          group_wait: 10s
    inhibit_rules:
      - source_matchers: ['alertname="HostDown"']
        target_matchers: ['alertname!="HostDown"']
        equal: [host]
    silences: silences
sinks:
  - name: pages
    from: notify.pager
    topic: notifications.pager
  - name: chat
    from: notify.chat
    topic: notifications.chat
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const alertSchema = ctx.resolveSchema(ALERT_SCHEMA);
    if (schemaFullname(input.schema) !== ALERT_SCHEMA || alertSchema === undefined) {
      return refused([{ path: [], message: `route reads ${ALERT_SCHEMA} records, but its input has ${schemaFullname(input.schema)} (a map with schema: ${ALERT_SCHEMA} converts)` }]);
    }
    const matcherList = (srcs: string[] | undefined, path: (string | number)[]): Matcher[] => {
      const out: Matcher[] = [];
      (srcs ?? []).forEach((s, i) => {
        try {
          out.push(parseMatcher(s));
        } catch (e) {
          issues.push({ path: [...path, i], message: (e as Error).message });
        }
      });
      return out;
    };
    const labelNames = (names: string[] | undefined, path: (string | number)[], allowAll: boolean): void => {
      (names ?? []).forEach((n, i) => {
        if (allowAll && n === '...') return;
        const bad = badLabelName(n);
        if (bad !== undefined) issues.push({ path: [...path, i], message: bad });
      });
    };

    // The tree, flattened in depth-first order, with inherited settings resolved.
    const nodes: RouteNode[] = [];
    const receivers: string[] = [];
    const build = (rc: RouteConfig, parent: RouteNode | undefined, path: (string | number)[]): RouteNode => {
      const matchers = matcherList(rc.matchers, [...path, 'matchers']);
      if (parent === undefined && matchers.length > 0) issues.push({ path: [...path, 'matchers'], message: 'the root route takes every alert: it cannot have matchers' });
      if (parent === undefined && rc.continue) issues.push({ path: [...path, 'continue'], message: 'the root route cannot have continue' });
      const receiver = rc.receiver ?? parent?.receiver;
      if (receiver === undefined) issues.push({ path, message: 'the root route needs a receiver' });
      else if (receiver === DEFAULT_OUTPUT || receiver === AUDIT_OUTPUT) issues.push({ path: [...path, 'receiver'], message: `'${receiver}' is the output of every ${receiver === DEFAULT_OUTPUT ? 'notification' : 'audit event'}: name the receiver otherwise` });
      else if (!receivers.includes(receiver)) receivers.push(receiver);
      labelNames(rc.group_by, [...path, 'group_by'], true);
      if (rc.group_by?.includes('...') && rc.group_by.length > 1) issues.push({ path: [...path, 'group_by'], message: "'...' groups by all labels: list nothing else beside it" });
      const node: RouteNode = {
        index: nodes.length,
        matchers,
        receiver: receiver ?? '',
        groupBy: rc.group_by === undefined ? (parent?.groupBy ?? []) : rc.group_by.includes('...') ? 'all' : [...rc.group_by].sort(),
        groupWait: rc.group_wait ?? parent?.groupWait ?? 30_000,
        groupInterval: rc.group_interval ?? parent?.groupInterval ?? 300_000,
        repeatInterval: rc.repeat_interval ?? parent?.repeatInterval ?? 14_400_000,
        continue: rc.continue,
        children: [],
        key: parent === undefined ? '{}' : `${parent.key}/${formatMatchers(matchers)}`,
      };
      nodes.push(node);
      (rc.routes ?? []).forEach((child, i) => node.children.push(build(child, node, [...path, 'routes', i])));
      return node;
    };
    const root = build(config.route, undefined, ['route']);

    const inhibit: InhibitRule[] = (config.inhibit_rules ?? []).map((r, i) => {
      labelNames(r.equal, ['inhibit_rules', i, 'equal'], false);
      return { source: matcherList(r.source_matchers, ['inhibit_rules', i, 'source_matchers']), target: matcherList(r.target_matchers, ['inhibit_rules', i, 'target_matchers']), equal: [...(r.equal ?? [])] };
    });
    if (config.silences !== undefined) {
      const t = ctx.table(config.silences);
      if (t === undefined) issues.push(unknownTable(ctx, config.silences, ['silences']));
      else if (schemaFullname(t.schema) !== SILENCE_SCHEMA) issues.push({ path: ['silences'], message: `table '${t.name}' has ${schemaFullname(t.schema)} rows, not ${SILENCE_SCHEMA}` });
    }
    const auditOut = auditSchema(ctx.resolveSchema, issues);
    if (issues.length > 0 || auditOut === undefined) return refused(issues);

    const schema = notificationSchema(alertSchema);
    const settings: Settings = { name: ctx.name, root, nodes, inhibit, silences: config.silences, sendResolved: config.send_resolved, maxAlerts: config.max_alerts, wall: config.wall_clock };
    return compiled({
      outputs: [{ name: DEFAULT_OUTPUT, schema }, { name: AUDIT_OUTPUT, schema: auditOut }, ...receivers.map((name) => ({ name, schema }))],
      gather: [DEFAULT_INPUT],
      stores: [
        { name: 'groups', kind: 'kv', value: groupSchema(alertSchema) },
        { name: 'firing', kind: 'kv', value: FIRING_STATE },
      ],
      ...(config.silences !== undefined ? { tables: [{ table: config.silences, mode: 'global' as const, input: DEFAULT_INPUT, keyFields: [] }] } : {}),
      create: () => new RouteInstance(settings),
    });
  },
};

/** The Notification schema: Alertmanager's webhook payload as an Avro record, with Vigil's Alert records. */
export function notificationSchema(alert: RecordSchema): RecordSchema {
  const labels: Ty = { k: 'map', values: T_STRING };
  const status: Ty = { k: 'enum', fullname: 'vigil.alerting.NotificationStatus', symbols: ['FIRING', 'RESOLVED'] };
  return recordSchemaOf(
    NOTIFICATION_SCHEMA,
    [
      { name: 'id', ty: T_STRING, doc: 'Idempotency key: the same for the same notification of a group, also when sent again after a crash.' },
      { name: 'timestamp', ty: { k: 'long', attrs: { logicalType: 'timestamp-millis' } }, doc: 'When the group was flushed (event time).' },
      { name: 'receiver', ty: T_STRING, doc: 'The receiver of the route.' },
      { name: 'status', ty: status, doc: 'FIRING while any alert of the notification fires, else RESOLVED.' },
      { name: 'group_key', ty: T_STRING, doc: "The group's key, in Alertmanager's form: route key, ':', group labels." },
      { name: 'group_labels', ty: labels, doc: 'The labels the group is formed by.' },
      { name: 'common_labels', ty: labels, doc: 'Labels (as the routes see them: with alertname, severity, category, priority, entity) every alert of the notification has, with the same value.' },
      { name: 'common_annotations', ty: labels, doc: 'Annotations (with the summary) every alert of the notification has, with the same value.' },
      { name: 'alerts', ty: { k: 'array', items: recordTy(alert) }, doc: 'The alerts: firing first, then resolved.' },
      { name: 'truncated_alerts', ty: T_INT, doc: 'Alerts left out beyond max_alerts.' },
      { name: 'sequence', ty: T_LONG, doc: "The notification's number within its group (1, 2, ...)." },
      {
        name: 'reason',
        ty: T_STRING,
        doc: "Why the group is notified, as Alertmanager says it: first notification, new alerts added, some alerts resolved, all alerts resolved, repeat interval elapsed.",
      },
    ],
    "A notification of a group of alerts to a receiver, as Alertmanager's webhook sends it.",
  );
}

interface Settings {
  /** The operator's name (who notified, in the audit). */
  name: string;
  root: RouteNode;
  nodes: RouteNode[];
  inhibit: InhibitRule[];
  silences: string | undefined;
  sendResolved: boolean;
  maxAlerts: number;
  wall: boolean;
}

/** The routes an alert takes (Alertmanager's Route.Match). */
export function matchRoutes(node: RouteNode, labels: LabelSet): RouteNode[] {
  if (!matchesAll(node.matchers, labels)) return [];
  const all: RouteNode[] = [];
  for (const child of node.children) {
    const m = matchRoutes(child, labels);
    all.push(...m);
    if (m.length > 0 && !child.continue) break;
  }
  return all.length > 0 ? all : [node];
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

/** Labels shared, with the same value, by every set. */
function common(sets: LabelSet[]): LabelSet {
  if (sets.length === 0) return {};
  const out: LabelSet = { ...sets[0] };
  for (const s of sets.slice(1)) for (const k of Object.keys(out)) if (s[k] !== out[k]) delete out[k];
  return out;
}

interface ParsedSilence {
  row: Record<string, unknown>;
  matchers: Matcher[] | null;
}

class RouteInstance implements OperatorInstance {
  private groups!: KeyValueStore<GroupState>;
  private firing!: KeyValueStore<LabelSet>;
  private silences: TableView | undefined;
  private readonly parsed = new Map<string, ParsedSilence>();
  /** Per inhibition rule: equal-label values -> firing source alerts (id -> whether it also matches the target). */
  private readonly sources: Array<Map<string, Map<string, boolean>>>;

  constructor(private readonly s: Settings) {
    this.sources = s.inhibit.map(() => new Map());
  }

  open(ctx: OperatorContext): void {
    this.groups = ctx.kv<GroupState>('groups');
    this.firing = ctx.kv<LabelSet>('firing');
    if (this.s.silences !== undefined) this.silences = ctx.table(this.s.silences);
    for (const [id, labels] of this.firing.entries()) this.addSource(id, labels);
    ctx.gauge('groups', this.groups.size);
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const a = record.value as Alert;
    const t = record.timestamp;
    const labels = routingLabels(a);
    // Inhibition sources: the alerts firing now.
    if (a.status === 'RESOLVED') {
      const had = this.firing.get(a.id);
      if (had !== undefined) {
        this.firing.delete(a.id);
        this.removeSource(a.id, had);
      }
    } else if (this.s.inhibit.length > 0) {
      const had = this.firing.get(a.id);
      if (had !== undefined) this.removeSource(a.id, had);
      this.firing.put(a.id, labels);
      this.addSource(a.id, labels);
    }
    for (const route of matchRoutes(this.s.root, labels)) {
      const groupLabels: LabelSet = {};
      if (route.groupBy === 'all') Object.assign(groupLabels, labels);
      else for (const n of route.groupBy) if (labels[n] !== undefined) groupLabels[n] = labels[n]!;
      const gk = `${route.index}:${formatLabels(groupLabels)}`;
      // The group's ticks before this alert come first (in event time it arrived after them).
      let g = this.catchUp(this.groups.get(gk), t, false, ctx);
      if (g === undefined) {
        const started = typeof a.starts_at === 'number' ? a.starts_at : t;
        g = {
          route: route.index,
          group_key: `${route.key}:${formatLabels(groupLabels)}`,
          group_labels: groupLabels,
          alerts: {},
          // A new group waits group_wait, unless its alert started firing longer ago than that.
          next_flush: started + route.groupWait <= t ? t : t + route.groupWait,
          sequence: 0,
          last_notify: null,
          notified_firing: [],
          notified_resolved: [],
          muted: [],
        };
        ctx.count('groups-created');
      }
      const prev = g.alerts[a.id];
      if (prev !== undefined && prev.timestamp > t) {
        ctx.count('out-of-order');
        continue;
      }
      g = { ...g, alerts: { ...g.alerts, [a.id]: a } };
      if (g.next_flush <= t) g = this.flush(g, t, ctx);
      this.save(gk, g, ctx);
    }
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const g = this.groups.get(timer.key);
    if (g === undefined || g.next_flush > timer.at) return; // flushed since (a record moved it on)
    // Up to where time is now, not just to this tick: after a long quiet stretch (or the end of a
    // backtest's input) the group jumps to its latest tick instead of firing one timer per interval.
    const now = Math.max(timer.at, timer.kind === 'event' ? ctx.watermark() : ctx.now());
    this.save(timer.key, this.catchUp(g, now, true, ctx), ctx);
  }

  /**
   * Flushes the group at its ticks before `t` (up to and including it when `inclusive`). After the
   * first, the group is unchanged, so only a repeat can be due: it jumps to the latest tick.
   */
  private catchUp(g: GroupState | undefined, t: number, inclusive: boolean, ctx: OperatorContext): GroupState | undefined {
    const due = (x: GroupState): boolean => (inclusive ? x.next_flush <= t : x.next_flush < t);
    if (g === undefined || !due(g)) return g;
    let next = this.flush(g, g.next_flush, ctx);
    if (next !== undefined && due(next)) {
      const interval = this.s.nodes[next.route]!.groupInterval;
      const skip = Math.floor(((inclusive ? t : t - 1) - next.next_flush) / interval);
      next = this.flush({ ...next, next_flush: next.next_flush + skip * interval }, next.next_flush + skip * interval, ctx);
    }
    return next;
  }

  private save(gk: string, g: GroupState | undefined, ctx: OperatorContext): void {
    if (g === undefined) {
      this.groups.delete(gk);
      ctx.cancel('event', gk);
      ctx.cancel('wall', gk);
    } else {
      this.groups.put(gk, g);
      ctx.schedule({ kind: 'event', at: g.next_flush, key: gk });
      if (this.s.wall) ctx.schedule({ kind: 'wall', at: g.next_flush, key: gk });
    }
    ctx.gauge('groups', this.groups.size);
  }

  /** Sends what the group needs to send at `now` (Alertmanager's flush and dedup stage); undefined when it ends. */
  private flush(g: GroupState, now: number, ctx: OperatorContext): GroupState | undefined {
    const route = this.s.nodes[g.route]!;
    const all = Object.values(g.alerts);
    const firing: Alert[] = [];
    const resolved: Alert[] = [];
    const muted: string[] = [];
    const wasMuted = new Set(g.muted);
    for (const a of all) {
      const labels = routingLabels(a);
      const why = this.muted(a.id, labels, now, ctx);
      if (why !== undefined) {
        muted.push(a.id);
        if (!wasMuted.has(a.id)) audit(ctx, why.kind, a, now, { who: why.who, why: why.why, group_key: g.group_key, receiver: route.receiver });
        continue;
      }
      (a.status === 'RESOLVED' ? resolved : firing).push(a);
    }
    let next: GroupState = g;
    const reason = firing.length + resolved.length > 0 ? this.needsUpdate(g, firing, resolved, route, now) : undefined;
    if (reason !== undefined) {
      const sent = [...firing.sort(byStart), ...(this.s.sendResolved ? resolved.sort(byStart) : [])];
      const sequence = g.sequence + 1;
      if (sent.length > 0) {
        const shown = sent.slice(0, this.s.maxAlerts);
        const gid = hash(`${route.receiver}\u0000${g.group_key}\u0000${route.index}`);
        const n: StreamRecord = {
          key: gid,
          value: {
            id: `${gid}-${sequence}`,
            timestamp: now,
            receiver: route.receiver,
            status: firing.length > 0 ? 'FIRING' : 'RESOLVED',
            group_key: g.group_key,
            group_labels: g.group_labels,
            common_labels: common(shown.map(routingLabels)),
            common_annotations: common(shown.map(alertAnnotations)),
            alerts: shown,
            truncated_alerts: sent.length - shown.length,
            sequence,
            reason,
          },
          timestamp: now,
        };
        ctx.count('notifications');
        ctx.emit(DEFAULT_OUTPUT, n);
        ctx.emit(route.receiver, n);
        for (const a of shown) audit(ctx, 'NOTIFIED', a, now, { who: `route:${this.s.name}`, why: `${reason} (${a.status === 'RESOLVED' ? 'resolved' : 'firing'})`, group_key: g.group_key, receiver: route.receiver });
      }
      next = { ...next, sequence, last_notify: now, notified_firing: firing.map((a) => a.id).sort(), notified_resolved: resolved.map((a) => a.id).sort() };
    }
    // Resolved alerts leave the group once flushed; an empty group ends.
    const remaining: Record<string, Alert> = {};
    for (const a of all) if (a.status !== 'RESOLVED') remaining[a.id] = a;
    if (Object.keys(remaining).length === 0) {
      ctx.count('groups-ended');
      return undefined;
    }
    return { ...next, alerts: remaining, next_flush: now + route.groupInterval, muted: muted.filter((id) => remaining[id] !== undefined).sort() };
  }

  /**
   * Alertmanager's DedupStage.needsUpdate over the group's notification log: why the group is
   * notified now (Alertmanager's NotifyReason, as its webhook's notification_reason says), or
   * undefined when it is not.
   */
  private needsUpdate(g: GroupState, firing: Alert[], resolved: Alert[], route: RouteNode, now: number): string | undefined {
    if (g.last_notify === null) return firing.length > 0 ? 'first notification' : undefined;
    const was = new Set(g.notified_firing);
    if (!firing.every((a) => was.has(a.id))) return g.notified_firing.length === 0 ? 'first notification' : 'new alerts added';
    if (firing.length === 0) return g.notified_firing.length > 0 ? 'all alerts resolved' : undefined;
    const wasResolved = new Set(g.notified_resolved);
    if (this.s.sendResolved && !resolved.every((a) => wasResolved.has(a.id))) return 'some alerts resolved';
    return g.last_notify + route.repeatInterval <= now ? 'repeat interval elapsed' : undefined;
  }

  /** Why an alert is muted now (inhibited or silenced), or undefined. */
  private muted(id: string, labels: LabelSet, now: number, ctx: OperatorContext): { kind: 'INHIBITED' | 'SILENCED'; who: string; why: string } | undefined {
    const by = this.inhibited(id, labels);
    if (by !== undefined) {
      ctx.count('inhibited');
      return { kind: 'INHIBITED', who: `route:${this.s.name}`, why: `inhibited by firing alert ${by}` };
    }
    const silence = this.silenced(labels, now, ctx);
    if (silence !== undefined) {
      ctx.count('silenced');
      const comment = typeof silence.comment === 'string' && silence.comment !== '' ? `${silence.comment} ` : '';
      return { kind: 'SILENCED', who: String(silence.created_by), why: `${comment}(silence ${String(silence.id)} until ${new Date(silence.ends_at as number).toISOString()})` };
    }
    return undefined;
  }

  private equalKey(rule: InhibitRule, labels: LabelSet): string {
    return JSON.stringify(rule.equal.map((n) => labels[n] ?? ''));
  }

  private addSource(id: string, labels: LabelSet): void {
    this.s.inhibit.forEach((rule, i) => {
      if (!matchesAll(rule.source, labels)) return;
      const k = this.equalKey(rule, labels);
      let bucket = this.sources[i]!.get(k);
      if (bucket === undefined) this.sources[i]!.set(k, (bucket = new Map()));
      bucket.set(id, matchesAll(rule.target, labels));
    });
  }

  private removeSource(id: string, labels: LabelSet): void {
    this.s.inhibit.forEach((rule, i) => {
      const k = this.equalKey(rule, labels);
      const bucket = this.sources[i]!.get(k);
      if (bucket === undefined) return;
      bucket.delete(id);
      if (bucket.size === 0) this.sources[i]!.delete(k);
    });
  }

  /** Alertmanager's inhibitor: a firing source with equal labels mutes a target (not itself; two-sided matches ignore each other). Returns the source's id. */
  private inhibited(id: string, labels: LabelSet): string | undefined {
    for (let i = 0; i < this.s.inhibit.length; i++) {
      const rule = this.s.inhibit[i]!;
      if (!matchesAll(rule.target, labels)) continue;
      const bucket = this.sources[i]!.get(this.equalKey(rule, labels));
      if (bucket === undefined) continue;
      const twoSided = matchesAll(rule.source, labels);
      for (const [src, alsoTarget] of bucket) {
        if (src === id) continue;
        if (twoSided && alsoTarget) continue;
        return src;
      }
    }
    return undefined;
  }

  /** The silence row muting these labels now, if any. */
  private silenced(labels: LabelSet, now: number, ctx: OperatorContext): Record<string, unknown> | undefined {
    if (this.silences === undefined) return undefined;
    if (this.parsed.size > 2 * this.silences.size + 100) this.parsed.clear(); // rows deleted from the table
    for (const [key, row] of this.silences.entries()) {
      let p = this.parsed.get(key);
      if (p === undefined || p.row !== row) {
        p = { row, matchers: null };
        try {
          p.matchers = (row.matchers as string[]).map(parseMatcher);
          if (p.matchers.length === 0) p.matchers = null; // a silence with no matcher would mute everything
        } catch {
          p.matchers = null;
        }
        if (p.matchers === null) ctx.count('silence-invalid');
        this.parsed.set(key, p);
      }
      if (p.matchers === null) continue;
      if ((row.starts_at as number) <= now && now < (row.ends_at as number) && matchesAll(p.matchers, labels)) return row;
    }
    return undefined;
  }
}

function byStart(a: Alert, b: Alert): number {
  const sa = (a.starts_at as number | null) ?? a.timestamp;
  const sb = (b.starts_at as number | null) ?? b.timestamp;
  return sa - sb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
