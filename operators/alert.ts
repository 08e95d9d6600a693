// alert: an alerting rule with Prometheus' lifecycle. Each record evaluates a condition for the
// alert its labels identify (the fingerprint of the label set, as Prometheus and Alertmanager
// compute it); an alert goes pending when the condition holds, firing once it has held for `for`,
// and resolved when it stops (after `keep_firing_for`) or when its series goes stale. Only the
// transitions go out (FIRING, RESOLVED), as Alert records keyed by fingerprint. State per
// fingerprint in a changelogged store; deadlines as persisted event-time timers.
import type { ConfigIssue, KeyValueStore, OperatorContext, OperatorDefinition, OperatorInstance, StreamRecord, TableView, Timer } from '../kernel/operator.ts';
import { DEFAULT_INPUT, DEFAULT_OUTPUT, compiled, refused } from '../kernel/operator.ts';
import type { AvroType } from '../kernel/schema.ts';
import { compileExpressionAt } from '../kernel/expr.ts';
import { describeTy, isNumeric, isScalar, nonNull, schemaFullname } from '../kernel/avro-types.ts';
import { badLabelName, fingerprint } from '../kernel/labels.ts';
import type { LabelSet } from '../kernel/labels.ts';
import { formatDuration } from '../kernel/spec.ts';
import { parseTemplate, renderTemplate } from './lib/template.ts';
import type { Template } from './lib/template.ts';
import { AUDIT_OUTPUT, audit, auditSchema } from './lib/audit.ts';
import { unknownTable } from './lib/fields.ts';

const ALERT_SCHEMA = 'vigil.alerting.Alert';
const ACTION_SCHEMA = 'vigil.alerting.Action';
const ACTIONS_OUTPUT = 'actions';
const FEEDBACK_SCHEMA = 'vigil.alerting.Feedback';

export const SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;
export const CATEGORIES = ['system', 'performance', 'security', 'business'] as const;
export const IMPACTS = ['high', 'medium', 'low'] as const;
type Severity = (typeof SEVERITIES)[number];
type Category = (typeof CATEGORIES)[number];
type Impact = (typeof IMPACTS)[number];

export interface AlertConfig {
  alertname?: string;
  condition: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  for: number;
  keep_firing_for: number;
  stale_after: number;
  severity: Severity;
  category?: Category;
  impact: Impact;
  entity?: string;
  value?: string;
  threshold?: string;
  actions?: ActionConfig[];
  feedback?: FeedbackConfig;
}

interface FeedbackConfig {
  table: string;
  direction: 'above' | 'below';
  step: number;
  max_factor: number;
}

interface ActionConfig {
  action: string;
  target: string;
  runbook?: string;
  params?: Record<string, string>;
  on: 'firing' | 'resolved';
}

/** One alert (fingerprint) the rule tracks: pending or firing. */
interface AlertState {
  state: 'pending' | 'firing';
  /** When the condition started to hold (Prometheus' ActiveAt). */
  active_at: number;
  /** When it went firing; null while pending. */
  fired_at: number | null;
  /** Time of the latest record evaluated for this alert. */
  last_seen: number;
  /** Firing only: when the condition stopped holding (keep_firing_for counts from it). */
  keep_since: number | null;
  labels: LabelSet;
  annotations: Record<string, string>;
  entity: string;
  value: number | null;
  threshold: number | null;
  /** The actions' templates rendered from the latest record whose condition held: "<i>\u0000<part>" -> text. */
  rendered: Record<string, string>;
}

const STATE: AvroType = {
  type: 'record',
  name: 'AlertRuleState',
  namespace: 'vigil.state',
  fields: [
    { name: 'state', type: 'string' },
    { name: 'active_at', type: 'long' },
    { name: 'fired_at', type: ['null', 'long'] },
    { name: 'last_seen', type: 'long' },
    { name: 'keep_since', type: ['null', 'long'] },
    { name: 'labels', type: { type: 'map', values: 'string' } },
    { name: 'annotations', type: { type: 'map', values: 'string' } },
    { name: 'entity', type: 'string' },
    { name: 'value', type: ['null', 'double'] },
    { name: 'threshold', type: ['null', 'double'] },
    { name: 'rendered', type: { type: 'map', values: 'string' }, default: {} },
  ],
};

/** Labels whose value names the entity when `entity` is not set, in order of preference. */
const ENTITY_LABELS = ['entity', 'host', 'service', 'instance', 'job'];

const DESCRIPTION = `
An alerting rule with the lifecycle of Prometheus' alerting rules, evaluated on every input record
instead of on a schedule.

**Identity.** The \`labels\` (name -> expression over the record, plus \`alertname\` and \`severity\`) identify an alert:
records with the same label values are the same alert, and its \`id\` is the fingerprint of the label set, computed as
Prometheus and Alertmanager do (the id Alertmanager's API shows for the same labels). A label whose value is null or
empty is left out, as Prometheus does. Records are partitioned by the fields the label expressions read (or, when the
input is already keyed by some of them, left as they are); a rule whose labels read no field is one alert, evaluated
in one task.

**Lifecycle.** A record whose \`condition\` holds makes its alert *pending*; once the condition has held for \`for\`
(no record of that alert with the condition false, and none missing for \`stale_after\`) the alert is *firing* and one
FIRING record goes out, at the time the \`for\` ended. A pending alert whose condition stops is forgotten (nothing goes
out). A firing alert whose condition stops is resolved \`keep_firing_for\` later, unless the condition holds again in
between, and one RESOLVED record goes out. An alert whose records stop coming counts as false \`stale_after\` after its
latest record (Prometheus' staleness: the series left the query result). Deadlines are event-time timers kept with
the state, so an alert resolves or fires even when its own records stopped, as soon as the operator's watermark
passes the deadline; a record older than its alert's latest is ignored (counted as \`out-of-order\`). Nothing goes out
per sample: a condition holding for an hour is one FIRING record, then one RESOLVED.

**Output.** \`vigil.alerting.Alert\` records keyed by the fingerprint: \`status\` FIRING or RESOLVED, \`starts_at\` (when
it fired), \`ends_at\` (when resolved), \`labels\` (with \`alertname\`), \`annotations\` rendered from the latest record
whose condition held (templates with \`{expression}\` placeholders; a null placeholder renders empty), \`summary\` (the
\`summary\` annotation, or "<alertname> on <entity>"), \`value\` and \`threshold\` of that record.

**Classification and priority.** \`category\` classifies the rule (system, performance, security, business); without
it a \`category\` label with one of those values does, else UNCLASSIFIED. \`severity\` (info, warning, error, critical)
becomes the \`severity\` label unless \`labels\` computes one; a label value outside the four leaves the Alert's
\`severity\` at the rule's. \`impact\` (high, medium, low; or an \`impact\` label) and the severity give the priority,
1 (page now) to 5: 1 + severity rank (critical 0, error 1, warning 2, info 3) + impact rank (high 0, medium 1, low 2),
at most 5; a \`priority\` label of 1 to 5 overrides it. Priority 1 is an emergency.

**Audit.** The \`audit\` output has a \`vigil.alerting.AuditEvent\` for every state change: PENDING, FIRING and RESOLVED,
\`who\` the rule (\`rule:<alertname>\`) and \`why\` the condition (held, held for \`for\`, stopped, or the series went
stale).

**Automated actions.** Each of \`actions\` puts a \`vigil.alerting.Action\` record on the \`actions\` output when an
alert fires (or resolves, with \`on: resolved\`): the action's name, its \`target\`, \`runbook\` and \`params\` rendered
from the record that made the alert fire, and an \`id\` made of the alert, when it fired and the action's name: an
executor reading the actions topic dedupes on it (the same action requested again after a crash has the same id).

**Feedback.** With \`feedback\`, acknowledgements as noise raise the rule's threshold for the series they were about.
\`feedback.table\` is a table of \`vigil.alerting.Feedback\` rows keyed by alert id (the \`escalate\` operator's
\`feedback\` output, written to a compacted topic); a series acknowledged as noise n times has its threshold moved by a
factor (1 + \`step\`)^n, at most \`max_factor\`: up for \`direction: above\` (the alert also needs \`value\` above
threshold + |threshold| × (factor − 1)), down for \`below\`. The rule needs \`value\` and \`threshold\`; the Alert's
\`threshold\` is the moved one. A REVERT acknowledgement sets the count back to 0, and the rule's own threshold applies
again; both changes are in the audit topic (FEEDBACK, with who and why).
`.trim();

export const alertOperator: OperatorDefinition<AlertConfig> = {
  type: 'alert',
  category: 'alerting',
  summary: 'An alerting rule: pending, firing after `for`, resolved when the condition stops; one record per transition, per alert fingerprint.',
  description: DESCRIPTION,
  outputs: [
    { name: DEFAULT_OUTPUT, description: '`vigil.alerting.Alert` records: FIRING and RESOLVED transitions, keyed by fingerprint.' },
    { name: AUDIT_OUTPUT, description: '`vigil.alerting.AuditEvent` records: PENDING, FIRING and RESOLVED, with who and why.' },
    { name: ACTIONS_OUTPUT, description: '`vigil.alerting.Action` records requested by `actions`, with an idempotency key.' },
  ],
  config: {
    alertname: { kind: 'string', optional: true, pattern: '^[^\\u0000-\\u001f]{1,200}$', description: "The alert's name (the `alertname` label). Default: the operator's name.", examples: ['HighLatency'] },
    condition: { kind: 'expression', returns: 'boolean', description: 'When the alert holds (null counts as false).', examples: ['value > 0.5', 'anomalous'] },
    labels: {
      kind: 'map',
      optional: true,
      items: { kind: 'expression', description: 'An expression over the input record: a string, number or boolean.' },
      description: 'Label name -> expression: the labels that identify an alert (with `alertname` and `severity`).',
      examples: [{ host: 'host', metric: 'name' }],
    },
    annotations: {
      kind: 'map',
      optional: true,
      items: { kind: 'string', freeText: true, description: 'A template: text with `{expression}` placeholders.' },
      description: 'Annotation name -> template over the input record; `summary` is also the Alert\'s summary.',
      examples: [{ summary: 'p99 latency of {host} at {round(value, 2)} s', runbook: 'https://runbooks.example.com/latency' }],
    },
    for: { kind: 'duration', default: 0, description: 'How long the condition must hold before the alert fires (pending until then).', examples: ['5m'] },
    keep_firing_for: { kind: 'duration', default: 0, description: 'How long a firing alert stays firing after the condition stopped.', examples: ['10m'] },
    stale_after: {
      kind: 'duration',
      default: '5m',
      min: 1,
      description: "How long after an alert's latest record the condition counts as false when no record comes (Prometheus' lookback of 5 minutes).",
    },
    severity: { kind: 'enum', values: SEVERITIES, default: 'warning', description: 'Severity: the `severity` label unless `labels` computes one.' },
    category: { kind: 'enum', values: CATEGORIES, optional: true, description: 'Classification of the rule. Default: a `category` label, else unclassified.' },
    impact: { kind: 'enum', values: IMPACTS, default: 'medium', description: 'Impact, with the severity giving the priority (an `impact` label overrides it).' },
    entity: { kind: 'expression', optional: true, description: 'What the alert is about. Default: the first of the labels entity, host, service, instance, job; else the alertname.', examples: ['host'] },
    value: { kind: 'expression', optional: true, description: "The observed value (number). Default: the input's numeric `value` field, if any.", examples: ['value', 'anomaly_score'] },
    threshold: { kind: 'expression', optional: true, description: 'The threshold or expected value (number).', examples: ['0.5', 'expected'] },
    actions: {
      kind: 'array',
      optional: true,
      items: {
        kind: 'object',
        description: 'An automated action.',
        fields: {
          action: { kind: 'string', pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$', description: 'The action\'s name, for the executor.', examples: ['restart', 'scale', 'runbook'] },
          target: { kind: 'string', freeText: true, description: 'What to act on: a template over the record.', examples: ['{host}'] },
          runbook: { kind: 'string', freeText: true, optional: true, description: 'A runbook id or URL (a template).', examples: ['RB-042'] },
          params: { kind: 'map', optional: true, items: { kind: 'string', freeText: true, description: 'A template.' }, description: 'Parameters (templates over the record).', examples: [{ replicas: '4' }] },
          on: { kind: 'enum', values: ['firing', 'resolved'], default: 'firing', description: 'The transition that requests it.' },
        },
      },
      description: 'Automated actions requested on the `actions` output when an alert fires (or resolves).',
    },
    feedback: {
      kind: 'object',
      optional: true,
      description: 'Raise the threshold of a series acknowledged as noise (needs `value` and `threshold`).',
      fields: {
        table: { kind: 'string', description: 'A table source of `vigil.alerting.Feedback` rows keyed by alert id.', examples: ['feedback'] },
        direction: { kind: 'enum', values: ['above', 'below'], default: 'above', description: 'above: alerts on values above the threshold (raised by noise); below: on values below it (lowered).' },
        step: { kind: 'number', default: 0.1, min: 0.001, max: 10, description: 'How much one acknowledgement as noise moves the threshold (0.1: 10 %), compounded.' },
        max_factor: { kind: 'number', default: 2, min: 1, max: 100, description: 'The most the threshold can be moved, as a factor of its distance from 0.' },
      },
    },
  },
  examples: [
    {
      title: 'p99 latency above 500 ms for 2 minutes, per host, resolved 5 minutes after it is back',
      yaml: `sources:
  - name: metrics
    topic: telemetry.metrics
    schema: vigil.telemetry.MetricSample
    key: [host]
    timestamp: timestamp
operators:
  - name: latency
    type: filter
    where: name == "http.latency.p99"
  - name: high-latency
    type: alert
    alertname: HighLatency
    condition: value > 0.5
    for: 2m
    keep_firing_for: 5m
    labels: { host: host }
    severity: critical
    category: performance
    impact: high
    threshold: "0.5"
    annotations:
      summary: "p99 latency of {host} is {round(value * 1000, 0)} ms"
      runbook: https://runbooks.example.com/high-latency
    actions:
      - { action: restart, target: "{host}", runbook: RB-042 }
sinks:
  - name: alerts
    from: high-latency
    topic: alerts
  - name: audit
    from: high-latency.audit
    topic: alerting.audit
  - name: actions
    from: high-latency.actions
    topic: alerting.actions
`,
    },
  ],
  compile(config, ctx) {
    const input = ctx.inputs[0]!;
    const issues: ConfigIssue[] = [];
    const alertname = config.alertname ?? ctx.name;
    const schema = ctx.resolveSchema(ALERT_SCHEMA);
    if (schema === undefined) issues.push({ path: [], message: `the schema ${ALERT_SCHEMA} is not known (schemas/alert.avsc)` });
    const auditOut = auditSchema(ctx.resolveSchema, issues);
    const actionOut = ctx.resolveSchema(ACTION_SCHEMA);
    if (actionOut === undefined) issues.push({ path: [], message: `the schema ${ACTION_SCHEMA} is not known (schemas/action.avsc)` });

    const labels: Array<{ name: string; ev: (v: Record<string, unknown>) => unknown }> = [];
    const labelFields = new Set<string>();
    for (const [name, src] of Object.entries(config.labels ?? {})) {
      const bad = badLabelName(name) ?? (name === 'alertname' ? "the 'alertname' label is the rule's alertname: set `alertname`" : undefined);
      if (bad !== undefined) {
        issues.push({ path: ['labels', name], at: 'key', message: bad });
        continue;
      }
      const c = compileExpressionAt(src, input.schema, ['labels', name], issues);
      if (c === undefined) continue;
      if (!isScalar(nonNull(c.ty))) {
        issues.push({ path: ['labels', name], message: `a label value must be a string, number or boolean, but '${src}' is ${describeTy(c.ty)}` });
        continue;
      }
      for (const f of c.fields) labelFields.add(f);
      labels.push({ name, ev: c.evaluate });
    }

    const annotations: Array<{ name: string; t: Template }> = [];
    for (const [name, text] of Object.entries(config.annotations ?? {})) {
      const bad = badLabelName(name, 'annotation');
      if (bad !== undefined) {
        issues.push({ path: ['annotations', name], at: 'key', message: bad });
        continue;
      }
      const t = parseTemplate(text, input.schema, ['annotations', name], `annotation '${name}'`, issues);
      if (t !== undefined) annotations.push({ name, t });
    }

    const actions: RuleAction[] = [];
    (config.actions ?? []).forEach((a, i) => {
      const at = ['actions', i];
      const tpl = (text: string, path: (string | number)[], what: string): Template | undefined => parseTemplate(text, input.schema, [...at, ...path], what, issues);
      const target = tpl(a.target, ['target'], `action '${a.action}' target`);
      const runbook = a.runbook === undefined ? undefined : tpl(a.runbook, ['runbook'], `action '${a.action}' runbook`);
      const params: Array<{ name: string; t: Template }> = [];
      for (const [name, text] of Object.entries(a.params ?? {})) {
        const t = tpl(text, ['params', name], `action '${a.action}' parameter '${name}'`);
        if (t !== undefined) params.push({ name, t });
      }
      if (actions.some((x) => x.name === a.action && x.on === a.on)) issues.push({ path: [...at, 'action'], message: `action '${a.action}' is requested twice on ${a.on}: its id would not tell them apart` });
      if (target !== undefined) actions.push({ name: a.action, target, runbook, params, on: a.on });
    });

    const condition = compileExpressionAt(config.condition, input.schema, ['condition'], issues);
    const expr = (key: 'entity' | 'value' | 'threshold', want: 'string' | 'number'): ((v: Record<string, unknown>) => unknown) | undefined => {
      const src = config[key];
      if (src === undefined) return undefined;
      const c = compileExpressionAt(src, input.schema, [key], issues);
      if (c === undefined) return undefined;
      const ty = nonNull(c.ty);
      const ok = want === 'number' ? isNumeric(ty) : isScalar(ty);
      if (!ok) issues.push({ path: [key], code: 'EXPR_TYPE', message: `'${key}' must be ${want === 'number' ? 'a number' : 'a string, number or boolean'}, but '${src}' is ${describeTy(c.ty)}` });
      return c.evaluate;
    };
    const entity = expr('entity', 'string');
    let value = expr('value', 'number');
    const threshold = expr('threshold', 'number');
    if (config.value === undefined) {
      const f = input.schema.fields.find((x) => x.name === 'value');
      if (f !== undefined) {
        const c = compileExpressionAt('value', input.schema, ['value'], []);
        if (c !== undefined && isNumeric(nonNull(c.ty))) value = c.evaluate;
      }
    }
    const fb = config.feedback;
    if (fb !== undefined) {
      const t = ctx.table(fb.table);
      if (t === undefined) issues.push(unknownTable(ctx, fb.table, ['feedback', 'table']));
      else if (schemaFullname(t.schema) !== FEEDBACK_SCHEMA) issues.push({ path: ['feedback', 'table'], message: `table '${t.name}' has ${schemaFullname(t.schema)} rows, not ${FEEDBACK_SCHEMA}` });
      if (value === undefined) issues.push({ path: ['feedback'], message: 'feedback moves the threshold the value is compared with: set `value` (or read records with a numeric `value` field)' });
      if (threshold === undefined) issues.push({ path: ['feedback'], message: 'feedback moves the threshold: set `threshold`' });
    }
    if (issues.length > 0 || schema === undefined || auditOut === undefined || actionOut === undefined || condition === undefined) return refused(issues);

    // The records of one alert must meet in one task: partition by what the labels read, unless
    // the input is keyed by some of those fields already (equal keys then imply equal partitions).
    const keyed = input.keyFields !== undefined && input.keyFields.length > 0 && input.keyFields.every((f) => labelFields.has(f));
    const partitionBy = keyed ? [...input.keyFields!] : [...labelFields].sort();
    const rule: Rule = {
      alertname,
      condition: condition.evaluate,
      labels,
      annotations,
      entity,
      value,
      threshold,
      forMs: config.for,
      keepMs: config.keep_firing_for,
      staleMs: config.stale_after,
      severity: config.severity,
      category: config.category,
      impact: config.impact,
      severityLabel: !labels.some((l) => l.name === 'severity'),
      conditionSrc: config.condition,
      actions,
      feedback: fb,
    };
    return compiled({
      outputs: [
        { name: DEFAULT_OUTPUT, schema: schema, keyFields: ['id'] },
        { name: AUDIT_OUTPUT, schema: auditOut },
        { name: ACTIONS_OUTPUT, schema: actionOut },
      ],
      ...(partitionBy.length > 0 ? { partitionBy: { [DEFAULT_INPUT]: partitionBy } } : { gather: [DEFAULT_INPUT] }),
      stores: [{ name: 'alerts', kind: 'kv', value: STATE }],
      ...(fb !== undefined ? { tables: [{ table: fb.table, mode: 'global' as const, input: DEFAULT_INPUT, keyFields: [] }] } : {}),
      create: () => new AlertInstance(rule),
    });
  },
};

interface Rule {
  alertname: string;
  condition: (v: Record<string, unknown>) => unknown;
  labels: Array<{ name: string; ev: (v: Record<string, unknown>) => unknown }>;
  annotations: Array<{ name: string; t: Template }>;
  entity: ((v: Record<string, unknown>) => unknown) | undefined;
  value: ((v: Record<string, unknown>) => unknown) | undefined;
  threshold: ((v: Record<string, unknown>) => unknown) | undefined;
  forMs: number;
  keepMs: number;
  staleMs: number;
  severity: Severity;
  category: Category | undefined;
  impact: Impact;
  /** Whether the rule's severity becomes a label (no label expression computes one). */
  severityLabel: boolean;
  conditionSrc: string;
  actions: RuleAction[];
  feedback: FeedbackConfig | undefined;
}

interface RuleAction {
  name: string;
  target: Template;
  runbook: Template | undefined;
  params: Array<{ name: string; t: Template }>;
  on: 'firing' | 'resolved';
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, error: 1, warning: 2, info: 3 };
const IMPACT_RANK: Record<Impact, number> = { high: 0, medium: 1, low: 2 };

function known<T extends string>(values: readonly T[], v: string | undefined): T | undefined {
  if (v === undefined) return undefined;
  const l = v.toLowerCase();
  return (values as readonly string[]).includes(l) ? (l as T) : undefined;
}

/** Severity, category and priority of an alert from its rule and labels. */
export function classify(rule: Pick<Rule, 'severity' | 'category' | 'impact'>, labels: LabelSet): { severity: Severity; category: Category | undefined; priority: number } {
  const severity = known(SEVERITIES, labels.severity) ?? rule.severity;
  const category = rule.category ?? known(CATEGORIES, labels.category);
  const impact = known(IMPACTS, labels.impact) ?? rule.impact;
  const p = Number(labels.priority);
  const priority = Number.isInteger(p) && p >= 1 && p <= 5 ? p : Math.min(5, 1 + SEVERITY_RANK[severity] + IMPACT_RANK[impact]);
  return { severity, category, priority };
}

function labelValue(x: unknown): string | undefined {
  if (x === null || x === undefined) return undefined;
  const s = String(x);
  return s === '' ? undefined : s;
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

class AlertInstance implements OperatorInstance {
  private alerts!: KeyValueStore<AlertState>;
  private feedback: TableView | undefined;

  constructor(private readonly r: Rule) {}

  open(ctx: OperatorContext): void {
    this.alerts = ctx.kv<AlertState>('alerts');
    if (this.r.feedback !== undefined) this.feedback = ctx.table(this.r.feedback.table);
    ctx.gauge('alerts', this.alerts.size);
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const v = record.value;
    const labels: LabelSet = { alertname: this.r.alertname };
    if (this.r.severityLabel) labels.severity = this.r.severity;
    for (const l of this.r.labels) {
      const s = labelValue(l.ev(v));
      if (s !== undefined) labels[l.name] = s;
    }
    const fp = fingerprint(labels);
    const moved = this.movedThreshold(fp, v);
    const holds = this.r.condition(v) === true && (moved === undefined || this.beyond(v, moved));
    const t = record.timestamp;
    let st = this.alerts.get(fp);
    if (st === undefined && !holds) return;
    if (st !== undefined && t < st.last_seen) {
      ctx.count('out-of-order');
      return;
    }
    const headers = record.headers;
    if (st !== undefined) st = this.advance(fp, st, t, false, ctx);
    if (holds) {
      const data = this.evaluate(v, labels);
      if (moved !== undefined) data.threshold = moved;
      if (st === undefined) {
        st = { state: 'pending', active_at: t, fired_at: null, last_seen: t, keep_since: null, ...data };
        ctx.count('pending');
        this.audit(fp, st, 'PENDING', t, `condition held: ${this.r.conditionSrc}${this.r.forMs > 0 ? `; fires once it has held for ${formatDuration(this.r.forMs)}` : ''}`, ctx);
      } else st = { ...st, last_seen: t, keep_since: null, ...data };
      if (st.state === 'pending' && st.active_at + this.r.forMs <= t) st = this.fire(fp, st, t, ctx, headers);
    } else if (st !== undefined) {
      if (st.state === 'pending') st = undefined;
      else {
        st = { ...st, last_seen: t, keep_since: st.keep_since ?? t };
        if (st.keep_since! + this.r.keepMs <= t) st = this.resolve(fp, st, t, ctx, headers);
      }
    }
    this.save(fp, st, ctx);
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    const st = this.alerts.get(timer.key);
    if (st === undefined) return;
    this.save(timer.key, this.advance(timer.key, st, timer.at, true, ctx), ctx);
  }

  /** The threshold moved by noise feedback for this series, or undefined when it is the rule's own. */
  private movedThreshold(fp: string, v: Record<string, unknown>): number | undefined {
    const fb = this.r.feedback;
    if (fb === undefined || this.feedback === undefined) return undefined;
    const n = this.feedback.get(fp)?.noise_acks;
    if (typeof n !== 'number' || n <= 0) return undefined;
    const t = num(this.r.threshold!(v));
    if (t === null) return undefined;
    const factor = Math.min(fb.max_factor, (1 + fb.step) ** n);
    return fb.direction === 'above' ? t + Math.abs(t) * (factor - 1) : t - Math.abs(t) * (factor - 1);
  }

  /** Whether the record's value is past a moved threshold, in the rule's direction. */
  private beyond(v: Record<string, unknown>, threshold: number): boolean {
    const x = num(this.r.value!(v));
    if (x === null) return false;
    return this.r.feedback!.direction === 'above' ? x > threshold : x < threshold;
  }

  /** The labels' record-derived parts of the state: rendered annotations, entity, value, threshold. */
  private evaluate(v: Record<string, unknown>, labels: LabelSet): Pick<AlertState, 'labels' | 'annotations' | 'entity' | 'value' | 'threshold' | 'rendered'> {
    const annotations: Record<string, string> = {};
    for (const a of this.r.annotations) annotations[a.name] = renderTemplate(a.t, v, undefined, '');
    const rendered: Record<string, string> = {};
    this.r.actions.forEach((a, i) => {
      rendered[`${i}\u0000target`] = renderTemplate(a.target, v, undefined, '');
      if (a.runbook !== undefined) rendered[`${i}\u0000runbook`] = renderTemplate(a.runbook, v, undefined, '');
      for (const p of a.params) rendered[`${i}\u0000param\u0000${p.name}`] = renderTemplate(p.t, v, undefined, '');
    });
    let entity = this.r.entity !== undefined ? labelValue(this.r.entity(v)) : undefined;
    if (entity === undefined) for (const n of ENTITY_LABELS) if ((entity = labels[n]) !== undefined) break;
    return {
      labels,
      annotations,
      entity: entity ?? this.r.alertname,
      value: this.r.value !== undefined ? num(this.r.value(v)) : null,
      threshold: this.r.threshold !== undefined ? num(this.r.threshold(v)) : null,
      rendered,
    };
  }

  /** The next time the alert changes without a record: it fires, goes stale or stops being kept. */
  private deadline(st: AlertState): number {
    const stale = st.last_seen + this.r.staleMs;
    if (st.state === 'pending') return Math.min(st.active_at + this.r.forMs, stale);
    if (st.keep_since === null) return stale;
    return st.keep_since + this.r.keepMs;
  }

  /** Applies the deadlines before `t` (up to and including it when `inclusive`), in time order. */
  private advance(fp: string, st: AlertState | undefined, t: number, inclusive: boolean, ctx: OperatorContext): AlertState | undefined {
    while (st !== undefined) {
      const d = this.deadline(st);
      if (inclusive ? d > t : d >= t) break;
      const stale = st.last_seen + this.r.staleMs;
      if (st.state === 'pending') {
        // Fires only if the condition still held then: it had not gone stale first.
        st = st.active_at + this.r.forMs < stale ? this.fire(fp, st, d, ctx) : undefined;
      } else if (st.keep_since === null) {
        ctx.count('stale');
        st = { ...st, keep_since: stale };
      } else st = this.resolve(fp, st, d, ctx);
    }
    return st;
  }

  private fire(fp: string, st: AlertState, at: number, ctx: OperatorContext, headers?: StreamRecord['headers']): AlertState {
    const next: AlertState = { ...st, state: 'firing', fired_at: at };
    ctx.count('firing');
    this.emit(fp, next, 'FIRING', at, ctx, headers);
    this.audit(fp, next, 'FIRING', at, this.r.forMs > 0 ? `condition held for ${formatDuration(this.r.forMs)}: ${this.r.conditionSrc}` : `condition held: ${this.r.conditionSrc}`, ctx);
    this.act(fp, next, 'firing', at, ctx);
    return next;
  }

  private resolve(fp: string, st: AlertState, at: number, ctx: OperatorContext, headers?: StreamRecord['headers']): undefined {
    ctx.count('resolved');
    this.emit(fp, st, 'RESOLVED', at, ctx, headers);
    const stale = st.keep_since === st.last_seen + this.r.staleMs;
    const why = stale ? `no record since ${new Date(st.last_seen).toISOString()}: the series went stale after ${formatDuration(this.r.staleMs)}` : `condition no longer holds: ${this.r.conditionSrc}`;
    this.audit(fp, st, 'RESOLVED', at, this.r.keepMs > 0 ? `${why} (kept firing for ${formatDuration(this.r.keepMs)})` : why, ctx);
    this.act(fp, st, 'resolved', at, ctx);
    return undefined;
  }

  private audit(fp: string, st: AlertState, kind: 'PENDING' | 'FIRING' | 'RESOLVED', at: number, why: string, ctx: OperatorContext): void {
    const c = classify(this.r, st.labels);
    audit(ctx, kind, { id: fp, rule: this.r.alertname, entity: st.entity, category: c.category?.toUpperCase() ?? 'UNCLASSIFIED', severity: c.severity.toUpperCase(), priority: c.priority, starts_at: st.fired_at }, at, {
      who: `rule:${this.r.alertname}`,
      why,
    });
  }

  /** The rule's actions on a transition, each with its idempotency key. */
  private act(fp: string, st: AlertState, on: 'firing' | 'resolved', at: number, ctx: OperatorContext): void {
    this.r.actions.forEach((a, i) => {
      if (a.on !== on) return;
      const part = (name: string): string => st.rendered[`${i}\u0000${name}`] ?? '';
      const params: Record<string, string> = {};
      for (const p of a.params) params[p.name] = part(`param\u0000${p.name}`);
      ctx.count('actions');
      ctx.emit(ACTIONS_OUTPUT, {
        key: fp,
        value: { id: `${fp}-${st.fired_at ?? at}-${on}-${a.name}`, timestamp: at, action: a.name, target: part('target'), runbook: part('runbook'), params, alert_id: fp, rule: this.r.alertname, trigger: on.toUpperCase(), labels: st.labels },
        timestamp: at,
      });
    });
  }

  private emit(fp: string, st: AlertState, status: 'FIRING' | 'RESOLVED', at: number, ctx: OperatorContext, headers?: StreamRecord['headers']): void {
    const c = classify(this.r, st.labels);
    ctx.forward({
      key: fp,
      value: {
        id: fp,
        timestamp: at,
        rule: this.r.alertname,
        entity: st.entity,
        category: c.category?.toUpperCase() ?? 'UNCLASSIFIED',
        severity: c.severity.toUpperCase(),
        priority: c.priority,
        summary: st.annotations.summary ?? `${this.r.alertname} on ${st.entity}`,
        value: st.value,
        threshold: st.threshold,
        labels: st.labels,
        status,
        starts_at: st.fired_at,
        ends_at: status === 'RESOLVED' ? at : null,
        annotations: st.annotations,
      },
      timestamp: at,
      ...(headers ? { headers } : {}),
    });
  }

  private save(fp: string, st: AlertState | undefined, ctx: OperatorContext): void {
    if (st === undefined) {
      if (this.alerts.has(fp)) {
        this.alerts.delete(fp);
        ctx.cancel('event', fp);
      }
    } else {
      this.alerts.put(fp, st);
      ctx.schedule({ kind: 'event', at: this.deadline(st), key: fp });
    }
    ctx.gauge('alerts', this.alerts.size);
  }
}
