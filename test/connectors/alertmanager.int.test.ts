// Against a real Alertmanager (v0.35.0 from the Go module proxy, built into the git-ignored cache):
// the alertmanager receiver's alerts show through Alertmanager's own API with Alertmanager's
// fingerprint equal to Vigil's alert id, and resolve; and Vigil's webhook payload has the shape of
// the one Alertmanager itself sends for the same alert, so receivers written for it work unchanged.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TestDriver } from '../../runtime/test-driver.ts';
import { planYamlBuiltin } from '../helpers/topology.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { ScriptedServer } from '../helpers/http-server.ts';
import { ALERTMANAGER_VERSION, alertmanagerBinary, alertmanagerUnavailable, startAlertmanager } from '../helpers/alertmanager.ts';
import type { RunningAlertmanager } from '../helpers/alertmanager.ts';

const unavailable = await alertmanagerUnavailable();

/** Alert (rule) -> route -> webhook, and the same alerts -> alertmanager. */
const topology = (am: string, hook: string) => `version: 1
name: am-parity
allowed_hosts: [${am}, ${hook}]
sources:
  - { name: metrics, topic: metrics, schema: vigil.telemetry.MetricSample, key: [host], timestamp: timestamp, partitions: 1 }
operators:
  - name: cpu-high
    type: alert
    condition: name == "cpu" && value > 90
    labels: { host: host }
    severity: critical
    annotations: { description: "cpu at {value} on {host}" }
  - name: notify
    type: route
    from: cpu-high
    wall_clock: false
    route: { receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1m }
sinks:
  - { name: am, from: cpu-high, type: alertmanager, url: "http://${am}", backoff: 10ms }
  - { name: hook, from: notify, type: webhook, url: "http://${hook}/vigil", backoff: 10ms }
`;

// The reason is printed by vitest's skip: only where no Go toolchain exists to build Alertmanager.
describe.skipIf(unavailable !== undefined)(`a real Alertmanager ${ALERTMANAGER_VERSION}${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let am: RunningAlertmanager;
  let hook: ScriptedServer;

  beforeAll(async () => {
    await alertmanagerBinary();
    hook = await scriptedServer(() => ({ status: 200 }));
    am = await startAlertmanager(`route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: ${hook.base}/am
        send_resolved: true
`);
  }, 900_000);

  afterAll(async () => {
    await am?.stop();
    await hook?.close();
  });

  const amAlerts = async () => (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as Array<Record<string, any>>;

  it('receives the alerts, shows them with its fingerprint equal to the alert id, resolves them; its webhook and Vigil\'s have one shape', async () => {
    // Alertmanager compares endsAt with its own clock: the driver's wall clock is the real one.
    const d = new TestDriver(planYamlBuiltin(topology(am.host, hook.host), 'am.yaml'), { wallClock: Date.now() });
    const t0 = Date.now() - 60_000;
    const sample = (value: number, at: number) => ({ timestamp: at, name: 'cpu', host: 'db-1', value, unit: null, tags: {} });
    await d.pipeAsync('metrics', sample(97, t0), { key: 'db-1' });
    const [vigil] = d.recorded('cpu-high');
    expect(vigil!.value.status).toBe('FIRING');

    const shown = await amAlerts();
    expect(shown).toHaveLength(1);
    expect(shown[0]!.fingerprint).toBe(vigil!.value.id);
    expect(shown[0]!.labels).toEqual({ alertname: 'cpu-high', host: 'db-1', severity: 'critical' });
    expect(shown[0]!.annotations).toEqual({ summary: expect.any(String), description: 'cpu at 97 on db-1', priority: '2', entity: 'db-1' });
    expect(shown[0]!.status.state).toBe('active');
    expect(Date.parse(shown[0]!.startsAt)).toBe(t0);

    // Alertmanager notifies its webhook receiver; Vigil's route notifies Vigil's webhook sink.
    await vi.waitFor(() => expect(hook.received.filter((r) => r.path === '/am')).toHaveLength(1), { timeout: 60_000, interval: 20 });
    const fromAm = JSON.parse(hook.received.find((r) => r.path === '/am')!.body) as Record<string, any>;
    const fromVigil = JSON.parse(hook.received.find((r) => r.path === '/vigil')!.body) as Record<string, any>;
    expect(Object.keys(fromVigil).sort()).toEqual(Object.keys(fromAm).sort());
    expect(Object.keys(fromVigil.alerts[0]).sort()).toEqual(Object.keys(fromAm.alerts[0]).sort());
    for (const k of ['version', 'status', 'notification_reason', 'groupKey', 'groupLabels', 'routeLabels', 'truncatedAlerts']) expect([k, fromVigil[k]]).toEqual([k, fromAm[k]]);
    expect(fromVigil.alerts[0].fingerprint).toBe(fromAm.alerts[0].fingerprint);
    expect(fromVigil.alerts[0].status).toBe(fromAm.alerts[0].status);
    expect(fromVigil.alerts[0].endsAt).toBe(fromAm.alerts[0].endsAt);
    expect(fromVigil.alerts[0].labels).toMatchObject(fromAm.alerts[0].labels);

    // The condition stops: resolved in Vigil, then gone from Alertmanager's active alerts.
    await d.pipeAsync('metrics', sample(20, t0 + 30_000), { key: 'db-1' });
    expect(d.recorded('cpu-high').map((r) => r.value.status)).toEqual(['FIRING', 'RESOLVED']);
    expect(await amAlerts()).toEqual([]);
    expect(d.deadLetters()).toEqual([]);
  });
});
