// Receivers on the real broker: `vigil run` delivering a route's notifications to a real HTTP server
// on loopback that flaps (every third answer a 503) and during whose request the process is killed
// with SIGKILL, after the receiver got the notification and before Vigil committed it. Nothing is
// lost, and the one delivered again carries the same Idempotency-Key (and body): the receiver can drop it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokers, createTopics, uniqueName } from '../kafka.ts';
import { exited, produceRaw, spawnVigil, testRegistry, topologyFile, waitFor } from '../helpers/pipeline.ts';
import type { Registry } from '../helpers/pipeline.ts';
import { scriptedServer } from '../helpers/http-server.ts';
import type { ScriptedServer } from '../helpers/http-server.ts';

const T0 = 1_700_000_000_000;
const GROUPS = 30;
/** The request during which the instance is killed. */
const KILL_AT = 12;

let registry: Registry;
let server: ScriptedServer;
beforeAll(async () => {
  registry = await testRegistry();
});
afterAll(async () => {
  await server?.close();
  await registry?.close();
});

describe('webhook delivery survives a flapping receiver and a SIGKILL', () => {
  it('every notification reaches the receiver; the one in flight at the kill comes again with the same Idempotency-Key', async () => {
    const name = uniqueName('rx-crash');
    const topic = `${name}.alerts`;
    await createTopics([topic], { partitions: 1 });
    const encode = await registry.encoder(topic, 'vigil.alerting.Alert');
    const running: { victim?: ReturnType<typeof spawnVigil> } = {};
    const never = new Promise(() => undefined);
    server = await scriptedServer((_path, n) => {
      if (n === KILL_AT) {
        // The receiver has the notification; Vigil has not committed it. Kill, and never answer.
        running.victim?.kill('SIGKILL');
        return { after: never };
      }
      return n % 3 === 0 ? { status: 503, text: 'flapping' } : { status: 200 };
    });
    const yaml = `
version: 1
name: ${name}
guarantee: exactly_once
commit_interval: 100ms
allowed_hosts: [${server.host}]
sources:
  - { name: alerts, topic: ${topic}, schema: vigil.alerting.Alert, timestamp: timestamp, max_out_of_order: 0s, partitions: 1 }
operators:
  - name: notify
    type: route
    wall_clock: false
    route: { receiver: team, group_by: [alertname], group_wait: 0s }
sinks:
  - { name: hook, from: notify, type: webhook, url: "${server.base}/hook", backoff: 20ms, max_backoff: 200ms }
`;
    const records = [];
    for (let i = 0; i < GROUPS; i++) {
      const rule = `Rule${i}`;
      records.push(
        encode(rule, {
          id: rule,
          timestamp: T0 + i * 1000,
          rule,
          entity: 'db-1',
          summary: `${rule} fired`,
          labels: { alertname: rule },
          status: 'FIRING',
          starts_at: T0 + i * 1000,
          annotations: {},
        }),
      );
    }
    await produceRaw(records);
    const file = topologyFile(yaml);
    const env = { KAFKA_BROKERS: brokers().join(','), SCHEMA_REGISTRY_URL: registry.url };
    const start = (instance: string) => spawnVigil(['run', file, '--metrics-port', '0', '--session-timeout', '6000', '--instance', instance], env);
    const keys = () => server.received.map((r) => String(r.headers['idempotency-key']));
    const delivered = () => new Set(server.received.filter((_r, i) => i + 1 !== KILL_AT && (i + 1) % 3 !== 0).map((r) => String(r.headers['idempotency-key'])));

    const victim = start('first');
    running.victim = victim;
    await exited(victim);
    expect(victim.signalCode).toBe('SIGKILL');
    const inFlight = keys()[KILL_AT - 1]!;
    const last = start('second');
    try {
      await waitFor(() => delivered().size >= GROUPS, 180_000, `${GROUPS} notifications delivered (have ${delivered().size}); logs: ${(victim.output() + last.output()).slice(-2000)}`);
    } finally {
      last.kill('SIGTERM');
      await exited(last);
    }
    // One notification per group, none lost.
    expect(delivered().size).toBe(GROUPS);
    const bodies = server.received.map((r) => JSON.parse(r.body) as { groupKey: string; status: string });
    expect(new Set(bodies.map((b) => b.groupKey)).size).toBe(GROUPS);
    // The one in flight at the kill came again, the same notification under the same key.
    const again = server.received.filter((r) => r.headers['idempotency-key'] === inFlight);
    expect(again.length).toBeGreaterThanOrEqual(2);
    expect(new Set(again.map((r) => r.body)).size).toBe(1);
    // Every key stands for one body: a receiver deduping on the key loses nothing.
    const byKey = new Map<string, Set<string>>();
    for (const r of server.received) {
      const k = String(r.headers['idempotency-key']);
      byKey.set(k, (byKey.get(k) ?? new Set()).add(r.body));
    }
    expect([...byKey.values()].every((b) => b.size === 1)).toBe(true);
  });
});
