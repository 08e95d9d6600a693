// Receivers against real HTTP servers on loopback that answer, fail, flap, stall and refuse: the
// payload shapes (Alertmanager's webhook, Slack, PagerDuty Events v2, Alertmanager's API), the
// retry policy, order within a group, dead letters for refusals and exhausted budgets, and no
// secret in any message.
import { afterEach, describe, expect, it } from 'vitest';
import { TestDriver } from '../../runtime/test-driver.ts';
import type { TopologyError } from '../../kernel/diagnostics.ts';
import { retryAfterMs } from '../../connectors/http-delivery.ts';
import { notificationTitle, pagerDutyPayload, slackPayload } from '../../connectors/receivers.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { Answer, ScriptedServer } from '../helpers/http-server.ts';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const SECRET = 's3cr3t-path-T0KEN';
const TOKEN = 'b3arer-T0KEN';
const env = { HOOK_SECRET: SECRET, HOOK_TOKEN: TOKEN, VIGIL_ENV_ALLOWLIST: 'HOOK_SECRET,HOOK_TOKEN' };

const topology = (host: string, sink: string) => `version: 1
name: rx
allowed_hosts: [${host}]
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, timestamp: timestamp, partitions: 1 }
operators:
  - name: notify
    type: route
    wall_clock: false
    route: { receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1m }
sinks:
  - ${sink}
`;

const hook = (host: string, more = '') =>
  topology(host, `{ name: hook, from: notify, type: webhook, url: "http://${host}/hook/\${HOOK_SECRET}", headers: { Authorization: "Bearer \${HOOK_TOKEN}" }, backoff: 1ms, max_backoff: 5ms${more} }`);

function alert(rule: string, entity: string, at: number, status: 'FIRING' | 'RESOLVED' = 'FIRING'): Record<string, unknown> {
  return {
    id: `${rule}-${entity}`,
    timestamp: at,
    rule,
    entity,
    category: 'SYSTEM',
    severity: 'CRITICAL',
    priority: 1,
    summary: `${rule} on ${entity}`,
    value: 97,
    threshold: 90,
    labels: { alertname: rule, host: entity, severity: 'critical' },
    status,
    starts_at: 1_000,
    ends_at: status === 'RESOLVED' ? at : null,
    annotations: { runbook: 'https://runbooks/cpu' },
  };
}

/** Pipes the alerts; `end`: then the end of input (groups still pending flush, firing ones repeat once). */
async function run(yaml: string, records: Array<Record<string, unknown>>, end = false): Promise<TestDriver> {
  const d = new TestDriver(planYamlBuiltin(yaml, 'rx.yaml', { env }));
  for (const r of records) await d.pipeAsync('alerts', r, { key: String(r.id) });
  if (end) d.endOfInput();
  await d.settle();
  return d;
}

const bodies = (s: ScriptedServer) => s.received.map((r) => JSON.parse(r.body) as Record<string, any>);

describe('webhook receiver', () => {
  it("posts Alertmanager's webhook payload (version 4) with the notification id as Idempotency-Key, and the secret headers", async () => {
    server = await scriptedServer(() => ({ status: 200 }));
    const d = await run(hook(server.host), [alert('HighCPU', 'db-1', 60_000), alert('HighCPU', 'db-1', 200_000, 'RESOLVED')], true);
    expect(d.deadLetters()).toEqual([]);
    expect(server.received.map((r) => [r.method, r.path])).toEqual([
      ['POST', `/hook/${SECRET}`],
      ['POST', `/hook/${SECRET}`],
    ]);
    const notes = d.recorded('notify');
    expect(server.received.map((r) => r.headers['idempotency-key'])).toEqual(notes.map((n) => n.value.id));
    expect(server.received[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(server.received[0]!.headers['content-type']).toBe('application/json');
    const [firing, resolved] = bodies(server);
    expect(firing).toEqual({
      version: '4',
      groupKey: '{}:{alertname="HighCPU"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'team',
      notification_reason: 'first notification',
      groupLabels: { alertname: 'HighCPU' },
      commonLabels: { alertname: 'HighCPU', category: 'system', entity: 'db-1', host: 'db-1', priority: '1', severity: 'critical' },
      commonAnnotations: { summary: 'HighCPU on db-1', runbook: 'https://runbooks/cpu' },
      routeLabels: {},
      externalURL: '',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'HighCPU', category: 'system', entity: 'db-1', host: 'db-1', priority: '1', severity: 'critical' },
          annotations: { summary: 'HighCPU on db-1', runbook: 'https://runbooks/cpu' },
          startsAt: '1970-01-01T00:00:01.000Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: '',
          fingerprint: 'HighCPU-db-1',
        },
      ],
    });
    expect([resolved!.status, resolved!.notification_reason]).toEqual(['resolved', 'all alerts resolved']);
    expect(resolved!.alerts[0].endsAt).toBe('1970-01-01T00:03:20.000Z');
  });

  it('a flapping, stalling receiver gets every notification, each group in order; nothing is dead-lettered', async () => {
    // Per path attempt: fail, stall past the timeout, 503 with Retry-After, then answer.
    const never = new Promise(() => undefined);
    const attempts = new Map<string, number>();
    server = await scriptedServer((_path, _n, req) => {
      const id = String(req.headers['idempotency-key']);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const script: Answer[] = [{ status: 500, text: 'boom' }, { after: never }, { status: 503, headers: { 'retry-after': '0' } }, { status: 202 }];
      return script[Math.min(n, script.length) - 1]!;
    });
    const records = [];
    for (let i = 0; i < 6; i++) records.push(alert(i % 2 === 0 ? 'HighCPU' : 'DiskFull', `h${i}`, 60_000 + i * 61_000));
    const d = await run(hook(server.host, ', timeout: 200ms, circuit_breaker: { reset: 10ms }'), records, true);
    expect(d.deadLetters()).toEqual([]);
    const notes = d.recorded('notify').map((n) => String(n.value.id));
    expect(notes.length).toBeGreaterThanOrEqual(4);
    const delivered = server.received.filter((r) => attempts.get(String(r.headers['idempotency-key']))! >= 4);
    // Every notification reached the 4th attempt (the one answered 202), and no more.
    expect([...attempts.keys()].sort()).toEqual([...notes].sort());
    expect([...attempts.values()].every((n) => n === 4)).toBe(true);
    expect(delivered.length).toBe(server.received.length);
    // Within a group, a notification's first attempt comes after the previous one's success.
    for (const group of ['HighCPU', 'DiskFull']) {
      const ids = d.recorded('notify').filter((n) => String(n.value.group_key).includes(group)).map((n) => String(n.value.id));
      const firstSeen = ids.map((id) => server!.received.findIndex((r) => r.headers['idempotency-key'] === id));
      const lastSeen = ids.map((id) => server!.received.map((r) => r.headers['idempotency-key']).lastIndexOf(id));
      for (let i = 1; i < ids.length; i++) expect(firstSeen[i]).toBeGreaterThan(lastSeen[i - 1]!);
    }
  });

  it('a refusal is dead-lettered at once with the status and the answer, never the URL or the headers', async () => {
    server = await scriptedServer(() => ({ status: 400, text: 'unknown field "version"' }));
    const d = await run(hook(server.host), [alert('HighCPU', 'db-1', 60_000)]);
    expect(server.received).toHaveLength(1);
    const dl = d.deadLetters();
    expect(dl.map((x) => [x.stage, x.reason, x.node, x.detail])).toEqual([['operator', 'delivery-refused', 'hook', 'HTTP 400: unknown field "version"']]);
    const everything = JSON.stringify(dl);
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(TOKEN);
  });

  it('when the budget runs out, the record is dead-lettered with the last cause and the attempts', async () => {
    server = await scriptedServer(() => ({ status: 502 }));
    const d = await run(hook(server.host, ', give_up_after: 30ms'), [alert('HighCPU', 'db-1', 60_000)]);
    const [dl] = d.deadLetters();
    expect([dl!.reason, dl!.node]).toEqual(['delivery-failed', 'hook']);
    expect(dl!.detail).toMatch(/^HTTP 502 \(\d+ attempts? in \d+ s(; the circuit breaker is open)?\)$/);
    expect(server.received.length).toBeGreaterThanOrEqual(1);
  });

  it('a redirect is a refusal, not followed', async () => {
    server = await scriptedServer(() => ({ status: 307, headers: { location: 'http://elsewhere.internal/' } }));
    const d = await run(hook(server.host), [alert('HighCPU', 'db-1', 60_000)]);
    expect(d.deadLetters().map((x) => [x.reason, x.detail])).toEqual([['delivery-refused', 'HTTP 307 (a redirect: receivers\' redirects are not followed)']]);
  });

  it('reads notifications only, and plans without the secret', () => {
    try {
      planYamlBuiltin(topology('x.internal', '{ name: hook, from: alerts, type: webhook, url: "http://x.internal/hook" }'), 'rx.yaml');
      throw new Error('accepted');
    } catch (e) {
      expect((e as TopologyError).format()).toMatch(/rx\.yaml:12:\d+: sink 'hook' delivers notifications \(vigil\.alerting\.Notification, from a route operator\), but 'alerts' produces vigil\.alerting\.Alert/);
    }
    const plan = planYamlBuiltin(hook('x.internal'), 'rx.yaml', { env });
    expect(JSON.stringify(plan.topology.sinks.map((s) => s.deliver?.description))).toBe('["webhook to http://x.internal"]');
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(30_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});

const NOTE = {
  id: 'abc-1',
  timestamp: 60_000,
  receiver: 'team',
  status: 'FIRING',
  group_key: '{}:{alertname="HighCPU"}',
  group_labels: { alertname: 'HighCPU' },
  common_labels: { alertname: 'HighCPU', severity: 'critical', team: 'db' },
  common_annotations: {},
  alerts: [alert('HighCPU', 'db-1', 60_000), alert('HighCPU', 'db-2', 60_000, 'RESOLVED')],
  truncated_alerts: 0,
  sequence: 1,
};

describe('Slack and PagerDuty payloads', () => {
  it("titles a notification as Alertmanager's default template does", () => {
    expect(notificationTitle(NOTE)).toBe('[FIRING:1] HighCPU (critical db)');
    expect(notificationTitle({ ...NOTE, status: 'RESOLVED', common_labels: { alertname: 'HighCPU' } })).toBe('[RESOLVED] HighCPU');
  });

  it('a Slack message: title, colour by status, a line per alert', () => {
    expect(slackPayload(NOTE, { channel: '#oncall', username: 'Vigil' })).toEqual({
      channel: '#oncall',
      username: 'Vigil',
      text: '[FIRING:1] HighCPU (critical db)',
      attachments: [
        {
          color: 'danger',
          title: '[FIRING:1] HighCPU (critical db)',
          text: '• [firing] HighCPU on db-1 (db-1)\n• [resolved] HighCPU on db-2 (db-2)',
          fallback: '[FIRING:1] HighCPU (critical db)',
          mrkdwn_in: ['text'],
        },
      ],
    });
  });

  it('a PagerDuty event: trigger then resolve under one dedup_key per group', () => {
    const c = { routing_key: 'RK', source: 'vigil', client: 'Vigil' };
    const t = pagerDutyPayload(NOTE, c);
    const r = pagerDutyPayload({ ...NOTE, status: 'RESOLVED', id: 'abc-2' }, c);
    expect([t.event_action, r.event_action]).toEqual(['trigger', 'resolve']);
    expect(t.dedup_key).toBe(r.dedup_key);
    expect(t.dedup_key).toMatch(/^[0-9a-f]{64}$/);
    expect(t.routing_key).toBe('RK');
    expect(t.payload).toMatchObject({ summary: '[FIRING:1] HighCPU (critical db)', source: 'vigil', severity: 'critical', timestamp: '1970-01-01T00:01:00.000Z' });
    expect((t.payload as any).custom_details.num_firing).toBe(1);
    expect(pagerDutyPayload({ ...NOTE, common_labels: {} }, c).payload).toMatchObject({ severity: 'error' });
  });
});

describe('alertmanager receiver', () => {
  const amTopology = (host: string) => `version: 1
name: rx
allowed_hosts: [${host}]
sources:
  - { name: alerts, topic: alerts, schema: vigil.alerting.Alert, timestamp: timestamp, partitions: 1 }
sinks:
  - { name: am, from: alerts, type: alertmanager, url: "http://${host}/", resend_interval: 1m, backoff: 1ms, max_backoff: 5ms }
`;

  it('posts each transition to /api/v2/alerts, re-posts firing alerts every resend_interval with endsAt ahead, and stops after resolve', async () => {
    server = await scriptedServer(() => ({ status: 200 }));
    const d = new TestDriver(planYamlBuiltin(amTopology(server.host), 'rx.yaml'));
    await d.pipeAsync('alerts', alert('HighCPU', 'db-1', 60_000), { key: 'a' });
    expect(server.received.map((r) => [r.method, r.path])).toEqual([['POST', '/api/v2/alerts']]);
    const [first] = bodies(server)[0] as unknown as Array<Record<string, unknown>>;
    expect(first).toEqual({
      labels: { alertname: 'HighCPU', host: 'db-1', severity: 'critical' },
      annotations: { summary: 'HighCPU on db-1', runbook: 'https://runbooks/cpu', category: 'system', priority: '1', entity: 'db-1' },
      startsAt: '1970-01-01T00:00:01.000Z',
      endsAt: new Date(d.now() + 4 * 60_000).toISOString(),
      generatorURL: '',
    });
    d.advanceWallClock(60_000);
    await d.settle();
    await vitestWaitFor(() => server!.received.length === 2);
    expect((bodies(server)[1] as unknown as unknown[])[0]).toMatchObject({ labels: first!.labels, endsAt: new Date(d.now() + 4 * 60_000).toISOString() });
    await d.pipeAsync('alerts', alert('HighCPU', 'db-1', 300_000, 'RESOLVED'), { key: 'a' });
    expect((bodies(server)[2] as unknown as unknown[])[0]).toMatchObject({ labels: first!.labels, endsAt: '1970-01-01T00:05:00.000Z' });
    d.advanceWallClock(60_000);
    await d.settle();
    expect(server.received).toHaveLength(3);
  });

  it('reads Alert records only', () => {
    try {
      planYamlBuiltin(amTopology('x.internal').replace('schema: vigil.alerting.Alert', 'schema: vigil.telemetry.MetricSample'), 'rx.yaml');
      throw new Error('accepted');
    } catch (e) {
      expect((e as TopologyError).format()).toMatch(/sink 'am' posts Alert records \(vigil\.alerting\.Alert\), but 'alerts' produces vigil\.telemetry\.MetricSample, without id, rule/);
    }
  });
});

/** Waits for a condition that an HTTP request in flight will make true (an event, not a duration). */
async function vitestWaitFor(cond: () => boolean): Promise<void> {
  const { vi } = await import('vitest');
  await vi.waitFor(() => {
    if (!cond()) throw new Error('not yet');
  }, { timeout: 30_000, interval: 5 });
}
