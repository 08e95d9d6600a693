// Escalation and acknowledgement on the real broker, with real HTTP receivers on loopback:
// - an escalation that falls due while the instance is down (SIGKILL) is paged after it restarts;
// - an acknowledgement posted to the restarted instance's /ack endpoint goes through the ack topic
//   and stops the escalation: the next level is never paged, and the audit topic says who acked;
// - `vigil report` on its audit topic shows who was paged at which level and who acknowledged;
// - `vigil ack` and `vigil silence add|list|expire` write and read their topics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { exited, produceRaw, readAll, spawnVigil, testRegistry, topologyFile, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { ScriptedServer } from '../helpers/http-server.ts';

/** Level timeouts: long enough that the first page arrives before level 2 is due, on a loaded machine too. */
const TIMEOUT_S = 10;

let registry: Registry;
let server: ScriptedServer;
beforeAll(async () => {
  registry = await testRegistry();
  server = await scriptedServer(() => ({ status: 200 }));
});
afterAll(async () => {
  await server?.close();
  await registry?.close();
});

const metricsUrl = (output: string): string | undefined => /metrics and health at (http:\/\/\S+)\/metrics/.exec(output)?.[1];

describe('escalation on the real broker', () => {
  it('an escalation due while the instance was down is paged after the restart; an ack through /ack stops the next level', async () => {
    const name = uniqueName('escalate');
    const alerts = `${name}.alerts`;
    const acks = `${name}.acks`;
    const audit = `${name}.audit`;
    await createTopics([alerts, acks], { partitions: 1 });
    const yaml = `
version: 1
name: ${name}
guarantee: exactly_once
commit_interval: 100ms
allowed_hosts: [${server.host}]
sources:
  - { name: alerts, topic: ${alerts}, schema: vigil.alerting.Alert, timestamp: timestamp, partitions: 1 }
  - { name: acks, topic: ${acks}, schema: vigil.alerting.Ack, timestamp: timestamp, partitions: 1 }
operators:
  - name: notify
    type: route
    from: alerts
    route: { receiver: oncall, group_by: [alertname], group_wait: 0s }
  - name: oncall
    type: escalate
    from: { in: notify.oncall, acks: acks }
    levels:
      - { receiver: primary, timeout: ${TIMEOUT_S}s }
      - { receiver: secondary, timeout: ${TIMEOUT_S}s }
      - { receiver: manager }
sinks:
  - { name: primary, from: oncall.primary, type: webhook, url: "${server.base}/primary" }
  - { name: secondary, from: oncall.secondary, type: webhook, url: "${server.base}/secondary" }
  - { name: manager, from: oncall.manager, type: webhook, url: "${server.base}/manager" }
  - { name: audit, from: oncall.audit, topic: ${audit} }
`;
    const file = topologyFile(yaml);
    const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
    const start = (instance: string) => spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', '6000', '--instance', instance], env);
    const paged = (path: string) => server.received.filter((r) => r.path === path);

    const first = start('first');
    await waitFor(() => /assigned .*\d/.test(first.output()), 120_000, () => `the first instance assigned its tasks; logs: ${first.output().slice(-1500)}`);
    // The alert fires now (its event time is the wall clock): level 2 is due TIMEOUT_S later.
    const fired = Date.now();
    const encode = await registry.encoder(alerts, 'vigil.alerting.Alert');
    await produceRaw([encode('db', { id: 'db-down', timestamp: fired, rule: 'DbDown', entity: 'db-1', priority: 2, summary: 'db-1 down', labels: { alertname: 'DbDown' }, status: 'FIRING', starts_at: fired, annotations: {} })]);
    await waitFor(() => paged('/primary').length > 0, 120_000, () => `level 1 paged; logs: ${first.output().slice(-1500)}`);
    first.kill('SIGKILL');
    await exited(first);
    expect(paged('/secondary')).toEqual([]); // not yet due when the instance died

    // Down past the moment level 2 was due.
    const due = fired + TIMEOUT_S * 1000;
    await waitFor(() => Date.now() > due + 1000, (TIMEOUT_S + 30) * 1000, 'the escalation to fall due while the instance is down');
    const second = start('second');
    try {
      await waitFor(() => paged('/secondary').length > 0, 120_000, () => `level 2 paged after the restart; logs: ${second.output().slice(-1500)}`);
      const page = JSON.parse(paged('/secondary')[0]!.body) as { status: string; notification_reason: string; alerts: Array<{ fingerprint: string }> };
      expect(page.status).toBe('firing');
      expect(page.notification_reason).toBe(`escalated to level 2: not acknowledged within ${TIMEOUT_S}s`);
      expect(page.alerts.map((a) => a.fingerprint)).toEqual(['db-down']);
      expect(paged('/manager')).toEqual([]);

      // Acknowledge through the running instance's endpoint, by the alert's id.
      await waitFor(() => metricsUrl(second.output()) !== undefined, 60_000, 'the metrics URL in the log');
      const res = await fetch(`${metricsUrl(second.output())}/ack/db-down`, { method: 'POST', body: new URLSearchParams({ by: 'alice', comment: 'restarting db-1' }) });
      expect(res.status).toBe(202);
      const acked = async () => (await registry.decodeValues(await readAll(audit, { idleMs: 500, readCommitted: true }))).some((e) => e.event === 'ACKED' && e.who === 'alice' && e.why === 'restarting db-1');
      await waitFor(acked, 120_000, 'the ACKED audit event');
      // Level 3 would be due at fired + 2 timeouts: past it, it was never paged.
      await waitFor(() => Date.now() > fired + 2 * TIMEOUT_S * 1000 + 2000, (2 * TIMEOUT_S + 30) * 1000, 'the moment level 3 would have been due');
      const events = await registry.decodeValues(await readAll(audit, { idleMs: 1000, readCommitted: true }));
      expect(paged('/manager')).toEqual([]);
      expect(events.filter((e) => e.event === 'ESCALATED').map((e) => e.level)).toEqual([2]);
      expect(events.filter((e) => e.event === 'NOTIFIED').map((e) => [e.receiver, e.level])).toEqual([['primary', 1]]);
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
    // vigil report on that audit topic: who was paged at which level, who acknowledged, MTTA.
    const report = spawnVigil(['report', '--topic', audit, '--since', '1h'], env);
    expect(await exited(report), report.output()).toBe(0);
    const md = report.output();
    expect(md).toMatch(/MTTA \(fired to first acknowledgement\): [\d.]+ s mean, .* \(1 alerts\)/);
    expect(md).toMatch(/\| db-down \| DbDown \| db-1 \| 2 \| \S+ \| primary \(L1\) \S+; secondary \(L2, escalated\) \S+ \| alice \S+ \|/);
  });
});

describe('vigil ack and vigil silence on the real broker', () => {
  it('ack writes an Ack record; silence add, list and expire keep the compacted topic right', async () => {
    const name = uniqueName('cli-alerting');
    const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
    const vigil = async (...args: string[]) => {
      const p = spawnVigil(args, env);
      const code = await exited(p);
      if (code !== 0) throw new Error(`vigil ${args.join(' ')} exited ${code}: ${p.output()}`);
      return p.output();
    };
    await vigil('ack', 'db-down', '--by', 'bob', '--comment', 'false alarm', '--noise', '--topic', `${name}.acks`);
    const [ack] = await registry.decodeValues(await readAll(`${name}.acks`, { idleMs: 500 }));
    expect(ack).toMatchObject({ target: 'db-down', by: 'bob', comment: 'false alarm', kind: 'NOISE' });

    const topic = `${name}.silences`;
    const id = (await vigil('silence', 'add', 'alertname="DbDown"', 'host=~"db-.*"', '--duration', '1h', '--by', 'carol', '--comment', 'maintenance', '--topic', topic)).split('\n')[0]!.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const listed = (await vigil('silence', 'list', '--json', '--topic', topic)).trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(listed).toMatchObject([{ id, matchers: ['alertname="DbDown"', 'host=~"db-.*"'], created_by: 'carol', comment: 'maintenance', state: 'active' }]);
    await vigil('silence', 'expire', id, '--topic', topic);
    expect((await vigil('silence', 'list', '--json', '--topic', topic)).includes(id)).toBe(false);
    expect(await vigil('silence', 'list', '--all', '--json', '--topic', topic)).toContain('"state":"expired"');
    // Bad input is refused with the reason, nothing written.
    const bad = spawnVigil(['silence', 'add', 'x=~"("', '--comment', 'x', '--by', 'x', '--topic', topic], env);
    expect(await exited(bad)).toBe(1);
    expect(bad.output()).toMatch(/matcher 'x=~"\("': invalid regular expression/);
  });
});
