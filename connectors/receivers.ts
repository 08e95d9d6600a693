// Receivers: sink types that deliver alerting records over HTTP, in the payload shapes the tools on
// the other end already read.
//
// - webhook: Alertmanager's webhook payload (version 4), so receivers written for Alertmanager
//   work unchanged; the notification's id travels as the Idempotency-Key header.
// - slack: a Slack incoming-webhook message with Alertmanager's default title and colours.
// - pagerduty: PagerDuty Events API v2 (trigger, then resolve, deduplicated by the group).
// - alertmanager: Alert records (not notifications) posted to an Alertmanager's /api/v2/alerts, as
//   Prometheus does, re-posted while they fire so Alertmanager does not resolve them itself.
//
// Each compiles to a delivery operator reading the sink's outbox topic (kernel/sink.ts): records of
// one key (a group, an alert) go out in order, the task commits no offset before its deliveries
// are done (at least once; after a crash the receiver may see a notification again, with the same
// idempotency key), a receiver's refusal or an exhausted retry budget dead-letters the record with
// the status and the receiver's words. URLs and headers come from the topology (secrets from
// allowlisted environment variables) and appear in no message, log line or dead-letter header.
import { createHash } from 'node:crypto';
import type { OperatorContext, OperatorInstance, StreamRecord, Timer } from '../kernel/operator.ts';
import type { ConfigSpec, FieldSpec } from '../kernel/spec.ts';
import type { StoreDecl } from '../kernel/store.ts';
import type { SinkCompileContext, SinkDefinition, SinkCompileResult } from '../kernel/sink.ts';
import { schemaFullname } from '../kernel/avro-types.ts';
import { alertAnnotations, routingLabels } from '../kernel/labels.ts';
import type { LabelSet } from '../kernel/labels.ts';
import { HttpDelivery } from './http-delivery.ts';
import type { DeliveryOptions, DeliveryRequest, DeliveryResult } from './http-delivery.ts';

const NOTIFICATION = 'vigil.alerting.Notification';
const ALERT_FIELDS = ['id', 'rule', 'entity', 'summary', 'labels', 'annotations', 'status', 'starts_at', 'ends_at', 'timestamp'];

/** How Alertmanager writes "not resolved" in a payload's endsAt. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

// ---------------------------------------------------------------------------------------------
// Shared config: where, and how hard to try

export interface HttpSinkConfig {
  url: string;
  headers?: Record<string, string>;
  timeout: number;
  backoff: number;
  max_backoff: number;
  give_up_after: number;
  concurrency: number;
  circuit_breaker: { error_percentage: number; min_requests: number; reset: number };
}

const HEADERS: FieldSpec = {
  kind: 'map',
  optional: true,
  items: { kind: 'string', freeText: true, description: 'A header value.' },
  description: 'Request headers, e.g. an authorization from an allowlisted environment variable. Never logged.',
  examples: [{ Authorization: 'Bearer ${HOOK_TOKEN}' }],
};

const DELIVERY: ConfigSpec = {
  timeout: { kind: 'duration', default: '10s', min: 1, max: 600_000, description: 'How long one attempt may take.' },
  backoff: { kind: 'duration', default: '500ms', min: 1, description: 'First retry delay (doubles per retry, with full jitter; a Retry-After answer is honoured up to max_backoff).' },
  max_backoff: { kind: 'duration', default: '30s', min: 1, description: 'Longest retry delay.' },
  give_up_after: {
    kind: 'duration',
    default: '10m',
    min: 1,
    description: 'No new attempt starts this long after the first: the record goes to the dead-letter topic (reason delivery-failed). Until then the outbox partition waits (at least once, in order).',
  },
  concurrency: { kind: 'integer', default: 8, min: 1, max: 1000, description: 'Requests in flight at most, per task (different groups; one group\'s notifications go one at a time).' },
  circuit_breaker: {
    kind: 'object',
    default: {},
    description: 'When to stop calling a failing receiver for a while (attempts then fail at once and are retried after their backoff).',
    fields: {
      error_percentage: { kind: 'integer', default: 50, min: 1, max: 100, description: 'Open when more than this percentage of the last 10 s of attempts failed...' },
      min_requests: { kind: 'integer', default: 5, min: 1, description: '...and there were at least this many.' },
      reset: { kind: 'duration', default: '30s', min: 1, description: 'How long it stays open before one attempt probes the receiver.' },
    },
  },
};

const DELIVERY_DOC = `
**Delivery.** Records reach the receiver through the sink's outbox topic. Each is POSTed with a timeout per attempt;
a connection error, a timeout, a 408, 425, 429 or 5xx is retried with exponential backoff and full jitter (a
\`Retry-After\` is honoured) until \`give_up_after\`, behind a circuit breaker. Records of one key (a group, an alert)
go out one at a time, in order. The task commits no offset before its deliveries are done, so a crash loses
nothing: the receiver may get a record again, with the same idempotency key. A refusal (another 4xx, a redirect)
dead-letters the record at once with reason \`delivery-refused\`, an exhausted budget with \`delivery-failed\`; the
detail names the status and the receiver's answer, never the URL or headers (they may hold secrets: take them from
allowlisted environment variables, \`\${SLACK_WEBHOOK_URL}\`).

**Metrics.** \`vigil_operator_events_total\` with event delivered, retry, refused, failed, breaker-open;
\`vigil_operator_duration_seconds{what="delivery"}\` per attempt; \`vigil_operator_state{name="breaker"}\` (0 closed,
1 half-open, 2 open).`.trim();

function deliveryOptions(c: HttpSinkConfig): Omit<DeliveryOptions, 'onEvent' | 'onLatency'> {
  return {
    timeoutMs: c.timeout,
    backoffMs: c.backoff,
    maxBackoffMs: c.max_backoff,
    giveUpAfterMs: c.give_up_after,
    concurrency: c.concurrency,
    breaker: { errorPercentage: c.circuit_breaker.error_percentage, minRequests: c.circuit_breaker.min_requests, resetMs: c.circuit_breaker.reset },
  };
}

/** Where a sink delivers, for `vigil plan`: scheme and host only (the path may be a secret). */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'an HTTP receiver';
  }
}

/** The input must be what `kind` reads: a route's notifications, or Alert records. */
function inputIssue(kind: 'notification' | 'alert', ctx: SinkCompileContext): SinkCompileResult | undefined {
  const name = schemaFullname(ctx.input.schema);
  if (kind === 'notification') {
    if (name === NOTIFICATION) return undefined;
    return { ok: false, issues: [{ path: ['from'], code: 'SINK_SCHEMA', message: `sink '${ctx.name}' delivers notifications (${NOTIFICATION}, from a route operator), but '${ctx.from}' produces ${name}` }] };
  }
  const fields = new Set(ctx.input.schema.fields.map((f) => f.name));
  const missing = ALERT_FIELDS.filter((f) => !fields.has(f));
  if (missing.length === 0) return undefined;
  return { ok: false, issues: [{ path: ['from'], code: 'SINK_SCHEMA', message: `sink '${ctx.name}' posts Alert records (vigil.alerting.Alert), but '${ctx.from}' produces ${name}, without ${missing.join(', ')}` }] };
}

// ---------------------------------------------------------------------------------------------
// Delivering

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** What a sink type makes of one record: the request, and the key whose records go in order. */
interface Outgoing {
  key: string;
  request: DeliveryRequest;
  /** Work the request must also wait for (besides the key's previous record). */
  after?: Promise<unknown>;
}

class DeliveryInstance implements OperatorInstance {
  protected http!: HttpDelivery;
  /** Per key: the delivery of its latest record, so that the next one waits for it. */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(
    private readonly options: Omit<DeliveryOptions, 'onEvent' | 'onLatency'>,
    private readonly outgoing: (value: Record<string, unknown>) => Outgoing,
  ) {}

  open(ctx: OperatorContext): void {
    this.http = new HttpDelivery({
      ...this.options,
      onEvent: (e) => {
        ctx.count(e);
        if (e.startsWith('breaker-')) ctx.gauge('breaker', BREAKER_STATE[this.http.breakerState]);
      },
      onLatency: (ms) => ctx.observe('delivery', ms / 1000),
    });
    ctx.gauge('breaker', 0);
  }

  process(record: StreamRecord, ctx: OperatorContext): void {
    const out = this.outgoing(record.value);
    this.deliver(out, ctx);
  }

  /** Delivers after the key's previous record; the outcome belongs to the record being processed. */
  protected deliver(out: Outgoing, ctx: OperatorContext): void {
    const tail = this.tails.get(out.key);
    const work = Promise.all([tail, out.after]).then(() => this.http.send(out.request));
    ctx.defer(work, (r, c) => settle(r, c));
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(out.key, settled);
    void settled.then(() => {
      if (this.tails.get(out.key) === settled) this.tails.delete(out.key);
    });
  }

  close(): void {
    this.http?.shutdown();
  }
}

/** The outcome of a record's delivery: nothing more, or a dead letter. */
function settle(r: DeliveryResult, ctx: OperatorContext): void {
  // aborted: the task is closing, its offsets uncommitted; the next owner delivers the record again.
  if (r.kind === 'failed') ctx.deadLetter(r.permanent ? 'delivery-refused' : 'delivery-failed', r.error);
}

function json(body: unknown, extra: Record<string, string> = {}): Pick<DeliveryRequest, 'headers' | 'body'> {
  return { headers: { 'content-type': 'application/json', ...extra }, body: JSON.stringify(body) };
}

function iso(ms: unknown): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString() : ZERO_TIME;
}

type Rec = Record<string, unknown>;

/** One alert as Alertmanager's webhook shows it; the fingerprint is the alert's id. */
function webhookAlert(a: Rec): Rec {
  return {
    status: String(a.status ?? 'FIRING').toLowerCase(),
    labels: routingLabels(a),
    annotations: alertAnnotations(a),
    startsAt: iso(a.starts_at ?? a.timestamp),
    endsAt: a.status === 'RESOLVED' ? iso(a.ends_at ?? a.timestamp) : ZERO_TIME,
    generatorURL: '',
    fingerprint: a.id,
  };
}

/** Alertmanager's webhook payload (version 4) for a notification. */
export function webhookPayload(n: Rec, externalUrl = ''): Rec {
  return {
    version: '4',
    groupKey: n.group_key,
    truncatedAlerts: n.truncated_alerts ?? 0,
    status: String(n.status).toLowerCase(),
    receiver: n.receiver,
    notification_reason: n.reason ?? 'unknown',
    groupLabels: n.group_labels ?? {},
    commonLabels: n.common_labels ?? {},
    commonAnnotations: n.common_annotations ?? {},
    // Alertmanager's route-level labels (a route `labels:` setting Vigil's routes do not have).
    routeLabels: {},
    externalURL: externalUrl,
    alerts: ((n.alerts ?? []) as Rec[]).map(webhookAlert),
  };
}

/** Alertmanager's default notification title: `[FIRING:2] group values (other common values)`. */
export function notificationTitle(n: Rec): string {
  const alerts = (n.alerts ?? []) as Rec[];
  const firing = alerts.filter((a) => a.status !== 'RESOLVED').length;
  const status = String(n.status);
  const group = (n.group_labels ?? {}) as LabelSet;
  const common = (n.common_labels ?? {}) as LabelSet;
  const values = (set: LabelSet) => Object.keys(set).sort().map((k) => set[k]);
  const rest = Object.fromEntries(Object.entries(common).filter(([k]) => !(k in group)));
  const extra = Object.keys(rest).length > 0 ? ` (${values(rest).join(' ')})` : '';
  return `[${status}${status === 'FIRING' ? `:${firing}` : ''}] ${values(group).join(' ')}${extra}`.replace(/\s+$/, '');
}

function groupHash(n: Rec): string {
  return createHash('sha256').update(String(n.group_key)).digest('hex');
}

function httpSink<C extends HttpSinkConfig>(d: {
  type: string;
  summary: string;
  description: string;
  config: ConfigSpec;
  examples: { title: string; yaml: string }[];
  reads: 'notification' | 'alert';
  build(config: C, ctx: SinkCompileContext): { create(): OperatorInstance; stores?: StoreDecl[] };
}): SinkDefinition<C> {
  return {
    type: d.type,
    summary: d.summary,
    description: `${d.description}\n\n${DELIVERY_DOC}`,
    config: { url: { kind: 'url', description: 'Where to POST: http(s), a host of `allowed_hosts`.' }, headers: HEADERS, ...d.config, ...DELIVERY },
    examples: d.examples,
    compile(config, ctx) {
      const wrong = inputIssue(d.reads, ctx);
      if (wrong !== undefined) return wrong;
      const built = d.build(config, ctx);
      return {
        ok: true,
        sink: {
          kind: 'deliver',
          description: `${d.type} to ${where(config.url)}`,
          deliver: { outputs: [], ...(built.stores !== undefined ? { stores: built.stores } : {}), create: built.create },
        },
      };
    },
  };
}

/**
 * The delivery of a route's notifications: `payload` shapes each; one group's go out in order; the
 * notification's id is the Idempotency-Key header.
 */
function notifications<C extends HttpSinkConfig>(payload: (n: Rec, config: C) => unknown): (config: C) => { create(): OperatorInstance } {
  return (config) => {
    const options = deliveryOptions(config);
    return {
      create: () =>
        new DeliveryInstance(options, (n) => ({
          key: String(n.group_key),
          request: { url: config.url, ...json(payload(n, config), { 'idempotency-key': String(n.id), ...config.headers }) },
        })),
    };
  };
}

const ROUTE_EXAMPLE = (sink: string) => `allowed_hosts: [hooks.slack.com, events.pagerduty.com, alerts.internal]
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert }
operators:
  - name: notify
    type: route
    route: { receiver: team, group_by: [alertname] }
sinks:
${sink}`;

// ---------------------------------------------------------------------------------------------
// webhook

export interface WebhookConfig extends HttpSinkConfig {
  external_url: string;
}

export const webhookSink = httpSink<WebhookConfig>({
  type: 'webhook',
  summary: "POSTs a route's notifications in Alertmanager's webhook format, so receivers written for Alertmanager work unchanged.",
  description: `
Reads the notifications of a \`route\` operator (\`from: route\` or \`from: route.<receiver>\`) and POSTs each as
Alertmanager's webhook payload (version 4, as v0.35 sends it): \`status\`, \`receiver\`, \`notification_reason\`, \`groupKey\`,
\`groupLabels\`, \`commonLabels\`, \`commonAnnotations\`, \`routeLabels\` (empty), \`externalURL\`, \`truncatedAlerts\` and \`alerts\` (each with \`status\`, \`labels\` as the routes saw them,
\`annotations\` with the summary, \`startsAt\`, \`endsAt\` — \`0001-01-01T00:00:00Z\` while firing — and \`fingerprint\`, the
alert's id). The notification's id is sent as the \`Idempotency-Key\` header: the same for the same notification,
also when it is sent again after a crash, so a receiver can drop duplicates.`.trim(),
  config: {
    external_url: { kind: 'string', default: '', freeText: true, description: 'The payload\'s externalURL (where people can see the alerts).' },
  },
  examples: [{ title: 'Notifications to an Alertmanager webhook receiver', yaml: ROUTE_EXAMPLE('  - { name: hook, from: notify, type: webhook, url: "https://alerts.internal/hook" }\n') }],
  reads: 'notification',
  build: notifications<WebhookConfig>((n, config) => webhookPayload(n, config.external_url)),
});

// ---------------------------------------------------------------------------------------------
// slack

export interface SlackConfig extends HttpSinkConfig {
  channel?: string;
  username: string;
}

/** A Slack incoming-webhook message for a notification, as Alertmanager's default Slack config writes it. */
export function slackPayload(n: Rec, c: { channel?: string; username: string }): Rec {
  const alerts = (n.alerts ?? []) as Rec[];
  const lines = alerts.map((a) => {
    const ann = alertAnnotations(a);
    return `• [${String(a.status ?? 'FIRING').toLowerCase()}] ${ann.summary ?? a.rule}${a.entity ? ` (${String(a.entity)})` : ''}`;
  });
  if (Number(n.truncated_alerts ?? 0) > 0) lines.push(`… and ${String(n.truncated_alerts)} more`);
  const title = notificationTitle(n);
  return {
    ...(c.channel !== undefined ? { channel: c.channel } : {}),
    username: c.username,
    text: title,
    attachments: [{ color: n.status === 'FIRING' ? 'danger' : 'good', title, text: lines.join('\n'), fallback: title, mrkdwn_in: ['text'] }],
  };
}

export const slackSink = httpSink<SlackConfig>({
  type: 'slack',
  summary: "Posts a route's notifications to a Slack incoming webhook.",
  description: `
Reads the notifications of a \`route\` operator and posts each to a Slack incoming webhook: Alertmanager's default title
(\`[FIRING:2] HighCPU api\`) and colour (danger while firing, good when resolved), and one line per alert with its
status, summary and entity. The webhook URL is a secret: give it as \`url: \${SLACK_WEBHOOK_URL}\` with the variable
allowlisted and \`hooks.slack.com\` in \`allowed_hosts\`.`.trim(),
  config: {
    channel: { kind: 'string', optional: true, description: 'Channel to post in (default: the webhook\'s).', examples: ['#oncall'] },
    username: { kind: 'string', default: 'Vigil', description: 'The name the message is posted under.' },
  },
  examples: [{ title: 'Notifications to Slack', yaml: ROUTE_EXAMPLE('  - { name: chat, from: notify, type: slack, url: "https://hooks.slack.com/services/T000/B000/XXXX", channel: "#oncall" }\n') }],
  reads: 'notification',
  build: notifications<SlackConfig>(slackPayload),
});

// ---------------------------------------------------------------------------------------------
// pagerduty

export interface PagerDutyConfig extends HttpSinkConfig {
  routing_key: string;
  source: string;
  client: string;
  client_url?: string;
}

const PD_SEVERITY: Record<string, string> = { critical: 'critical', error: 'error', warning: 'warning', info: 'info' };

/** A PagerDuty Events API v2 event for a notification: trigger while firing, resolve after; dedup_key per group. */
export function pagerDutyPayload(n: Rec, c: { routing_key: string; source: string; client: string; client_url?: string }): Rec {
  const alerts = (n.alerts ?? []) as Rec[];
  const firing = alerts.filter((a) => a.status !== 'RESOLVED');
  const resolved = alerts.filter((a) => a.status === 'RESOLVED');
  const severity = PD_SEVERITY[((n.common_labels ?? {}) as LabelSet).severity ?? ''] ?? 'error';
  const describe = (list: Rec[]) => list.map((a) => ({ alertname: a.rule, entity: a.entity, summary: a.summary, labels: routingLabels(a) }));
  return {
    routing_key: c.routing_key,
    event_action: n.status === 'FIRING' ? 'trigger' : 'resolve',
    dedup_key: groupHash(n),
    payload: {
      summary: notificationTitle(n).slice(0, 1024),
      source: c.source,
      severity,
      timestamp: iso(n.timestamp),
      custom_details: { firing: describe(firing), resolved: describe(resolved), num_firing: firing.length, num_resolved: resolved.length },
    },
    client: c.client,
    ...(c.client_url !== undefined ? { client_url: c.client_url } : {}),
  };
}

export const pagerDutySink = httpSink<PagerDutyConfig>({
  type: 'pagerduty',
  summary: "Sends a route's notifications to PagerDuty's Events API v2.",
  description: `
Reads the notifications of a \`route\` operator and sends each as a PagerDuty Events API v2 event: \`trigger\` while the
group fires, \`resolve\` once it is resolved, with \`dedup_key\` the SHA-256 of the group key (as Alertmanager does), so
PagerDuty keeps one incident per group and drops repeats. The severity is the group's common \`severity\` label
(critical, error, warning, info; else error). The routing key is a secret: \`routing_key: \${PD_ROUTING_KEY}\`.`.trim(),
  config: {
    routing_key: { kind: 'string', freeText: true, description: 'The integration\'s routing key (from an allowlisted environment variable).', examples: ['${PD_ROUTING_KEY}'] },
    source: { kind: 'string', default: 'vigil', freeText: true, description: 'The event\'s source.' },
    client: { kind: 'string', default: 'Vigil', freeText: true, description: 'The monitoring client named in the incident.' },
    client_url: { kind: 'string', optional: true, freeText: true, description: 'A link back to the monitoring client.' },
  },
  examples: [
    { title: 'Pages through PagerDuty', yaml: ROUTE_EXAMPLE('  - { name: page, from: notify, type: pagerduty, url: "https://events.pagerduty.com/v2/enqueue", routing_key: "R0UTINGKEY" }\n') },
  ],
  reads: 'notification',
  build: notifications<PagerDutyConfig>(pagerDutyPayload),
});

// ---------------------------------------------------------------------------------------------
// alertmanager

export interface AlertmanagerConfig extends HttpSinkConfig {
  resend_interval: number;
  generator_url: string;
}

/**
 * An Alert record as Alertmanager's API takes it (postableAlert). Alerts of the alert operator are
 * identified by their labels (alertname included), as Prometheus sends them, so Alertmanager's
 * fingerprint is the alert's id; category, priority and entity then travel as annotations. Other
 * Alert records carry the labels the route operator would see.
 */
export function alertmanagerAlert(a: Rec, endsAt: number | undefined, generatorUrl = ''): Rec {
  const own = (a.labels ?? {}) as LabelSet;
  const identified = typeof own.alertname === 'string';
  const labels = identified ? Object.fromEntries(Object.entries(own).filter(([, v]) => v !== '')) : routingLabels(a);
  const annotations = alertAnnotations(a);
  if (identified) {
    const all = routingLabels(a);
    for (const k of ['category', 'priority', 'entity']) if (all[k] !== undefined && labels[k] === undefined && annotations[k] === undefined) annotations[k] = all[k]!;
  }
  return {
    labels,
    annotations,
    startsAt: iso(a.starts_at ?? a.timestamp),
    ...(endsAt !== undefined ? { endsAt: iso(endsAt) } : {}),
    generatorURL: generatorUrl,
  };
}

/** Alerts re-posted in one request at most. */
const RESEND_BATCH = 64;

class AlertmanagerInstance extends DeliveryInstance {
  private ctx!: OperatorContext;
  /** The re-posts of the latest resend interval, until they are done. */
  private resending: Promise<unknown> = Promise.resolve();

  constructor(
    options: Omit<DeliveryOptions, 'onEvent' | 'onLatency'>,
    private readonly c: AlertmanagerConfig,
    private readonly endpoint: string,
  ) {
    super(options, () => {
      throw new Error('unused');
    });
  }

  override open(ctx: OperatorContext): void {
    super.open(ctx);
    this.ctx = ctx;
    ctx.schedule({ kind: 'wall', at: ctx.now() + this.c.resend_interval, key: 'resend' });
  }

  /** Firing alerts are kept and re-posted with an endsAt ahead, as Prometheus does (4 resend intervals). */
  private validUntil(): number {
    return this.ctx.now() + 4 * this.c.resend_interval;
  }

  override process(record: StreamRecord, ctx: OperatorContext): void {
    const a = record.value;
    const id = String(a.id);
    const firing = ctx.kv<string>('firing');
    const resolved = a.status === 'RESOLVED';
    if (resolved) firing.delete(id);
    const alert = alertmanagerAlert(a, resolved ? Number(a.ends_at ?? a.timestamp) : undefined, this.c.generator_url);
    if (!resolved) firing.put(id, JSON.stringify(alert));
    const body = [resolved ? alert : { ...alert, endsAt: iso(this.validUntil()) }];
    // A resolve waits for a re-post in flight: landing after it, the re-post would fire the alert again.
    this.deliver({ key: id, request: { url: this.endpoint, ...json(body, this.c.headers) }, ...(resolved ? { after: this.resending } : {}) }, ctx);
  }

  onTimer(timer: Timer, ctx: OperatorContext): void {
    if (timer.key !== 'resend') return;
    ctx.schedule({ kind: 'wall', at: ctx.now() + this.c.resend_interval, key: 'resend' });
    const until = iso(this.validUntil());
    let batch: Rec[] = [];
    const sends: Promise<unknown>[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      // Best effort: a failed re-post is counted; the next interval posts again.
      const request = { url: this.endpoint, ...json(batch, this.c.headers) };
      sends.push(
        this.http.send(request).then((r) => {
          if (r.kind === 'failed') ctx.count('resend-failed');
        }),
      );
      batch = [];
    };
    for (const [, v] of ctx.kv<string>('firing').entries()) {
      batch.push({ ...(JSON.parse(v) as Rec), endsAt: until });
      if (batch.length >= RESEND_BATCH) flush();
    }
    flush();
    this.resending = Promise.all(sends);
  }
}

export const alertmanagerSink = httpSink<AlertmanagerConfig>({
  type: 'alertmanager',
  summary: "Posts Alert records to an existing Alertmanager's API (/api/v2/alerts), as Prometheus does.",
  description: `
For teams that already route with Alertmanager: reads Alert records (from the \`alert\` operator, or any
\`vigil.alerting.Alert\`) and posts each transition to \`<url>/api/v2/alerts\`. Firing alerts are kept in a store and
re-posted every \`resend_interval\` with \`endsAt\` four intervals ahead, as Prometheus does, so Alertmanager keeps them
firing while Vigil does and resolves them on its own if Vigil stops; a resolved alert is posted with its \`endsAt\`.
Alerts of the \`alert\` operator are sent with their labels (alertname included), so Alertmanager's fingerprint is
the alert's id; \`category\`, \`priority\` and \`entity\` travel as annotations. Alerts of one id go out in order.`.trim(),
  config: {
    resend_interval: { kind: 'duration', default: '1m', min: 1000, description: 'How often firing alerts are posted again (Prometheus\' resend_delay).' },
    generator_url: { kind: 'string', default: '', freeText: true, description: 'The alerts\' generatorURL (a link back to where they come from).' },
  },
  examples: [
    {
      title: 'Alerts to an existing Alertmanager',
      yaml: `allowed_hosts: [alertmanager.internal:9093]
sources:
  - { name: metrics, topic: metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp }
operators:
  - name: cpu-high
    type: alert
    condition: name == "cpu" && value > 90
    labels: { host: host }
    for: 5m
    severity: critical
sinks:
  - { name: am, from: cpu-high, type: alertmanager, url: "http://alertmanager.internal:9093" }
`,
    },
  ],
  reads: 'alert',
  build(config) {
    const options = deliveryOptions(config);
    const endpoint = `${config.url.replace(/\/+$/, '')}/api/v2/alerts`;
    return {
      stores: [{ name: 'firing', kind: 'kv', value: 'string' }],
      create: () => new AlertmanagerInstance(options, config, endpoint),
    };
  },
});

/** The receivers, in the order of the docs. */
export const receiverSinks: readonly SinkDefinition<any>[] = [webhookSink, slackSink, pagerDutySink, alertmanagerSink];
